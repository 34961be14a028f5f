"""Payment statistics as the store groups them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PaymentGroup:
    """Confirmed payments of one day, section or partner."""

    key: str  # ISO date, section number, or partner/client name
    kind: str | None  # partner | client when grouped by partner, else None
    count: int
    amount_satang: int  # cash taken, additional savings included
    savings_satang: int
