"""Section 39 (voluntary continuation): standing, payable months and the refusal to pay.

Months are judged on the business date ``today``. A month M is *unpaid* once its due date, the
15th of M+1, has passed (on the 15th itself it can still be paid on time) and it is not paid
(or, when the policy says late payments do not count, it was paid after its due date). Months
before ``coverage_start`` are never considered.

Membership ends on the earlier of:

* **three consecutive unpaid months** -- ``ended_month`` is the first month of the earliest such
  run (cover is lost from that month on);
* **fewer than 9 of 12 months paid** -- judged over every window of 12 consecutive months that
  starts at or after ``coverage_start``. A window fails as soon as it holds 4 unpaid months, since
  at most 8 of its months can then be paid; months not yet due count as possibly paid.
  ``ended_month`` is the 4th unpaid month of the earliest failing window, the first month at
  which the test fails.

When both rules give the same month, the three-month rule is reported.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from app.domain.calendar import s39_due_date
from app.domain.months import Month
from app.domain.payable import MonthDue
from app.domain.rates import RateTable
from app.errors import MemberTerminated

SECTION: Final = 39
THREE_CONSECUTIVE_UNPAID: Final = "three_consecutive_unpaid"
FEWER_THAN_9_OF_12: Final = "fewer_than_9_of_12"

_RUN: Final = 3  # consecutive unpaid months that end membership
_WINDOW: Final = 12  # months in the sliding window
_MIN_PAID: Final = 9  # months of a window that must be paid
_MAX_UNPAID: Final = _WINDOW - _MIN_PAID  # 3: one more fails the window

_REASON_TEXT: Final = {
    THREE_CONSECUTIVE_UNPAID: "three consecutive months were not paid",
    FEWER_THAN_9_OF_12: "fewer than 9 of 12 months were paid",
}


@dataclass(frozen=True, slots=True)
class S39Policy:
    """Unconfirmed Section 39 rules, as settings with the DOMAIN.md defaults."""

    max_overdue_months: int = 1  # past-due months that may still be paid, besides those not due
    late_counts_as_paid: bool = True
    late_surcharge_satang: int = 0  # added to each overdue month
    advance_months: int = 0  # months after the current one that may be paid

    def __post_init__(self) -> None:
        if min(self.max_overdue_months, self.late_surcharge_satang, self.advance_months) < 0:
            raise ValueError("Section 39 policy values cannot be negative")


@dataclass(frozen=True, slots=True)
class MemberStanding:
    """Whether a member is active and, if not, from which month and why."""

    status: Literal["active", "terminated"]
    ended_month: Month | None = None  # the first month no longer covered
    reason: str | None = None  # THREE_CONSECUTIVE_UNPAID or FEWER_THAN_9_OF_12

    @property
    def active(self) -> bool:
        """Whether the member may still pay."""
        return self.status == "active"


ACTIVE: Final = MemberStanding("active")


def latest_past_due(today: date) -> Month:
    """The latest month whose due date has passed on ``today``."""
    previous = Month.of(today).minus(1)
    return previous if today > s39_due_date(previous) else previous.minus(1)


def _unpaid_months(
    *,
    coverage_start: Month,
    paid: Collection[Month],
    today: date,
    policy: S39Policy,
    paid_on: Mapping[Month, date] | None,
) -> list[Month]:
    paid_set = frozenset(paid)
    late = {} if paid_on is None or policy.late_counts_as_paid else paid_on
    unpaid: list[Month] = []
    for month in Month.range(coverage_start, latest_past_due(today)):
        paid_date = late.get(month)
        if month not in paid_set or (paid_date is not None and paid_date > s39_due_date(month)):
            unpaid.append(month)
    return unpaid


def _first_run(unpaid: list[Month]) -> Month | None:
    for start, end in zip(unpaid, unpaid[_RUN - 1 :], strict=False):
        if end.index - start.index == _RUN - 1:
            return start
    return None


def _first_failed_window(unpaid: list[Month]) -> Month | None:
    for start, fourth in zip(unpaid, unpaid[_MAX_UNPAID:], strict=False):
        if fourth.index - start.index < _WINDOW:
            return fourth
    return None


def s39_status(
    *,
    coverage_start: Month,
    paid: Collection[Month],
    today: date,
    policy: S39Policy = S39Policy(),
    paid_on: Mapping[Month, date] | None = None,
) -> MemberStanding:
    """A Section 39 member's standing on ``today`` from the months paid since coverage began.

    ``paid_on`` gives the business date each month was paid; it matters only when the policy
    does not count late payments (months missing from it count as paid on time).
    """
    unpaid = _unpaid_months(
        coverage_start=coverage_start, paid=paid, today=today, policy=policy, paid_on=paid_on
    )
    run_start = _first_run(unpaid)
    window_failed = _first_failed_window(unpaid)
    if run_start is not None and (window_failed is None or run_start <= window_failed):
        return MemberStanding("terminated", run_start, THREE_CONSECUTIVE_UNPAID)
    if window_failed is not None:
        return MemberStanding("terminated", window_failed, FEWER_THAN_9_OF_12)
    return ACTIVE


def ensure_s39_may_pay(
    *,
    coverage_start: Month,
    paid: Collection[Month],
    today: date,
    policy: S39Policy = S39Policy(),
    paid_on: Mapping[Month, date] | None = None,
) -> MemberStanding:
    """The member's standing if still active; MemberTerminated otherwise."""
    standing = s39_status(
        coverage_start=coverage_start, paid=paid, today=today, policy=policy, paid_on=paid_on
    )
    if standing.ended_month is not None and standing.reason is not None:
        raise MemberTerminated(
            f"Section 39 membership ended from {standing.ended_month}: "
            f"{_REASON_TEXT[standing.reason]}. Payments are refused.",
            ended_month=str(standing.ended_month),
            reason=standing.reason,
        )
    return standing


def s39_payable_months(
    *,
    coverage_start: Month,
    paid: Collection[Month],
    today: date,
    rates: RateTable,
    policy: S39Policy = S39Policy(),
    paid_on: Mapping[Month, date] | None = None,
) -> list[MonthDue]:
    """Months a Section 39 member may pay on ``today``, oldest first; none once terminated.

    These are the unpaid months among the ``max_overdue_months`` latest past-due months, every
    unpaid month up to the current one whose due date has not passed, and ``advance_months``
    months after the current one; never a month before ``coverage_start``.
    """
    standing = s39_status(
        coverage_start=coverage_start, paid=paid, today=today, policy=policy, paid_on=paid_on
    )
    if not standing.active:
        return []
    paid_set = frozenset(paid)
    current = Month.of(today)
    last_past_due = latest_past_due(today)
    first = max(coverage_start, last_past_due.minus(policy.max_overdue_months - 1))
    months: list[MonthDue] = []
    for month in Month.range(first, current.plus(policy.advance_months)):
        if month in paid_set:
            continue
        rate = rates.rate(SECTION, None, month)
        overdue = month <= last_past_due
        months.append(
            MonthDue(
                month=month,
                amount_satang=rate.amount_satang + (policy.late_surcharge_satang if overdue else 0),
                due_date=s39_due_date(month),
                overdue=overdue,
                government_satang=None,  # not known for Section 39 (docs/domain.md)
                advance=month > current,
            )
        )
    return months
