"""The canonical form of a confirm request, hashed, to recognise a replay of the same request.

The partner's ``businessDate`` is not part of it (``confirm/2``): it is a claim the gateway
checks, not content of the payment, so a resend that adds or drops it is still the same request.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC

from app.counter.records import ConfirmRequest

VERSION = "confirm/2"


def confirm_request_hash(request: ConfirmRequest, *, national_id: str, txn_id: str) -> bytes:
    """SHA-256 of the request's canonical JSON: same request, same hash, whatever its wire form."""
    canonical = {
        "v": VERSION,
        "txn": txn_id,
        "nid": national_id,
        "section": request.section,
        "months": sorted(request.months),
        "amount": request.amount_satang,
        "savings": request.savings_satang,
        "paidAt": request.paid_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "store": request.counter.store_id,
        "terminal": request.counter.terminal_id,
        "shift": request.counter.shift,
        "operator": request.counter.operator_id,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).digest()
