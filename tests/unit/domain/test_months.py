"""Contribution months: parsing, order and arithmetic across year ends."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.months import Month
from app.errors import InvalidMonth


@pytest.mark.parametrize(
    ("text", "month"),
    [
        ("2024-06", Month(2024, 6)),
        ("2020-01", Month(2020, 1)),
        ("1999-12", Month(1999, 12)),
        ("0001-01", Month(1, 1)),
        ("9999-12", Month(9999, 12)),
    ],
)
def test_parse_and_print(text: str, month: Month) -> None:
    assert Month.parse(text) == month
    assert str(month) == text


@pytest.mark.parametrize(
    "text",
    ["2024-13", "2024-00", "2024-6", "24-06", "2024/06", "2024-06-01", "", " 2024-06", "0000-01"],
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(InvalidMonth):
        Month.parse(text)


def test_parse_message_shows_what_was_sent() -> None:
    with pytest.raises(InvalidMonth, match="YYYY-MM") as caught:
        Month.parse("June 2024")
    assert caught.value.details == {"value": "June 2024"}


@pytest.mark.parametrize(("year", "month"), [(2024, 0), (2024, 13), (0, 1), (10_000, 1)])
def test_construction_refuses_impossible_months(year: int, month: int) -> None:
    with pytest.raises(InvalidMonth, match="not a calendar month"):
        Month(year, month)


@pytest.mark.parametrize(
    ("start", "n", "end"),
    [
        (Month(2024, 12), 1, Month(2025, 1)),
        (Month(2024, 1), -1, Month(2023, 12)),
        (Month(2024, 6), 12, Month(2025, 6)),
        (Month(2024, 6), 13, Month(2025, 7)),
        (Month(2024, 6), 0, Month(2024, 6)),
        (Month(2024, 1), -13, Month(2022, 12)),
    ],
)
def test_plus_and_minus_cross_year_ends(start: Month, n: int, end: Month) -> None:
    assert start.plus(n) == end
    assert end.minus(n) == start
    assert end.index - start.index == n


def test_order_is_by_time() -> None:
    assert Month(2023, 12) < Month(2024, 1) < Month(2024, 2)
    assert sorted([Month(2024, 1), Month(2023, 12), Month(2023, 2)]) == [
        Month(2023, 2),
        Month(2023, 12),
        Month(2024, 1),
    ]
    assert max(Month(2021, 8), Month(2021, 11)) == Month(2021, 11)


def test_of_takes_a_date_not_an_instant() -> None:
    assert Month.of(date(2024, 2, 29)) == Month(2024, 2)
    with pytest.raises(TypeError, match="bangkok_date"):
        Month.of(datetime(2024, 5, 31, 17, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("month", "first", "last"),
    [
        (Month(2024, 2), date(2024, 2, 1), date(2024, 2, 29)),  # leap year
        (Month(2023, 2), date(2023, 2, 1), date(2023, 2, 28)),
        (Month(2000, 2), date(2000, 2, 1), date(2000, 2, 29)),  # divisible by 400
        (Month(2100, 2), date(2100, 2, 1), date(2100, 2, 28)),  # divisible by 100 only
        (Month(2024, 12), date(2024, 12, 1), date(2024, 12, 31)),
        (Month(2024, 4), date(2024, 4, 1), date(2024, 4, 30)),
    ],
)
def test_first_and_last_day(month: Month, first: date, last: date) -> None:
    assert month.first_day == first
    assert month.last_day == last


def test_range_is_inclusive_and_empty_when_reversed() -> None:
    assert Month.range(Month(2023, 11), Month(2024, 2)) == [
        Month(2023, 11),
        Month(2023, 12),
        Month(2024, 1),
        Month(2024, 2),
    ]
    assert Month.range(Month(2024, 2), Month(2024, 2)) == [Month(2024, 2)]
    assert Month.range(Month(2024, 3), Month(2024, 2)) == []


def test_months_are_hashable_values() -> None:
    assert {Month(2024, 1), Month.parse("2024-01")} == {Month(2024, 1)}


@given(st.integers(min_value=Month(1, 1).index, max_value=Month(9999, 12).index))
def test_index_round_trips(index: int) -> None:
    month = Month.from_index(index)
    assert month.index == index
    assert Month.parse(str(month)) == month
    assert Month.of(month.first_day) == month == Month.of(month.last_day)
