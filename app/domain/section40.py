"""Section 40 (informal workers): the months payable ahead and the yearly option change.

"At most once a year" is unconfirmed (DOMAIN.md, ?), so how a year is counted is a setting:

* ``calendar_year`` (the default): changes are counted per calendar year, so a change on
  20 December and another on 5 January both pass;
* ``twelve_months``: changes are counted over the twelve months up to today, so the next change
  is allowed on the same day-numbered date twelve months after the last one (the last day of
  the month when it has no such day: after 29 February, the next is allowed from 1 March).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Final

from app.domain.months import Month, month_set
from app.domain.payable import MonthDue
from app.domain.rates import S40_OPTIONS, RateTable
from app.errors import InvalidInput, NoRate, OptionChangeRefused

SECTION: Final = 40
CALENDAR_YEAR: Final = "calendar_year"
TWELVE_MONTHS: Final = "twelve_months"
OPTION_CHANGE_PERIODS: Final = (CALENDAR_YEAR, TWELVE_MONTHS)


@dataclass(frozen=True, slots=True)
class S40Policy:
    """Section 40 limits, as settings with the DOMAIN.md defaults."""

    max_months_ahead: int = 12  # besides the current month
    savings_options: frozenset[int] = frozenset({2, 3})
    max_savings_per_month_satang: int = 100_000
    option_changes_per_year: int = 1
    option_change_period: str = CALENDAR_YEAR  # or TWELVE_MONTHS

    def __post_init__(self) -> None:
        if self.option_change_period not in OPTION_CHANGE_PERIODS:
            raise ValueError(f"option_change_period must be one of {OPTION_CHANGE_PERIODS}")
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
    current = Month.of(today)
    first = current if coverage_start is None else max(current, coverage_start)
    window = _window(rates, option, first, current, current.plus(policy.max_months_ahead))
    paid_set = month_set(paid)
    return [
        due if due is not None else _due(rates, option, month, current)  # NoRate, as ever
        for month, due in window
        if month not in paid_set
    ]


@lru_cache(maxsize=1024)  # every inquiry of a month prices the same window: price it once
def _window(
    rates: RateTable, option: int, first: Month, current: Month, last: Month
) -> tuple[tuple[Month, MonthDue | None], ...]:
    """Every month from ``first`` to ``last`` with its price at ``option`` payable in
    ``current``, or None when no rate covers it."""
    return tuple(
        (month, _priced(rates, option, month, current)) for month in Month.range(first, last)
    )


def _priced(rates: RateTable, option: int, month: Month, current: Month) -> MonthDue | None:
    try:
        return _due(rates, option, month, current)
    except NoRate:
        return None


@lru_cache(maxsize=4096)  # the windows of a month share their months: price each once
def _due(rates: RateTable, option: int, month: Month, current: Month) -> MonthDue:
    """``month`` at ``option``, payable in ``current`` (a table is never changed: a new one
    is made when the rates change, so its answers may be kept)."""
    rate = rates.rate(SECTION, option, month)
    return MonthDue(
        month=month,
        amount_satang=rate.amount_satang,
        due_date=None,
        overdue=False,
        government_satang=rate.government_satang,
        advance=month > current,
        option=option,
    )


def _months_before(day: date, months: int) -> date:
    earlier = Month.of(day).minus(months)
    return date(earlier.year, earlier.month, min(day.day, earlier.last_day.day))


def option_change_window(today: date, period: str) -> date:
    """The first day of the period whose changes count against a change made on ``today``."""
    if period == TWELVE_MONTHS:
        return _months_before(today, 12) + timedelta(days=1)
    return date(today.year, 1, 1)


def next_option_change_on(last_change: date, period: str) -> date:
    """The first day a change after one made on ``last_change`` no longer counts it."""
    if period == TWELVE_MONTHS:
        later = Month.of(last_change).plus(12)
        if last_change.day > later.last_day.day:
            return later.last_day + timedelta(days=1)
        return date(later.year, later.month, last_change.day)
    return date(last_change.year + 1, 1, 1)


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

    ``changes_this_year`` counts the changes made in the policy's period up to ``today`` (the
    calendar year, or the twelve months from ``option_change_window``) when the caller knows
    it; otherwise one if ``last_change`` falls in that period.
    """
    if new not in S40_OPTIONS:
        raise OptionChangeRefused(
            f"Section 40 option must be 1, 2 or 3 (got {new}).", reason="invalid_option", new=new
        )
    if new == current:
        raise OptionChangeRefused(
            f"The member already holds option {current}.", reason="same_option", current=current
        )
    period = policy.option_change_period
    window = option_change_window(today, period)
    if changes_this_year is None:
        changes_this_year = int(last_change is not None and window <= last_change <= today)
    if changes_this_year < policy.option_changes_per_year:
        return Month.of(today).plus(1)
    limit = policy.option_changes_per_year
    if period == TWELVE_MONTHS:
        next_on = None if last_change is None else next_option_change_on(last_change, period)
        raise OptionChangeRefused(
            f"The option may be changed at most {limit} time(s) in twelve months;"
            f" {changes_this_year} change(s) made since {window.isoformat()}.",
            reason="changed_within_twelve_months",
            last_change=None if last_change is None else last_change.isoformat(),
            changes_in_period=changes_this_year,
            changes_per_period=limit,
            next_change_on=None if next_on is None else next_on.isoformat(),
        )
    raise OptionChangeRefused(
        f"The option may be changed at most {limit} time(s) in a"
        f" calendar year; {changes_this_year} change(s) already made in {today.year}.",
        reason="already_changed_this_year",
        last_change=None if last_change is None else last_change.isoformat(),
        changes_this_year=changes_this_year,
        changes_per_year=limit,
    )
