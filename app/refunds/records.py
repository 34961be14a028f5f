"""What the refund listing reads from the ledger."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.months import Month
from app.domain.overpayment import Cover, PaidMonth


@dataclass(frozen=True, slots=True)
class DueAmount:
    """What today's rates ask for one section, option and month."""

    section: int
    option: int | None
    month: Month
    due_satang: int


@dataclass(frozen=True, slots=True)
class PaidRow:
    """A paid month that may be owed a refund (paid above today's rate, or after a membership
    of its section ended), with the person's name and memberships."""

    paid: PaidMonth
    title: str
    first_name: str
    last_name: str
    covers: tuple[Cover, ...]  # every membership of the person, the latest one too
