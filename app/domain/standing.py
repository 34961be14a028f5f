"""A membership's one status: derived from what was recorded and from the Section 39 rules.

What was *recorded* is the status the latest event left on the person's record: a
registration (active), the source system's extract, or an SSO officer's change. The status a
person *is in* is derived from it:

* recorded ``terminated`` or ``inactive``: that, as recorded;
* recorded ``active``, Section 40: active;
* recorded ``active``, Section 39: the rules decide (``s39_status``), judged over the paid
  months from the latest of the coverage start, the start of the history read
  (``STANDING_HISTORY_MONTHS`` before today) and ``rules_from``, the month from which an
  officer's reinstatement (after a proven payment, say) has the rules judged again.

**An ending older than the history read.** The window shows any ending within it at its own
month: no payment is taken once a membership has ended, so every month from the ending on is
unpaid. An older ending shows through the window as the three first months unpaid, an ending
*from the window's first month*, a month that would move on every month. What the rules make
of the real history then follows from the latest month paid before the window (``Earlier``,
read with it: two index probes): the member was active when it was paid, so nothing failed
before it, and the months after it are unpaid up to the window, so cover ended from the month
after it (three consecutive months unpaid) — or from the rules' start, when nothing was paid
since. That month is stable, and the history before the window need not be read. When a month
paid late does not count (``late_counts_as_paid`` off), the latest month paid on time counts.

An officer's change is an event the derivation honours, never an overwrite it contradicts:
``decide_status_change`` gives the record to store, and refuses (StatusContradictsRules) a
change after which the derived status would not be the one asked for. A membership that ended
because the person returned to Section 33 employment reopens only by a new registration.

**Reasons are codes.** A status's reason is one of ``STATUS_REASONS``: the rules' own
(``three_consecutive_unpaid``, ``fewer_than_9_of_12``), ``section33_employment``, or
``terminated_by_sso`` / ``suspended_by_sso`` for an SSO officer's termination or suspension.
The officer's own words stay with the event (``membership_events.reason``) and the audit
trail, for SSO's eyes; the record keeps the code, and ``reason_code`` turns whatever a record
holds (one written before codes, or by the source system) into a code before it reaches a
partner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Final

from app.domain.months import Month
from app.domain.section39 import (
    FEWER_THAN_9_OF_12,
    THREE_CONSECUTIVE_UNPAID,
    S39Policy,
    s39_status,
)
from app.errors import Conflict, InvalidInput, StatusContradictsRules
from app.frozen_records import quick_init

ACTIVE: Final = "active"
TERMINATED: Final = "terminated"
INACTIVE: Final = "inactive"
STATUSES: Final = (ACTIVE, TERMINATED, INACTIVE)
#: The reason recorded when employment under Section 33 ends a Section 39 or 40 membership.
SECTION33_EMPLOYMENT: Final = "section33_employment"
#: Months of payment history a Section 39 standing is judged over: a full 12-month window
#: before the latest past-due month, and that month. Older endings are dated from the latest
#: month paid before it (``Earlier``).
STANDING_HISTORY_MONTHS: Final = 13

#: The reason of an SSO officer's termination, or of a termination recorded without a code.
TERMINATED_BY_SSO: Final = "terminated_by_sso"
#: The reason of an SSO officer's suspension, or of a suspension recorded without a code.
SUSPENDED_BY_SSO: Final = "suspended_by_sso"
#: Every reason a status may carry where partners see it (inquiries, faults).
STATUS_REASONS: Final = (
    THREE_CONSECUTIVE_UNPAID,
    FEWER_THAN_9_OF_12,
    SECTION33_EMPLOYMENT,
    TERMINATED_BY_SSO,
    SUSPENDED_BY_SSO,
)

# The kinds of event an officer's change leaves (membership_events.kind).
TERMINATED_EVENT: Final = "terminated"
SUSPENDED_EVENT: Final = "suspended"
REINSTATED_EVENT: Final = "reinstated"
SECTION33_EVENT: Final = "section33_employment"
OVERRIDE_EVENT: Final = "eligibility_override"


@quick_init
@dataclass(frozen=True, slots=True)
class Standing:
    """A status, and for a terminated membership the first month no longer covered and why."""

    status: str
    reason: str | None = None
    ended_month: Month | None = None


ACTIVE_STANDING: Final = Standing(ACTIVE)


def reason_code(status: str, reason: str | None) -> str | None:
    """``reason`` as a code of ``STATUS_REASONS`` for a membership in ``status`` (None when
    it is active or no reason was recorded): never free text."""
    if status == ACTIVE or reason is None or reason in STATUS_REASONS:
        return None if status == ACTIVE else reason
    return SUSPENDED_BY_SSO if status == INACTIVE else TERMINATED_BY_SSO


@dataclass(frozen=True, slots=True)
class Earlier:
    """The latest months paid before the history read (the window): at all, and on time
    (by the 15th of the next month); None where there is none."""

    last_paid: Month | None = None
    last_on_time: Month | None = None


@dataclass(frozen=True, slots=True)
class MembershipFacts:
    """What a membership's status is derived from."""

    section: int
    recorded: Standing
    coverage_start: Month
    rules_from: Month | None = None  # set by an officer's reinstatement (Section 39)
    paid: Mapping[Month, date] = field(default_factory=dict)  # month -> date paid (its section)
    # Section 39, recorded active: the months paid before the window (None: not read, so an
    # ending older than the window shows as the window's first month).
    earlier: Earlier | None = None


