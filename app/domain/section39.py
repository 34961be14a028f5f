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

**Eligibility** (checked at registration): at least 12 months of Section 33 contributions, and
the application within 6 months of leaving work. The application date may lie before the day
of the registration by at most ``S39Policy.application_backdate_days`` (default 0: it is that
day) unless an SSO officer overrides it with a reason. The six months are counted as the Civil and
Commercial Code counts a period in months (ss. 193/3, 193/5): from the day after the last day
of employment, ending on the day before the same-numbered day six months later, or on the last
day of that month when it has no such day (a period that starts on the 1st ends with the 6th
month). So work ending on 15 January allows applying up to 15 July; ending on 31 August, up to
the end of February; ending on 28 February 2023, up to 31 August. After a Section 39
membership ended, the way back is only through Section 33 again: the employment of the new
history must have ended on or after the first month the previous membership no longer covered.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

from app.domain.calendar import s39_due_date
from app.domain.months import Month, month_set
from app.domain.payable import MonthDue
from app.domain.rates import RateTable
from app.errors import InvalidInput, MemberTerminated, NotEligibleForSection39

SECTION: Final = 39
THREE_CONSECUTIVE_UNPAID: Final = "three_consecutive_unpaid"
FEWER_THAN_9_OF_12: Final = "fewer_than_9_of_12"

_RUN: Final = 3  # consecutive unpaid months that end membership
_WINDOW: Final = 12  # months in the sliding window
_MIN_PAID: Final = 9  # months of a window that must be paid
_MAX_UNPAID: Final = _WINDOW - _MIN_PAID  # 3: one more fails the window

#: Eligibility (DOMAIN.md, H): months of Section 33 contributions, and months to apply in.
MIN_S33_MONTHS: Final = 12
APPLY_WITHIN_MONTHS: Final = 6
MAX_S33_MONTHS: Final = 1200  # a hundred years: anything more is a typing error
TOO_FEW_S33_MONTHS: Final = "too_few_s33_months"
APPLIED_TOO_LATE: Final = "applied_too_late"
REENTRY_NEEDS_SECTION33: Final = "reentry_needs_section33"

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
    # Days the application date may lie before the day of the registration (0: it is that day)
    # without an SSO officer's override.
    application_backdate_days: int = 0

    def __post_init__(self) -> None:
        values = (
            self.max_overdue_months,
            self.late_surcharge_satang,
            self.advance_months,
            self.application_backdate_days,
        )
        if min(values) < 0:
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
    paid_set = month_set(paid)
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
    months after the current one; never a month before ``coverage_start``. When a month paid
    late does not count as paid (``late_counts_as_paid`` off), no past-due month is offered:
    paid now it would still count as unpaid, money taken for nothing.
    """
    standing = s39_status(
        coverage_start=coverage_start, paid=paid, today=today, policy=policy, paid_on=paid_on
    )
    if not standing.active:
        return []
    paid_set = month_set(paid)
    current = Month.of(today)
    last_past_due = latest_past_due(today)
    overdue_months = policy.max_overdue_months if policy.late_counts_as_paid else 0
    first = max(coverage_start, last_past_due.minus(overdue_months - 1))
    months: list[MonthDue] = []
    for month in Month.range(first, current.plus(policy.advance_months)):
        if month in paid_set:
            continue
        rate = rates.rate(SECTION, None, month)
        overdue = month <= last_past_due
        surcharge = policy.late_surcharge_satang if overdue else 0
        months.append(
            MonthDue(
                month=month,
                amount_satang=rate.amount_satang + surcharge,
                surcharge_satang=surcharge,
                due_date=s39_due_date(month),
                overdue=overdue,
                government_satang=None,  # not known for Section 39 (docs/domain.md)
                advance=month > current,
            )
        )
    return months


# --- eligibility at registration ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Section33History:
    """What the source system sends of a person's Section 33 employment at registration."""

    months_contributed: int  # months of Section 33 contributions (the source system's count)
    employment_ended_on: date  # the last day of employment under Section 33


@dataclass(frozen=True, slots=True)
class S39Eligibility:
    """The verdict on a Section 39 application: the rules it breaks (none: eligible)."""

    reasons: tuple[str, ...]
    deadline: date  # the last day to apply

    @property
    def eligible(self) -> bool:
        return not self.reasons


