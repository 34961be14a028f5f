"""One status: derived from what was recorded and the Section 39 rules; an officer's change is
an event the derivation honours, or it is refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.calendar import s39_due_date
from app.domain.months import Month
from app.domain.rates import DEFAULT_RATE_HISTORY, RateTable
from app.domain.section39 import (
    FEWER_THAN_9_OF_12,
    THREE_CONSECUTIVE_UNPAID,
    S39Policy,
    s39_payable_months,
    s39_status,
)
from app.domain.standing import (
    ACTIVE,
    ACTIVE_STANDING,
    INACTIVE,
    REINSTATED_EVENT,
    SECTION33_EMPLOYMENT,
    SUSPENDED_BY_SSO,
    SUSPENDED_EVENT,
    TERMINATED,
    TERMINATED_BY_SSO,
    TERMINATED_EVENT,
    Earlier,
    MembershipFacts,
    Standing,
    StatusChange,
    decide_section33_return,
    decide_status_change,
    derive_standing,
    reason_code,
    rules_start,
    standing_history_start,
)
from app.errors import Conflict, InvalidInput, StatusContradictsRules

TODAY = date(2024, 6, 20)  # May is past due (15 June); June is not yet
POLICY = S39Policy()
START = Month(2023, 1)
RATES = RateTable(DEFAULT_RATE_HISTORY)


def paid(*months: Month) -> dict[Month, date]:
    return {m: m.plus(1).first_day for m in months}


def every_month(first: Month, last: Month, *, but: tuple[Month, ...] = ()) -> dict[Month, date]:
    return paid(*(m for m in Month.range(first, last) if m not in but))


def s39(recorded: Standing = ACTIVE_STANDING, **extra: object) -> MembershipFacts:
    """A Section 39 member who has paid every month due (unless ``paid`` says otherwise)."""
    facts = MembershipFacts(
        section=39, recorded=recorded, coverage_start=START,
        paid=every_month(START, Month(2024, 5)),
    )  # fmt: skip
    return replace(facts, **extra)  # type: ignore[arg-type]


#: Paid up to January 2024, nothing since: three months unpaid from February.
LAPSED = s39(paid=every_month(START, Month(2024, 1)))


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (s39(), ACTIVE_STANDING),
        (LAPSED, Standing(TERMINATED, THREE_CONSECUTIVE_UNPAID, Month(2024, 2))),
        (
            s39(
                paid=every_month(
                    START,
                    Month(2024, 5),
                    but=(Month(2023, 8), Month(2023, 10), Month(2023, 12), Month(2024, 2)),
                )
            ),
            Standing(TERMINATED, FEWER_THAN_9_OF_12, Month(2024, 2)),
        ),
        # A recorded status other than active is what the person is in.
        (s39(Standing(INACTIVE, "suspended")), Standing(INACTIVE, "suspended")),
        (s39(Standing(TERMINATED, "x", Month(2023, 9))), Standing(TERMINATED, "x", Month(2023, 9))),
        # Section 40 has no such rule.
        (replace(LAPSED, section=40), ACTIVE_STANDING),
        # A reinstatement judges the rules from its month: earlier gaps no longer count.
        (replace(LAPSED, rules_from=Month(2024, 5)), ACTIVE_STANDING),
        (
            replace(LAPSED, rules_from=Month(2024, 2)),
            Standing(TERMINATED, THREE_CONSECUTIVE_UNPAID, Month(2024, 2)),
        ),
    ],
)
def test_the_status_a_person_is_in(facts: MembershipFacts, expected: Standing) -> None:
    assert derive_standing(facts, today=TODAY, policy=POLICY) == expected


def test_the_rules_start_at_the_latest_of_coverage_history_and_reinstatement() -> None:
    assert rules_start(s39(), TODAY) == Month(2023, 5)  # 13 months of history before June 2024
    assert rules_start(s39(coverage_start=Month(2024, 3)), TODAY) == Month(2024, 3)
    assert rules_start(s39(rules_from=Month(2024, 4)), TODAY) == Month(2024, 4)


def change(status: str, **extra: object) -> StatusChange:
    return replace(StatusChange(status, "because"), **extra)  # type: ignore[arg-type]


def test_active_over_a_rule_ending_is_refused_without_a_month_to_judge_from() -> None:
    with pytest.raises(StatusContradictsRules) as caught:
        decide_status_change(LAPSED, change(ACTIVE), today=TODAY, policy=POLICY)
    assert caught.value.code == "client.status_contradicts_rules"
    assert caught.value.http_status == 409
    assert caught.value.details == {
        "requested": ACTIVE,
        "derived_status": TERMINATED,
        "derived_reason": THREE_CONSECUTIVE_UNPAID,
        "ended_month": "2024-02",
    }
    # From a month whose rules still end it: refused too.
    with pytest.raises(StatusContradictsRules):
        decide_status_change(
            LAPSED, change(ACTIVE, rules_from=Month(2024, 3)), today=TODAY, policy=POLICY
        )


def test_a_reinstatement_is_an_event_the_derivation_then_honours() -> None:
    decision = decide_status_change(
        LAPSED, change(ACTIVE, rules_from=Month(2024, 5)), today=TODAY, policy=POLICY
    )
    assert decision.event == REINSTATED_EVENT
    assert decision.recorded == ACTIVE_STANDING and decision.rules_from == Month(2024, 5)
    after = replace(LAPSED, recorded=decision.recorded, rules_from=decision.rules_from)
    assert derive_standing(after, today=TODAY, policy=POLICY) == decision.derived
    assert decision.derived.status == ACTIVE


@pytest.mark.parametrize(
    ("facts", "asked", "event", "recorded"),
    [
        (
            s39(),
            change(TERMINATED, ended_month=Month(2024, 4)),
            TERMINATED_EVENT,
            Standing(TERMINATED, TERMINATED_BY_SSO, Month(2024, 4)),
        ),
        (
            s39(),
            change(TERMINATED),
            TERMINATED_EVENT,
            Standing(TERMINATED, TERMINATED_BY_SSO, Month(2024, 6)),
        ),
        # Ending it before the rules did is the officer's to record.
        (
            LAPSED,
            change(TERMINATED, ended_month=Month(2024, 1)),
            TERMINATED_EVENT,
            Standing(TERMINATED, TERMINATED_BY_SSO, Month(2024, 1)),
        ),
        (
            LAPSED,
            change(TERMINATED, ended_month=Month(2024, 2)),
            TERMINATED_EVENT,
            Standing(TERMINATED, TERMINATED_BY_SSO, Month(2024, 2)),
        ),
        (s39(), change(INACTIVE), SUSPENDED_EVENT, Standing(INACTIVE, SUSPENDED_BY_SSO)),
        (s39(Standing(INACTIVE, "x")), change(ACTIVE), REINSTATED_EVENT, ACTIVE_STANDING),
        (
            s39(Standing(TERMINATED, "x", Month(2024, 6))),
            change(ACTIVE),
            REINSTATED_EVENT,
            ACTIVE_STANDING,
        ),
        (s39(), change(ACTIVE), None, ACTIVE_STANDING),  # nothing to change
    ],
)
def test_changes_the_rules_allow(
    facts: MembershipFacts, asked: StatusChange, event: str | None, recorded: Standing
) -> None:
    decision = decide_status_change(facts, asked, today=TODAY, policy=POLICY)
    assert (decision.event, decision.recorded) == (event, recorded)
    after = replace(facts, recorded=decision.recorded, rules_from=decision.rules_from)
    assert derive_standing(after, today=TODAY, policy=POLICY).status == asked.status


@pytest.mark.parametrize(
    ("facts", "asked"),
    [
        (LAPSED, change(INACTIVE)),  # it has ended: it cannot be suspended
        (LAPSED, change(TERMINATED, ended_month=Month(2024, 4))),  # the rules ended it sooner
        (s39(Standing(TERMINATED, SECTION33_EMPLOYMENT, Month(2024, 3))), change(ACTIVE)),
        (s39(Standing(TERMINATED, SECTION33_EMPLOYMENT, Month(2024, 3))), change(INACTIVE)),
        # A termination would replace the reason that keeps it closed (then `active` reopens).
        (s39(Standing(TERMINATED, SECTION33_EMPLOYMENT, Month(2024, 3))), change(TERMINATED)),
        # An officer's earlier termination does not let a second one pass the rules' month.
        (
            replace(LAPSED, recorded=Standing(TERMINATED, "x", Month(2024, 1))),
            change(TERMINATED, ended_month=Month(2024, 5)),
        ),
        (replace(LAPSED, recorded=Standing(INACTIVE, "x")), change(TERMINATED)),
    ],
)
def test_changes_the_rules_contradict_are_refused(
    facts: MembershipFacts, asked: StatusChange
) -> None:
    with pytest.raises(StatusContradictsRules):
        decide_status_change(facts, asked, today=TODAY, policy=POLICY)


@pytest.mark.parametrize(
    ("asked", "field"),
    [
        (change(ACTIVE, reason="  "), "reason"),
        (change(ACTIVE, ended_month=Month(2024, 5)), "endedMonth"),
        (change(INACTIVE, rules_from=Month(2024, 5)), "rulesFrom"),
        (change(ACTIVE, rules_from=Month(2024, 7)), "rulesFrom"),  # not yet
        (change(ACTIVE, rules_from=Month(2022, 12)), "rulesFrom"),  # before cover began
        (change("gone"), "status"),
        (change(TERMINATED, ended_month=Month(2022, 12)), "endedMonth"),  # before cover began
        (change(TERMINATED, ended_month=Month(2024, 7)), "endedMonth"),  # not yet
        (change(TERMINATED, ended_month=Month(2031, 1)), "endedMonth"),
    ],
)
def test_malformed_changes(asked: StatusChange, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decide_status_change(s39(), asked, today=TODAY, policy=POLICY)
    assert caught.value.details["field"] == field


def test_rules_from_is_for_section_39_only() -> None:
    with pytest.raises(InvalidInput) as caught:
        decide_status_change(
            s39(section=40), change(ACTIVE, rules_from=Month(2024, 5)), today=TODAY, policy=POLICY
        )
    assert caught.value.details["field"] == "rulesFrom"


def test_a_membership_not_begun_ends_from_its_coverage_start() -> None:
    ahead = s39(coverage_start=Month(2024, 9), paid={})
    decision = decide_status_change(ahead, change(TERMINATED), today=TODAY, policy=POLICY)
    assert decision.recorded == Standing(TERMINATED, TERMINATED_BY_SSO, Month(2024, 9))


def test_a_return_to_section_33_ends_an_open_membership_from_that_month() -> None:
    for section in (39, 40):
        facts = s39(section=section)
        ended = decide_section33_return(
            facts, employed_from=date(2024, 6, 3), today=TODAY, policy=POLICY
        )
        assert ended == Standing(TERMINATED, SECTION33_EMPLOYMENT, Month(2024, 6))
    with pytest.raises(Conflict) as caught:
        decide_section33_return(LAPSED, employed_from=TODAY, today=TODAY, policy=POLICY)
    assert caught.value.details == {"reason": "no_open_membership", "ended_month": "2024-02"}
    with pytest.raises(InvalidInput):
        decide_section33_return(s39(), employed_from=date(2024, 6, 21), today=TODAY, policy=POLICY)


# --- an ending older than the window keeps its month ---------------------------------------------
def windowed(history: dict[Month, date], today: date, *, start: Month = START) -> MembershipFacts:
    """What a reader reads: the window's months, and the latest ones paid before it."""
    first = standing_history_start(today)
    before = [m for m in history if m < first]
    on_time = [m for m in before if history[m] <= s39_due_date(m)]
    return MembershipFacts(
        section=39, recorded=ACTIVE_STANDING, coverage_start=start,
        paid={m: day for m, day in history.items() if m >= first},
        earlier=Earlier(max(before, default=None), max(on_time, default=None)),
    )  # fmt: skip