def standing_history_start(today: date) -> Month:
    """The first month of payment history read for a standing on ``today``."""
    return Month.of(today).minus(STANDING_HISTORY_MONTHS)


def first_judged(facts: MembershipFacts) -> Month:
    """The first month the Section 39 rules judge over the real history: the coverage start,
    or a reinstatement's ``rules_from`` when later."""
    start = facts.coverage_start
    return start if facts.rules_from is None else max(start, facts.rules_from)


def rules_start(facts: MembershipFacts, today: date) -> Month:
    """The first month the Section 39 rules are judged from, on ``today``, over the history read."""
    return max(first_judged(facts), standing_history_start(today))


def _older_ending(facts: MembershipFacts, earlier: Earlier, policy: S39Policy) -> Standing:
    """The ending of a membership that ended before the window (module docstring)."""
    last = earlier.last_paid if policy.late_counts_as_paid else earlier.last_on_time
    first = first_judged(facts)
    ended = first if last is None or last < first else last.plus(1)
    return Standing(TERMINATED, THREE_CONSECUTIVE_UNPAID, ended)


def derive_standing(facts: MembershipFacts, *, today: date, policy: S39Policy) -> Standing:
    """The status the membership is in on ``today``."""
    if facts.recorded.status != ACTIVE:
        return facts.recorded
    if facts.section != 39:
        return ACTIVE_STANDING
    paid = dict(facts.paid)
    start = rules_start(facts, today)
    standing = s39_status(
        coverage_start=start, paid=paid.keys(), today=today, policy=policy, paid_on=paid
    )
    if (
        standing.ended_month == start
        and start > first_judged(facts)  # the window cut the history short
        and facts.earlier is not None
    ):
        return _older_ending(facts, facts.earlier, policy)
    return Standing(standing.status, standing.reason, standing.ended_month)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """An officer's change of status, with its reason (required)."""

    status: str
    reason: str
    ended_month: Month | None = None  # terminated: the first month no longer covered
    rules_from: Month | None = None  # active: judge the Section 39 rules again from this month


@dataclass(frozen=True, slots=True)
class StatusDecision:
    """What to store after a change: the record, the rules' start, the event (None: no change),
    and the status derived from them (the same status as recorded)."""

    recorded: Standing
    rules_from: Month | None
    event: str | None
    derived: Standing


def _contradiction(asked: str, derived: Standing, why: str) -> StatusContradictsRules:
    return StatusContradictsRules(
        f"Status {asked} contradicts the membership's status: {why}.",
        requested=asked,
        derived_status=derived.status,
        derived_reason=derived.reason,
        ended_month=None if derived.ended_month is None else str(derived.ended_month),
    )


def _latest_end(facts: MembershipFacts, today: date) -> Month:
    """The latest month an officer may end a membership from: this month, or the coverage
    start when cover has not begun yet."""
    return max(Month.of(today), facts.coverage_start)