def _day_or_last(year: int, month: int, day: int) -> date:
    last = Month(year, month).last_day
    return date(year, month, min(day, last.day))


def period_end(start: date, months: int) -> date:
    """The last day of a period of ``months`` months that begins on ``start`` (CCC s. 193/5).

    A period begun on the 1st ends with the last day of its last month; otherwise on the day
    before the same-numbered day of the last month, or that month's last day when it has none.
    """
    if months < 1:
        raise ValueError("a period lasts at least one month")
    last = Month.of(start).plus(months)
    if start.day == 1:
        return last.minus(1).last_day
    if start.day > last.last_day.day:
        return last.last_day
    return _day_or_last(last.year, last.month, start.day) - timedelta(days=1)


def s39_application_deadline(employment_ended_on: date) -> date:
    """The last day to apply for Section 39 after employment ended on ``employment_ended_on``:
    the period of six months counts from the next day (CCC s. 193/3)."""
    return period_end(employment_ended_on + timedelta(days=1), APPLY_WITHIN_MONTHS)


def s39_eligibility(
    history: Section33History, *, applied_on: date, previous_s39_end: Month | None = None
) -> S39Eligibility:
    """Whether an application on ``applied_on`` with ``history`` meets the Section 39 rules.

    ``previous_s39_end`` is the first month an earlier Section 39 membership no longer covered,
    if the person had one: the new Section 33 employment must have ended on or after it.
    """
    if not 0 <= history.months_contributed <= MAX_S33_MONTHS:
        raise InvalidInput(
            f"monthsContributed must be between 0 and {MAX_S33_MONTHS}.",
            field="section33.monthsContributed",
        )
    if applied_on < history.employment_ended_on:
        raise InvalidInput(
            "The application date is before the Section 33 employment ended.", field="appliedOn"
        )
    deadline = s39_application_deadline(history.employment_ended_on)
    reasons: list[str] = []
    if history.months_contributed < MIN_S33_MONTHS:
        reasons.append(TOO_FEW_S33_MONTHS)
    if applied_on > deadline:
        reasons.append(APPLIED_TOO_LATE)
    if previous_s39_end is not None and history.employment_ended_on < previous_s39_end.first_day:
        reasons.append(REENTRY_NEEDS_SECTION33)
    return S39Eligibility(tuple(reasons), deadline)


def earliest_application_date(registered_on: date, policy: S39Policy) -> date:
    """The earliest application date a registration on ``registered_on`` may give without an
    SSO officer's override: the six months to apply are counted to the application, so a date
    set back further would let a late application pass."""
    return registered_on - timedelta(days=policy.application_backdate_days)


_ELIGIBILITY_TEXT: Final = {
    TOO_FEW_S33_MONTHS: f"fewer than {MIN_S33_MONTHS} months of Section 33 contributions",
    APPLIED_TOO_LATE: f"applied more than {APPLY_WITHIN_MONTHS} months after leaving work",
    REENTRY_NEEDS_SECTION33: "a former Section 39 member returns only through Section 33",
}


def ensure_s39_eligible(
    history: Section33History,
    *,
    applied_on: date,
    previous_s39_end: Month | None = None,
) -> S39Eligibility:
    """The verdict if eligible; NotEligibleForSection39 naming every rule broken otherwise."""
    verdict = s39_eligibility(history, applied_on=applied_on, previous_s39_end=previous_s39_end)
    if not verdict.eligible:
        raise NotEligibleForSection39(
            "Not eligible for Section 39: "
            + "; ".join(_ELIGIBILITY_TEXT[r] for r in verdict.reasons)
            + ". An SSO officer may register the person with an override and a reason.",
            reason=verdict.reasons[0],
            reasons=list(verdict.reasons),
            months_contributed=history.months_contributed,
            minimum_months=MIN_S33_MONTHS,
            employment_ended_on=history.employment_ended_on.isoformat(),
            applied_on=applied_on.isoformat(),
            deadline=verdict.deadline.isoformat(),
            previous_ended_month=None if previous_s39_end is None else str(previous_s39_end),
        )
    return verdict
