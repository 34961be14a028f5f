"""Checks of the free text a counter request carries: transaction ids, reasons, counter fields."""

from __future__ import annotations

from app.counter.records import CounterInfo
from app.errors import InvalidInput
from app.free_text import PADDING

MAX_TXN_ID = 64
MAX_REASON = 500


def check_txn_id(value: str) -> str:
    """The partner's transaction id, trimmed; InvalidInput unless 1 to 64 printable characters,
    not dots alone: "." and ".." are dot segments in a URL (RFC 3986, and the WHATWG standard
    whatever their encoding), so REST could never address such a payment."""
    text = value.strip(PADDING)
    if not 1 <= len(text) <= MAX_TXN_ID or not text.isprintable():
        raise InvalidInput(
            f"partnerTxnId must be 1 to {MAX_TXN_ID} printable characters.", field="partnerTxnId"
        )
    if not text.strip("."):
        raise InvalidInput("partnerTxnId cannot be dots alone.", field="partnerTxnId")
    return text


def check_text(value: str | None, *, field: str, limit: int) -> str | None:
    """Optional free text: trimmed, printable (no control characters), at most ``limit``."""
    if value is None:
        return None
    text = value.strip(PADDING)
    if len(text) > limit or not text.isprintable():
        raise InvalidInput(f"{field} must be at most {limit} printable characters.", field=field)
    return text or None


def check_counter(counter: CounterInfo) -> CounterInfo:
    """The counter's store, terminal, shift and operator, each checked as optional text."""
    return CounterInfo(
        store_id=check_text(counter.store_id, field="storeId", limit=MAX_TXN_ID),
        terminal_id=check_text(counter.terminal_id, field="terminalId", limit=MAX_TXN_ID),
        shift=check_text(counter.shift, field="shift", limit=MAX_TXN_ID),
        operator_id=check_text(counter.operator_id, field="operatorId", limit=MAX_TXN_ID),
    )
