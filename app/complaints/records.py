"""Complaint cases as the service sees them: values, the rules of their states, the store port.

A case moves ``open → investigating → resolved | rejected``; a ``paid-not-posted`` case whose
payment is found confirmed goes straight from ``open`` to ``resolved`` when it is opened. Every
move is kept with who made it, when, through which client, and a note.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Protocol

from app.domain.calendar import BANGKOK, has_utc_instant
from app.errors import Conflict, InvalidInput
from app.free_text import PADDING

CATEGORIES: Final = ("paid-not-posted", "charged-twice", "wrong-amount", "other")
STATES: Final = ("open", "investigating", "resolved", "rejected")
OPEN_STATES: Final = ("open", "investigating")  # not yet closed: counted in the metrics
TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    "open": ("investigating",),
    "investigating": ("resolved", "rejected"),
}
SYSTEM: Final = "system"  # the actor of a case the gateway resolves itself
#: Age buckets of open cases (label, upper bound); the last has none.
AGE_BUCKETS: Final[tuple[tuple[str, timedelta | None], ...]] = (
    ("<1d", timedelta(days=1)),
    ("1-3d", timedelta(days=3)),
    ("3-7d", timedelta(days=7)),
    ("7-30d", timedelta(days=30)),
    (">30d", None),
)
_ISO_DURATION: Final = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?",
    re.ASCII | re.IGNORECASE,
)
_SHORT_DURATION: Final = re.compile(r"(?P<n>\d+)\s*(?P<unit>[wdhm])", re.ASCII | re.IGNORECASE)
_UNITS: Final = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}
MAX_AGE: Final = timedelta(days=3660)
LOOK_BACK: Final = timedelta(days=7)  # the audit window when no payment or day is named


def checked_text(
    value: str | None, *, field: str, limit: int, required: bool = False
) -> str | None:
    """``value`` trimmed of ``PADDING``, None when blank; InvalidInput when too long or not
    printable (a no-break space around it is left in, and refused)."""
    text = (value or "").strip(PADDING)
    if not text:
        if required:
            raise InvalidInput(f"{field} is required.", field=field)
        return None
    if len(text) > limit or not text.replace("\n", " ").isprintable():
        raise InvalidInput(f"{field} must be at most {limit} printable characters.", field=field)
    return text


def audit_window(
    payment: LinkedPayment | None, new: NewComplaint, now: datetime
) -> tuple[datetime, datetime]:
    """Where to look for the person's audit records: around the payment's or the named day."""
    if payment is not None:
        day = payment.business_date
    elif new.paid_on is not None:
        day = new.paid_on
    else:
        return now - LOOK_BACK, now
    start = datetime.combine(day, time(0), tzinfo=BANGKOK)
    return start - timedelta(days=1), start + timedelta(days=2)


def opening_note(new: NewComplaint, payment: LinkedPayment | None, nid: str) -> str | None:
    """What the opening of a case says about its payment, if anything needs saying."""
    if payment is None:
        named = new.receipt_no or new.partner_txn_id
        return f"No payment {named} was found." if named else None
    if payment.national_id != nid:
        return f"Payment {payment.receipt_no} was posted to another national ID."
    if payment.state != "confirmed":
        return f"Payment {payment.receipt_no} is {payment.state}."
    return None


def check_transition(current: str, target: str) -> None:
    """Refuse a move the case's state does not allow (a Conflict naming the allowed ones)."""
    if target not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}.", field="to")
    allowed = TRANSITIONS.get(current, ())
    if target not in allowed:
        then = f"it can go to {' or '.join(allowed)}" if allowed else "it is closed"
        raise Conflict(
            f"A case that is {current} cannot become {target}; {then}.",
            state=current,
            to=target,
            allowed=list(allowed),
        )


def parse_age(text: str) -> timedelta:
    """An age such as ``P3D``, ``PT36H``, ``P1DT12H`` (ISO 8601) or ``72h``, ``3d``, ``2w``."""
    try:
        age = _age(text.strip())
    except (OverflowError, ValueError):  # past a timedelta's 999,999,999 days or int()'s digits
        age = timedelta.max
    if age is None:
        raise InvalidInput(
            "olderThan must be an ISO 8601 duration such as P3D or PT12H, or 72h, 3d, 2w.",
            field="olderThan",
        )
    if age > MAX_AGE:
        raise InvalidInput("olderThan is longer than ten years.", field="olderThan")
    return age


