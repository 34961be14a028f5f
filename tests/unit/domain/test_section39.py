"""Section 39: standing (3 in a row, 9 of 12), payable months and the refusal to pay."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.months import Month
from app.domain.payable import MonthDue, default_selection
from app.domain.rates import DEFAULT_RATE_HISTORY, RateTable
from app.domain.section39 import (
    FEWER_THAN_9_OF_12,
    THREE_CONSECUTIVE_UNPAID,
    MemberStanding,
    S39Policy,
    ensure_s39_may_pay,
    latest_past_due,
    s39_payable_months,
    s39_status,
)
from app.errors import MemberTerminated, NoRate

TABLE = RateTable(DEFAULT_RATE_HISTORY)
START = Month(2023, 1)


def m(text: str) -> Month:
    return Month.parse(text)


def months(*texts: str) -> list[Month]:
    return [m(text) for text in texts]


def paid_except(first: str, last: str, unpaid: Iterable[str] = ()) -> set[Month]:
    """Every month from first to last, minus the ones named unpaid."""
    return set(Month.range(m(first), m(last))) - {m(text) for text in unpaid}


def status(paid: set[Month], today: date, **kwargs: object) -> MemberStanding:
    return s39_status(coverage_start=START, paid=paid, today=today, **kwargs)  # type: ignore[arg-type]


def payable(paid: set[Month], today: date, **kwargs: object) -> list[MonthDue]:
    kwargs.setdefault("coverage_start", START)
    return s39_payable_months(paid=paid, today=today, rates=TABLE, **kwargs)  # type: ignore[arg-type]


# --- when a month becomes unpaid ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("today", "latest"),
    [
        (date(2024, 6, 1), m("2024-04")),
        (date(2024, 6, 15), m("2024-04")),  # May is due today: not yet unpaid
        (date(2024, 6, 16), m("2024-05")),
        (date(2024, 1, 15), m("2023-11")),
        (date(2024, 1, 16), m("2023-12")),  # across the year end
        (date(2024, 2, 29), m("2024-01")),  # leap day
        (date(2024, 3, 1), m("2024-01")),
    ],
)
def test_latest_past_due(today: date, latest: Month) -> None:
    assert latest_past_due(today) == latest


# --- three consecutive unpaid months ------------------------------------------------------------
@pytest.mark.parametrize(
    ("paid", "today", "expected"),
    [
        # Mar, Apr, May 2024 unpaid: May's due date is 15 June.
        (paid_except("2023-01", "2024-02"), date(2024, 6, 15), MemberStanding("active")),
        (
            paid_except("2023-01", "2024-02"),
            date(2024, 6, 16),
            MemberStanding("terminated", m("2024-03"), THREE_CONSECUTIVE_UNPAID),
        ),
        # Across the year end: Nov, Dec 2023 and Jan 2024 unpaid.
        (paid_except("2023-01", "2023-10"), date(2024, 2, 15), MemberStanding("active")),
        (
            paid_except("2023-01", "2023-10"),
            date(2024, 2, 16),
            MemberStanding("terminated", m("2023-11"), THREE_CONSECUTIVE_UNPAID),
        ),
        # Two in a row, one paid, two in a row: never three, but four of twelve unpaid.
        (
            paid_except("2023-01", "2024-12", ["2024-01", "2024-02", "2024-04", "2024-05"]),
            date(2025, 1, 20),
            MemberStanding("terminated", m("2024-05"), FEWER_THAN_9_OF_12),
        ),
        (
            paid_except("2023-01", "2024-12", ["2024-01", "2024-02", "2024-04"]),
            date(2025, 1, 20),
            MemberStanding("active"),
        ),
        # The first run counts even when a later one follows.
        (
            paid_except("2023-01", "2024-12", ["2023-03", "2023-04", "2023-05", "2024-07"]),
            date(2025, 1, 20),
            MemberStanding("terminated", m("2023-03"), THREE_CONSECUTIVE_UNPAID),
        ),
        # Coverage from the start: the first three months unpaid.
        (set(), date(2023, 4, 15), MemberStanding("active")),
        (
            set(),
            date(2023, 4, 16),
            MemberStanding("terminated", m("2023-01"), THREE_CONSECUTIVE_UNPAID),
        ),
    ],
)
def test_three_consecutive_unpaid(paid: set[Month], today: date, expected: MemberStanding) -> None:
    assert status(paid, today) == expected


# --- fewer than 9 of any 12 ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("unpaid", "today", "expected"),
    [
        # Four unpaid within six months: fails when the fourth (Jul) falls due on 15 Aug.
        (["2023-01", "2023-03", "2023-05", "2023-07"], date(2023, 8, 15), None),
        (["2023-01", "2023-03", "2023-05", "2023-07"], date(2023, 8, 16), "2023-07"),
        # Four unpaid spanning exactly 12 months (Jan..Dec): one window holds all four.
        (["2023-01", "2023-04", "2023-08", "2023-12"], date(2024, 1, 16), "2023-12"),
        # Spanning 13 months: no window of 12 holds four.
        (["2023-01", "2023-04", "2023-08", "2024-01"], date(2024, 12, 20), None),
        # The window slides: Apr 2023..Mar 2024 holds Apr, Aug, Jan, Mar.
        (["2023-01", "2023-04", "2023-08", "2024-01", "2024-03"], date(2024, 4, 15), None),
        (["2023-01", "2023-04", "2023-08", "2024-01", "2024-03"], date(2024, 4, 16), "2024-03"),
        # Three unpaid in any 12 is the most allowed, year after year.
        (
            ["2023-02", "2023-06", "2023-10", "2024-02", "2024-06", "2024-10"],
            date(2025, 6, 1),
            None,
        ),
    ],
)
def test_fewer_than_9_of_12(unpaid: list[str], today: date, expected: str | None) -> None:
    standing = status(paid_except("2023-01", "2025-12", unpaid), today)
    if expected is None:
        assert standing == MemberStanding("active")
    else:
        assert standing == MemberStanding("terminated", m(expected), FEWER_THAN_9_OF_12)


def test_window_never_reaches_before_coverage() -> None:
    # Months before coverage_start are not unpaid; a new member is judged on its own months.
    standing = s39_status(
        coverage_start=m("2024-03"), paid=paid_except("2024-03", "2024-12"), today=date(2025, 1, 1)
    )
    assert standing.active
    assert s39_status(coverage_start=m("2025-03"), paid=(), today=date(2025, 1, 1)).active


def test_earlier_rule_wins_and_a_tie_reports_three_in_a_row() -> None:
    window_first = paid_except(
        "2023-01", "2024-12", ["2023-01", "2023-03", "2023-05", "2023-07", "2023-10", "2023-11"]
    )
    later_run = window_first - set(months("2023-12"))
    assert status(later_run, date(2024, 6, 1)) == MemberStanding(
        "terminated", m("2023-07"), FEWER_THAN_9_OF_12
    )
    tie = paid_except(
        "2023-01", "2024-12", ["2023-01", "2023-03", "2023-05", "2023-07", "2023-08", "2023-09"]
    )
    assert status(tie, date(2024, 6, 1)) == MemberStanding(
        "terminated", m("2023-07"), THREE_CONSECUTIVE_UNPAID
    )


def test_late_payments_count_unless_the_policy_says_otherwise() -> None:
    paid = paid_except("2023-01", "2024-06")
    paid_on = {month: month.plus(2).first_day for month in months("2024-01", "2024-02", "2024-03")}
    today = date(2024, 6, 1)
    assert status(paid, today, paid_on=paid_on).active
    strict = S39Policy(late_counts_as_paid=False)
    assert status(paid, today, paid_on=paid_on, policy=strict) == MemberStanding(
        "terminated", m("2024-01"), THREE_CONSECUTIVE_UNPAID
    )
    # Paid on the due date itself is on time.
    on_time = {month: month.plus(1).first_day.replace(day=15) for month in paid_on}
    assert status(paid, today, paid_on=on_time, policy=strict).active
    # Without dates, paid months count as paid on time.
    assert status(paid, today, policy=strict).active


def test_ensure_may_pay_refuses_a_terminated_member() -> None:
    paid = paid_except("2023-01", "2024-02")
    assert ensure_s39_may_pay(coverage_start=START, paid=paid, today=date(2024, 6, 15)).active
    with pytest.raises(MemberTerminated) as caught:
        ensure_s39_may_pay(coverage_start=START, paid=paid, today=date(2024, 6, 16))
    assert caught.value.details == {"ended_month": "2024-03", "reason": THREE_CONSECUTIVE_UNPAID}
    assert "ended from 2024-03" in caught.value.message
    assert "three consecutive months" in caught.value.message


def test_ensure_may_pay_names_the_9_of_12_rule() -> None:
    paid = paid_except("2023-01", "2023-12", ["2023-01", "2023-03", "2023-05", "2023-07"])
    with pytest.raises(MemberTerminated, match="fewer than 9 of 12") as caught:
        ensure_s39_may_pay(coverage_start=START, paid=paid, today=date(2023, 9, 1))
    assert caught.value.details["reason"] == FEWER_THAN_9_OF_12


@pytest.mark.parametrize(
    "kwargs",
    [{"max_overdue_months": -1}, {"late_surcharge_satang": -1}, {"advance_months": -1}],
)
def test_policy_refuses_negative_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="negative"):
        S39Policy(**kwargs)


# --- payable months -----------------------------------------------------------------------------
def summary(dues: list[MonthDue]) -> list[tuple[str, int, bool]]:
    return [(str(due.month), due.amount_satang, due.overdue) for due in dues]


@pytest.mark.parametrize(
    ("paid_through", "today", "expected"),
    [
        # On the 10th: April is overdue (due 15 May), May is not yet due, June is current.
        (
            "2024-03",
            date(2024, 6, 10),
            [("2024-04", 43_200, True), ("2024-05", 43_200, False), ("2024-06", 43_200, False)],
        ),
        (
            "2024-03",
            date(2024, 6, 15),
            [("2024-04", 43_200, True), ("2024-05", 43_200, False), ("2024-06", 43_200, False)],
        ),
        # On the 16th May turns overdue and April falls out of the one-month arrears.
        ("2024-03", date(2024, 6, 16), [("2024-05", 43_200, True), ("2024-06", 43_200, False)]),
        ("2024-04", date(2024, 6, 16), [("2024-05", 43_200, True), ("2024-06", 43_200, False)]),
        ("2024-05", date(2024, 6, 16), [("2024-06", 43_200, False)]),
        ("2024-06", date(2024, 6, 16), []),
        # Year end.
        (
            "2024-10",
            date(2025, 1, 10),
            [("2024-11", 43_200, True), ("2024-12", 43_200, False), ("2025-01", 43_200, False)],
        ),
        ("2024-10", date(2025, 1, 16), [("2024-12", 43_200, True), ("2025-01", 43_200, False)]),
        # Leap day: January is overdue since 16 February.
        ("2023-12", date(2024, 2, 29), [("2024-01", 43_200, True), ("2024-02", 43_200, False)]),
        # The 2020 cut (Mar-May 2020: 86 baht).
        (
            "2020-01",
            date(2020, 4, 10),
            [("2020-02", 43_200, True), ("2020-03", 8_600, False), ("2020-04", 8_600, False)],
        ),
        ("2020-04", date(2020, 6, 10), [("2020-05", 8_600, False), ("2020-06", 43_200, False)]),
        # The 2021 cuts (Jun-Aug 2021: 216 baht, then Sep-Nov 2021: 235 baht).
        (
            "2021-04",
            date(2021, 6, 10),
            [("2021-05", 43_200, False), ("2021-06", 21_600, False)],
        ),
        (
            "2021-06",
            date(2021, 9, 10),
            [("2021-07", 21_600, True), ("2021-08", 21_600, False), ("2021-09", 23_500, False)],
        ),
        (
            "2021-09",
            date(2021, 12, 10),
            [("2021-10", 23_500, True), ("2021-11", 23_500, False), ("2021-12", 43_200, False)],
        ),
        # The 2022 cut (May-Jul 2022: 91 baht).
        (
            "2022-03",
            date(2022, 5, 10),
            [("2022-04", 43_200, False), ("2022-05", 9_100, False)],
        ),
        (
            "2022-05",
            date(2022, 8, 10),
            [("2022-06", 9_100, True), ("2022-07", 9_100, False), ("2022-08", 43_200, False)],
        ),
    ],
)
def test_payable_months(
    paid_through: str, today: date, expected: list[tuple[str, int, bool]]
) -> None:
    dues = s39_payable_months(
        coverage_start=m("2019-01"),
        paid=paid_except("2019-01", paid_through),
        today=today,
        rates=TABLE,
    )
    assert summary(dues) == expected
    for due in dues:
        assert due.due_date == due.month.plus(1).first_day.replace(day=15)
        assert due.government_satang is None  # not known: absent, never 0.00
        assert not due.advance


def test_payable_never_before_coverage_start() -> None:
    assert summary(payable(set(), date(2024, 6, 20), coverage_start=m("2024-06"))) == [
        ("2024-06", 43_200, False)
    ]
    assert summary(payable(set(), date(2024, 6, 20), coverage_start=m("2024-05"))) == [
        ("2024-05", 43_200, True),
        ("2024-06", 43_200, False),
    ]
    assert payable(set(), date(2024, 6, 20), coverage_start=m("2024-08")) == []


def test_terminated_member_has_nothing_payable() -> None:
    assert payable(paid_except("2023-01", "2024-02"), date(2024, 6, 16)) == []


def test_policy_widens_arrears_adds_surcharge_and_advance_months() -> None:
    paid = paid_except("2023-01", "2024-04", ["2024-03"])  # Mar unpaid, May unpaid
    policy = S39Policy(max_overdue_months=3, late_surcharge_satang=1_000, advance_months=2)
    dues = payable(paid, date(2024, 6, 16), policy=policy)
    assert summary(dues) == [
        ("2024-03", 44_200, True),
        ("2024-05", 44_200, True),
        ("2024-06", 43_200, False),
        ("2024-07", 43_200, False),
        ("2024-08", 43_200, False),
    ]
    assert [due.advance for due in dues] == [False, False, False, True, True]
    assert [str(due.month) for due in default_selection(39, dues)] == [
        "2024-03",
        "2024-05",
        "2024-06",
    ]


def test_no_arrears_policy_offers_only_months_not_yet_due() -> None:
    dues = payable(paid_except("2023-01", "2024-03"), date(2024, 6, 10), policy=S39Policy(0))
    assert summary(dues) == [("2024-05", 43_200, False), ("2024-06", 43_200, False)]


def test_payable_without_a_rate_raises_no_rate() -> None:
    with pytest.raises(NoRate):
        s39_payable_months(
            coverage_start=m("1989-11"), paid=(), today=date(1989, 12, 10), rates=TABLE
        )


# --- properties ---------------------------------------------------------------------------------
days = st.dates(min_value=date(2019, 1, 1), max_value=date(2027, 12, 31))


@settings(deadline=None)
@given(
    start=st.integers(min_value=Month(2019, 1).index, max_value=Month(2026, 12).index),
    payment_days=st.lists(st.integers(min_value=1, max_value=31), min_size=1, max_size=36),
)
def test_paying_the_default_selection_every_month_keeps_a_member_active(
    start: int, payment_days: list[int]
) -> None:
    coverage_start = Month.from_index(start)
    paid: set[Month] = set()
    for offset, day in enumerate(payment_days):
        month = coverage_start.plus(offset)
        today = month.first_day + timedelta(days=min(day, month.last_day.day) - 1)
        dues = s39_payable_months(
            coverage_start=coverage_start, paid=paid, today=today, rates=TABLE
        )
        assert ensure_s39_may_pay(coverage_start=coverage_start, paid=paid, today=today).active
        paid.update(due.month for due in default_selection(39, dues))
        assert (
            s39_payable_months(coverage_start=coverage_start, paid=paid, today=today, rates=TABLE)
            == []
        )


@settings(deadline=None)
@given(
    start=st.integers(min_value=Month(2019, 1).index, max_value=Month(2026, 12).index),
    paid_flags=st.lists(st.booleans(), max_size=60),
    today=days,
)
def test_paying_exactly_the_payable_months_leaves_a_consistent_status(
    start: int, paid_flags: list[bool], today: date
) -> None:
    coverage_start = Month.from_index(start)
    paid = {coverage_start.plus(i) for i, flag in enumerate(paid_flags) if flag}
    before = s39_status(coverage_start=coverage_start, paid=paid, today=today)
    dues = s39_payable_months(coverage_start=coverage_start, paid=paid, today=today, rates=TABLE)
    if not before.active:
        assert dues == []
        return
    assert all(due.month >= coverage_start and due.month not in paid for due in dues)
    assert all(due.month <= Month.of(today) for due in dues)
    assert [due.month for due in dues] == sorted(due.month for due in dues)
    paid |= {due.month for due in dues}
    after = s39_status(coverage_start=coverage_start, paid=paid, today=today)
    assert after.active
    assert (
        s39_payable_months(coverage_start=coverage_start, paid=paid, today=today, rates=TABLE) == []
    )
