"""Section 40: the current month plus up to 12 ahead, never a past month; option changes."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.months import Month
from app.domain.payable import default_selection
from app.domain.rates import DEFAULT_RATE_HISTORY, Rate, RateTable
from app.domain.section40 import S40Policy, check_option_change, s40_payable_months
from app.errors import InvalidInput, NoRate, OptionChangeRefused

TABLE = RateTable(DEFAULT_RATE_HISTORY)


def names(months: list[Month]) -> list[str]:
    return [str(month) for month in months]


def test_current_month_and_twelve_ahead() -> None:
    dues = s40_payable_months(option=1, paid=(), today=date(2024, 6, 30), rates=TABLE)
    assert [due.month for due in dues] == Month.range(Month(2024, 6), Month(2025, 6))
    assert len(dues) == 13
    assert all(due.amount_satang == 7_000 and due.government_satang == 3_000 for due in dues)
    assert all(due.due_date is None and not due.overdue for due in dues)
    assert [due.advance for due in dues] == [False] + [True] * 12


def test_first_of_the_month_drops_the_previous_month() -> None:
    dues = s40_payable_months(option=2, paid=(), today=date(2025, 1, 1), rates=TABLE)
    assert str(dues[0].month) == "2025-01"
    assert str(dues[-1].month) == "2026-01"


def test_paid_months_are_left_out() -> None:
    paid = {Month(2024, 6), Month(2024, 8)}
    dues = s40_payable_months(option=3, paid=paid, today=date(2024, 6, 10), rates=TABLE)
    assert str(dues[0].month) == "2024-07"
    assert Month(2024, 8) not in {due.month for due in dues}
    assert len(dues) == 11
    assert [str(due.month) for due in default_selection(40, dues)] == ["2024-07"]


def test_coverage_start_in_the_future_limits_the_months() -> None:
    dues = s40_payable_months(
        option=1, paid=(), today=date(2024, 6, 10), rates=TABLE, coverage_start=Month(2024, 9)
    )
    assert str(dues[0].month) == "2024-09"
    assert str(dues[-1].month) == "2025-06"
    past_start = s40_payable_months(
        option=1, paid=(), today=date(2024, 6, 10), rates=TABLE, coverage_start=Month(2020, 1)
    )
    assert str(past_start[0].month) == "2024-06"


@pytest.mark.parametrize(
    ("option", "today", "amounts"),
    [
        # Cuts Aug 2021 - Jan 2022 and May - Jul 2022: from July 2021, the first month is
        # full, the next six cut, three full, three cut again.
        (1, date(2021, 7, 31), [7_000] + [4_200] * 6 + [7_000] * 3 + [4_200] * 3),
        (2, date(2021, 7, 1), [10_000] + [6_000] * 6 + [10_000] * 3 + [6_000] * 3),
        (3, date(2022, 1, 31), [18_000] + [30_000] * 3 + [18_000] * 3 + [30_000] * 6),
        (3, date(2022, 2, 1), [30_000] * 3 + [18_000] * 3 + [30_000] * 7),
        (2, date(2022, 8, 1), [10_000] * 13),  # both cuts over
    ],
)
def test_rates_follow_the_2021_and_2022_cuts(option: int, today: date, amounts: list[int]) -> None:
    dues = s40_payable_months(option=option, paid=(), today=today, rates=TABLE)
    assert [due.amount_satang for due in dues] == amounts


def test_policy_months_ahead() -> None:
    dues = s40_payable_months(
        option=1, paid=(), today=date(2024, 6, 1), rates=TABLE, policy=S40Policy(max_months_ahead=0)
    )
    assert names([due.month for due in dues]) == ["2024-06"]


@pytest.mark.parametrize("option", [0, 4, -1])
def test_unknown_option(option: int) -> None:
    with pytest.raises(InvalidInput, match="option must be 1, 2 or 3") as caught:
        s40_payable_months(option=option, paid=(), today=date(2024, 6, 1), rates=TABLE)
    assert caught.value.details == {"field": "option", "option": option}


def test_no_rate_before_section_40_rates() -> None:
    with pytest.raises(NoRate):
        s40_payable_months(option=1, paid=(), today=date(2011, 6, 1), rates=TABLE)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_months_ahead": -1},
        {"max_savings_per_month_satang": -1},
        {"option_changes_per_year": -1},
    ],
)
def test_policy_refuses_negative_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="negative"):
        S40Policy(**kwargs)


@given(
    option=st.sampled_from([1, 2, 3]),
    today=st.dates(min_value=date(2012, 1, 1), max_value=date(2035, 12, 31)),
    paid_offsets=st.sets(st.integers(min_value=-24, max_value=24)),
    start_offset=st.none() | st.integers(min_value=-24, max_value=24),
)
def test_never_a_past_month_and_at_most_thirteen(
    option: int, today: date, paid_offsets: set[int], start_offset: int | None
) -> None:
    current = Month.of(today)
    paid = {current.plus(offset) for offset in paid_offsets}
    start = None if start_offset is None else current.plus(start_offset)
    dues = s40_payable_months(
        option=option, paid=paid, today=today, rates=TABLE, coverage_start=start
    )
    assert len(dues) <= 13
    for due in dues:
        assert current <= due.month <= current.plus(12)
        assert due.month not in paid
        assert start is None or due.month >= start
        assert due.amount_satang == TABLE.amount(40, option, due.month)


# --- option change ------------------------------------------------------------------------------
def test_option_change_takes_effect_next_month() -> None:
    assert check_option_change(
        current=1, new=2, last_change=None, today=date(2024, 6, 30)
    ) == Month(2024, 7)
    assert check_option_change(
        current=3, new=1, last_change=date(2023, 12, 31), today=date(2024, 12, 31)
    ) == Month(2025, 1)


@pytest.mark.parametrize(
    ("current", "new", "last_change", "today", "reason"),
    [
        (1, 1, None, date(2024, 6, 1), "same_option"),
        (1, 4, None, date(2024, 6, 1), "invalid_option"),
        (1, 0, None, date(2024, 6, 1), "invalid_option"),
        (1, 2, date(2024, 1, 1), date(2024, 12, 31), "already_changed_this_year"),
        (1, 2, date(2024, 6, 1), date(2024, 6, 1), "already_changed_this_year"),
    ],
)
def test_option_change_refusals(
    current: int, new: int, last_change: date | None, today: date, reason: str
) -> None:
    with pytest.raises(OptionChangeRefused) as caught:
        check_option_change(current=current, new=new, last_change=last_change, today=today)
    assert caught.value.details["reason"] == reason


def test_option_change_counts_per_calendar_year_by_policy() -> None:
    twice = S40Policy(option_changes_per_year=2)
    assert check_option_change(
        current=1, new=2, last_change=date(2024, 3, 1), today=date(2024, 6, 1), policy=twice
    ) == Month(2024, 7)
    with pytest.raises(OptionChangeRefused, match="at most 2 time") as caught:
        check_option_change(
            current=1,
            new=2,
            last_change=date(2024, 3, 1),
            today=date(2024, 6, 1),
            policy=twice,
            changes_this_year=2,
        )
    assert caught.value.details == {
        "reason": "already_changed_this_year",
        "last_change": "2024-03-01",
        "changes_this_year": 2,
        "changes_per_year": 2,
    }
    never = S40Policy(option_changes_per_year=0)
    with pytest.raises(OptionChangeRefused) as refused:
        check_option_change(
            current=1, new=2, last_change=None, today=date(2024, 6, 1), policy=never
        )
    assert refused.value.details["last_change"] is None


def test_a_paid_month_without_a_rate_is_left_out_and_an_unpaid_one_is_refused() -> None:
    # Months are priced a window at a time and kept; a month no rate covers is refused only
    # when it is offered, as when each month was priced on its own.
    late = RateTable([Rate(40, 1, Month(2024, 7), None, 7_000, 3_000)])
    june = date(2024, 6, 10)
    dues = s40_payable_months(option=1, paid={Month(2024, 6)}, today=june, rates=late)
    assert [str(due.month) for due in dues][:2] == ["2024-07", "2024-08"]
    again = s40_payable_months(option=1, paid={Month(2024, 6): 1}.keys(), today=june, rates=late)
    assert again == dues
    with pytest.raises(NoRate):
        s40_payable_months(option=1, paid=[Month(2024, 7)], today=june, rates=late)