def _age(value: str) -> timedelta | None:
    """The age ``value`` spells, or None when it spells none."""
    iso = _ISO_DURATION.fullmatch(value)
    if iso is not None and any(iso.groupdict().values()):
        parts = {k: int(v) for k, v in iso.groupdict().items() if v}
        return timedelta(
            weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0),
            minutes=parts.get("m", 0), seconds=parts.get("s", 0),
        )  # fmt: skip
    if (short := _SHORT_DURATION.fullmatch(value)) is not None:
        return timedelta(**{_UNITS[short["unit"].lower()]: int(short["n"])})
    return None


def encode_cursor(created_at: datetime, complaint_id: int) -> str:
    """The opaque cursor of the page after this case."""
    text = f"{created_at.astimezone(UTC).isoformat()}|{complaint_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, int]:
    """The position a cursor stands for; InvalidInput when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at_text, id_text = text.split("|")
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None or not has_utc_instant(at):
            raise ValueError("naive cursor time, or none the store holds")
        position = int(id_text)
        if not 0 <= position < 2**63:
            raise ValueError("id out of range")
        return at, position
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput("The cursor is not valid.", field="cursor") from None


# --- values ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewComplaint:
    """A complaint as the caller sent it (checked by ``ComplaintService.open``)."""

    national_id: str
    category: str
    description: str
    receipt_no: str | None = None
    partner: str | None = None  # the partner's name; needed with partner_txn_id
    partner_txn_id: str | None = None
    paid_on: date | None = None  # when the member says they paid, if no payment is named
    opened_by: str | None = None  # the SSO officer taking the complaint


@dataclass(frozen=True, slots=True)
class ComplaintEvent:
    """One move of a case: who made it, when, through which client, and why."""

    at: datetime
    from_state: str | None  # None: the case was opened
    to_state: str
    who: str
    via: str | None = None  # "client:<name>" or "operator:<name>"; None for the gateway itself
    note: str | None = None


@dataclass(frozen=True, slots=True)
class LinkedPayment:
    """The payment a case is about, as the ledger holds it."""

    id: int
    receipt_no: str
    partner_id: int | None
    partner: str | None
    partner_txn_id: str
    national_id: str
    section: int
    months: tuple[str, ...]  # YYYY-MM
    amount_satang: int
    state: str  # confirmed | cancelled
    business_date: date
    paid_at: datetime
    posted_at: datetime
    cancelled_at: datetime | None


@dataclass(frozen=True, slots=True)
class LinkedAudit:
    """An audit record of the person near the payment (or the complaint)."""

    seq: int
    at: datetime
    protocol: str
    operation: str
    outcome: str
    principal_kind: str
    principal_name: str | None


@dataclass(frozen=True, slots=True)
class ComplaintRow:
    """A case to store."""

    national_id: str
    category: str
    description: str
    state: str
    receipt_no: str | None
    partner_id: int | None
    partner_txn_id: str | None
    payment_id: int | None
    paid_on: date | None
    opened_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Complaint:
    """A case; a listing leaves out its payment, audit records and history."""

    id: int
    national_id: str
    name: str | None  # the person's name, when the gateway knows them
    category: str
    description: str
    state: str
    receipt_no: str | None
    partner: str | None
    partner_txn_id: str | None
    payment_id: int | None
    paid_on: date | None
    opened_by: str
    created_at: datetime
    updated_at: datetime
    payment: LinkedPayment | None = None
    audit_records: tuple[LinkedAudit, ...] = ()
    history: tuple[ComplaintEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class ComplaintPage:
    """Cases oldest first; ``next_cursor`` is None on the last page."""

    complaints: list[Complaint]
    next_cursor: str | None


class ComplaintStore(Protocol):
    """What the complaint use cases need from the store (all on the primary)."""

    async def partner_id(self, name: str) -> int | None: ...

    async def find_payment(
        self, *, receipt_no: str | None, partner_id: int | None, partner_txn_id: str | None
    ) -> LinkedPayment | None: ...

    async def create(
        self, row: ComplaintRow, events: Sequence[ComplaintEvent], *,
        window: tuple[datetime, datetime], link_limit: int,
    ) -> int:  # fmt: skip
        """Store the case, its events and links to the person's audit records in ``window``."""
        ...

    async def get(self, complaint_id: int) -> Complaint | None: ...

    async def find(
        self, *, state: str | None, partner_id: int | None, created_before: datetime | None,
        after: tuple[datetime, int] | None, limit: int,
    ) -> list[Complaint]: ...  # fmt: skip

    async def transition(self, complaint_id: int, event: ComplaintEvent) -> bool:
        """Move the case from ``event.from_state``; False when it is no longer in that state."""
        ...

    async def open_counts(
        self, *, now: datetime, bounds: Sequence[timedelta]
    ) -> list[tuple[str, int, int]]:
        """Cases not closed as (category, bucket index by age against ``bounds``, count)."""
        ...
