"""Section 40 (informal workers): the months payable ahead and the yearly option change."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Final

from app.domain.months import Month
from app.domain.payable import MonthDue
from app.domain.rates import S40_OPTIONS, RateTable
from app.errors import InvalidInput, OptionChangeRefused

SECTION: Final = 40


@dataclass(frozen=True, slots=True)
class S40Policy:
    """Section 40 limits, as settings with the DOMAIN.md defaults."""

    max_months_ahead: int = 12  # besides the current month
    savings_options: frozenset[int] = frozenset({2, 3})
    max_savings_per_month_satang: int = 100_000
    option_changes_per_year: int = 1

    def __post_init__(self) -> None:
        if min(self.max_months_ahead, self.max_savings_per_month_satang) < 0:
            raise ValueError("Section 40 policy values cannot be negative")
        if self.option_changes_per_year < 0:
            raise ValueError("option_changes_per_year cannot be negative")


def _ensure_option(option: int) -> None:
    if option not in S40_OPTIONS:
        raise InvalidInput(
            f"Section 40 option must be 1, 2 or 3 (got {option}).", field="option", option=option
        )


def s40_payable_months(
    *,
    option: int,
    paid: Collection[Month],
    today: date,
    rates: RateTable,
    policy: S40Policy = S40Policy(),
    coverage_start: Month | None = None,
) -> list[MonthDue]:
    """Unpaid months from the current one to ``max_months_ahead`` later; never a past month."""
    _ensure_option(option)
    paid_set = frozenset(paid)
    current = Month.of(today)
    first = current if coverage_start is None else max(current, coverage_start)
    months: list[MonthDue] = []
    for month in Month.range(first, current.plus(policy.max_months_ahead)):
        if month in paid_set:
            continue
        rate = rates.rate(SECTION, option, month)
        months.append(
            MonthDue(
                month=month,
                amount_satang=rate.amount_satang,
                due_date=None,
                overdue=False,
                government_satang=rate.government_satang,
                advance=month > current,
            )
        )
    return months


def check_option_change(
    *,
    current: int,
    new: int,
    last_change: date | None,
    today: date,
    policy: S40Policy = S40Policy(),
    changes_this_year: int | None = None,
) -> Month:
    """The month a change from option ``current`` to ``new`` takes effect (the next month).

    Changes are counted per calendar year: ``changes_this_year`` when the caller knows it,
    otherwise one if ``last_change`` falls in the year of ``today``.
    """
    if new not in S40_OPTIONS:
        raise OptionChangeRefused(
            f"Section 40 option must be 1, 2 or 3 (got {new}).", reason="invalid_option", new=new
        )
    if new == current:
        raise OptionChangeRefused(
            f"The member already holds option {current}.", reason="same_option", current=current
        )
    if changes_this_year is None:
        changes_this_year = int(last_change is not None and last_change.year == today.year)
    if changes_this_year >= policy.option_changes_per_year:
        raise OptionChangeRefused(
            f"The option may be changed at most {policy.option_changes_per_year} time(s) in a"
            f" calendar year; {changes_this_year} change(s) already made in {today.year}.",
            reason="already_changed_this_year",
            last_change=None if last_change is None else last_change.isoformat(),
            changes_this_year=changes_this_year,
            changes_per_year=policy.option_changes_per_year,
        )
    return Month.of(today).plus(1)
