"""What the refund listing reads from the ledger."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.months import Month
from app.domain.overpayment import PaidMonth


@dataclass(frozen=True, slots=True)
class DueAmount:
    """What today's rates ask for one section, option and month."""

    section: int
    option: int | None
    month: Month
    due_satang: int


@dataclass(frozen=True, slots=True)
class PaidRow:
    """A paid month above today's rate, with the person's name."""

    paid: PaidMonth
    title: str
    first_name: str
    last_name: str