def test_an_ending_older_than_the_window_keeps_its_month() -> None:
    history = every_month(START, Month(2023, 10))  # nothing paid since: ended from 2023-11
    for today in (date(2024, 6, 20), date(2025, 3, 1), date(2031, 12, 31)):
        assert derive_standing(windowed(history, today), today=today, policy=POLICY) == Standing(
            TERMINATED, THREE_CONSECUTIVE_UNPAID, Month(2023, 11)
        )
        # Without the months before the window, once the ending is older than the window, the
        # window's first month: a month that moves.
        blind = replace(windowed(history, today), earlier=None)
        ended = derive_standing(blind, today=today, policy=POLICY).ended_month
        assert ended == max(Month(2023, 11), standing_history_start(today))
    # Nothing paid since the rules' start: ended from it (a reinstatement's month, here).
    later = date(2026, 1, 10)
    facts = replace(windowed(history, later), rules_from=Month(2024, 1))
    assert derive_standing(facts, today=later, policy=POLICY).ended_month == Month(2024, 1)
    assert derive_standing(windowed({}, later), today=later, policy=POLICY).ended_month == START


@settings(max_examples=150, deadline=None)
@given(
    choices=st.lists(st.integers(0, 3), min_size=30, max_size=120),
    policy=st.builds(
        S39Policy,
        max_overdue_months=st.integers(1, 3),
        late_counts_as_paid=st.booleans(),
        advance_months=st.integers(0, 2),
    ),
)
def test_the_window_and_the_months_before_it_judge_as_the_whole_history(
    choices: list[int], policy: S39Policy
) -> None:
    """A member pays (0 to 3 of the months payable) or not, three times a month, as the gateway
    lets them; at every step the standing read through the window is the whole history's."""
    history: dict[Month, date] = {}
    for step, pay in enumerate(choices):
        today = START.plus(step // 3).first_day.replace(day=(3, 12, 20)[step % 3])
        facts = windowed(history, today)
        standing = derive_standing(facts, today=today, policy=policy)
        whole = s39_status(coverage_start=START, paid=history.keys(), today=today,
                           policy=policy, paid_on=history)  # fmt: skip
        assert (standing.status, standing.ended_month) == (whole.status, whole.ended_month)
        if standing.status != ACTIVE:
            continue
        payable = s39_payable_months(
            coverage_start=rules_start(facts, today), paid=history.keys(), today=today,
            rates=RATES, policy=policy, paid_on=history,
        )  # fmt: skip
        history.update({month.month: today for month in payable[:pay]})


# --- reasons are codes ---------------------------------------------------------------------------
def test_an_officers_words_are_never_the_recorded_reason() -> None:
    words = "Died 3 May; widow informed at the Bang Khen branch, case 2567/0142"
    ended = decide_status_change(s39(), StatusChange(TERMINATED, words), today=TODAY, policy=POLICY)
    suspended = decide_status_change(
        s39(), StatusChange(INACTIVE, words), today=TODAY, policy=POLICY
    )
    assert (ended.recorded.reason, suspended.recorded.reason) == (
        TERMINATED_BY_SSO,
        SUSPENDED_BY_SSO,
    )
    # An officer who types the code of a Section 33 ending does not make one.
    typed = decide_status_change(
        s39(), StatusChange(TERMINATED, SECTION33_EMPLOYMENT), today=TODAY, policy=POLICY
    )
    reopened = decide_status_change(
        s39(typed.recorded), change(ACTIVE, rules_from=Month(2024, 5)), today=TODAY, policy=POLICY
    )
    assert reopened.event == REINSTATED_EVENT


@pytest.mark.parametrize(
    ("status", "reason", "code"),
    [
        (TERMINATED, THREE_CONSECUTIVE_UNPAID, THREE_CONSECUTIVE_UNPAID),
        (TERMINATED, FEWER_THAN_9_OF_12, FEWER_THAN_9_OF_12),
        (TERMINATED, SECTION33_EMPLOYMENT, SECTION33_EMPLOYMENT),
        (TERMINATED, TERMINATED_BY_SSO, TERMINATED_BY_SSO),
        (TERMINATED, "ผู้ประกันตนเสียชีวิต แจ้งโดยบุตร โทร 081-234-5678", TERMINATED_BY_SSO),
        (INACTIVE, "under review: suspected identity fraud", SUSPENDED_BY_SSO),
        (TERMINATED, None, None),  # nothing recorded: nothing to say
        (ACTIVE, "reinstated after slip 0042", None),
    ],
)
def test_whatever_a_record_holds_reaches_partners_as_a_code(
    status: str, reason: str | None, code: str | None
) -> None:
    assert reason_code(status, reason) == code
