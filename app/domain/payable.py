"""A month a member may pay, with its amount, and the counter's default selection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from app.domain.months import Month
from app.frozen_records import quick_init


@quick_init
@dataclass(frozen=True, slots=True)
class MonthDue:
    """One payable month: what it costs today, when it is due, and whether it is late."""

    month: Month
    amount_satang: int  # what the insured pays, late surcharge included
    due_date: date | None  # Section 39: the 15th of the next month; Section 40: None
    overdue: bool
    # Information only, never collected at the counter; None where it is not known (Section 39).
    government_satang: int | None
    advance: bool = False  # paid before its own month has begun
    option: int | None = None  # Section 40: the option the month is priced at (None: Section 39)
    surcharge_satang: int = 0  # the late surcharge ``amount_satang`` includes


def default_selection(section: int, months: Sequence[MonthDue]) -> list[MonthDue]:
    """The months a counter offers by default: S39 arrears and current, S40 the earliest."""
    ordered = sorted(months, key=lambda due: due.month)
    if section == 39:
        return [due for due in ordered if not due.advance]
    return ordered[:1]


def total_satang(months: Iterable[MonthDue]) -> int:
    """The sum of the months' amounts, in satang."""
    return sum(due.amount_satang for due in months)