def _check_months(facts: MembershipFacts, change: StatusChange, today: date) -> None:
    if change.status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}.", field="status")
    if not change.reason.strip():
        raise InvalidInput("A change of status needs a reason.", field="reason")
    if change.ended_month is not None:
        if change.status != TERMINATED:
            raise InvalidInput("endedMonth is only for a termination.", field="endedMonth")
        if not facts.coverage_start <= change.ended_month <= _latest_end(facts, today):
            raise InvalidInput(
                "endedMonth must lie between the coverage start and this month"
                " (the coverage start, when it is still ahead).",
                field="endedMonth",
            )
    if change.rules_from is not None:
        if change.status != ACTIVE:
            raise InvalidInput("rulesFrom is only for a reinstatement.", field="rulesFrom")
        if facts.section != 39:
            raise InvalidInput("rulesFrom is only for Section 39.", field="rulesFrom")
        if not facts.coverage_start <= change.rules_from <= Month.of(today):
            raise InvalidInput(
                "rulesFrom must lie between the coverage start and this month.",
                field="rulesFrom",
            )


def decide_status_change(
    facts: MembershipFacts, change: StatusChange, *, today: date, policy: S39Policy
) -> StatusDecision:
    """The record an officer's change leaves; StatusContradictsRules if the derived status
    would not be the one asked for (or InvalidInput for a malformed change)."""
    _check_months(facts, change, today)
    current = derive_standing(facts, today=today, policy=policy)
    if facts.recorded.status == TERMINATED and facts.recorded.reason == SECTION33_EMPLOYMENT:
        # Any change, a termination too, would replace the reason that keeps it closed.
        raise _contradiction(
            change.status,
            current,
            "it ended when the person returned to Section 33"
            " employment; a new membership is a new registration",
        )
    if change.status == TERMINATED:
        ended = change.ended_month or _latest_end(facts, today)
        # The rules' own ending, whatever was recorded since (an officer's earlier termination
        # may not carry the month past it).
        ruled = derive_standing(
            replace(facts, recorded=ACTIVE_STANDING), today=today, policy=policy
        )
        if ruled.ended_month is not None and ended > ruled.ended_month:
            raise _contradiction(
                change.status, ruled, f"the rules ended it from {ruled.ended_month}"
            )
        recorded = Standing(TERMINATED, TERMINATED_BY_SSO, ended)  # the words: the event's
        return StatusDecision(recorded, facts.rules_from, TERMINATED_EVENT, recorded)
    if change.status == INACTIVE:
        if current.status == TERMINATED:
            raise _contradiction(change.status, current, "it has ended")
        recorded = Standing(INACTIVE, SUSPENDED_BY_SSO)
        return StatusDecision(recorded, facts.rules_from, SUSPENDED_EVENT, recorded)
    rules_from = change.rules_from or facts.rules_from
    after = replace(facts, recorded=ACTIVE_STANDING, rules_from=rules_from)
    derived = derive_standing(after, today=today, policy=policy)
    if derived.status != ACTIVE:
        raise _contradiction(
            change.status,
            derived,
            f"the rules end it from {derived.ended_month} ({derived.reason}); a reinstatement"
            " names the month to judge the rules from again (rulesFrom)",
        )
    if current.status == ACTIVE and rules_from == facts.rules_from:
        return StatusDecision(facts.recorded, facts.rules_from, None, current)  # nothing to do
    return StatusDecision(ACTIVE_STANDING, rules_from, REINSTATED_EVENT, derived)


def decide_section33_return(
    facts: MembershipFacts, *, employed_from: date, today: date, policy: S39Policy
) -> Standing:
    """The record of a membership ended by employment under Section 33 from ``employed_from``
    (cover ends from that month); Conflict when no membership is open to end."""
    if employed_from > today:
        raise InvalidInput("employedFrom is in the future.", field="employedFrom")
    ended = Month.of(employed_from)
    if ended < facts.coverage_start:
        raise InvalidInput("employedFrom is before the coverage started.", field="employedFrom")
    current = derive_standing(facts, today=today, policy=policy)
    if current.status == TERMINATED:
        raise Conflict(
            "The membership has already ended; there is none open for Section 33 to end.",
            reason="no_open_membership",
            ended_month=None if current.ended_month is None else str(current.ended_month),
        )
    return Standing(TERMINATED, SECTION33_EMPLOYMENT, ended)
