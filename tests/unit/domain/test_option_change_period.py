"""The Section 40 option change, "at most once a year", read both ways (a setting)."""

from __future__ import annotations

from datetime import date

import pytest

from app.domain.months import Month
from app.domain.section40 import (
    CALENDAR_YEAR,
    TWELVE_MONTHS,
    S40Policy,
    check_option_change,
    next_option_change_on,
    option_change_window,
)
from app.errors import OptionChangeRefused

CALENDAR = S40Policy(option_change_period=CALENDAR_YEAR)
TWELVE = S40Policy(option_change_period=TWELVE_MONTHS)


@pytest.mark.parametrize(
    ("last_change", "today", "calendar_year", "twelve_months"),
    [
        # The case: 20 December, then 5 January.
        (date(2024, 12, 20), date(2025, 1, 5), True, False),
        (date(2024, 12, 20), date(2025, 12, 19), True, False),
        (date(2024, 12, 20), date(2025, 12, 20), True, True),  # twelve months to the day
        (date(2024, 3, 1), date(2024, 11, 30), False, False),
        (date(2024, 1, 1), date(2024, 12, 31), False, False),
        (date(2023, 12, 31), date(2024, 12, 31), True, True),
        # After 29 February the next change is allowed from 1 March.
        (date(2024, 2, 29), date(2025, 2, 28), True, False),
        (date(2024, 2, 29), date(2025, 3, 1), True, True),
        (date(2024, 1, 31), date(2025, 1, 30), True, False),
        (date(2024, 1, 31), date(2025, 1, 31), True, True),
        (None, date(2025, 1, 5), True, True),
    ],
)
def test_a_second_change_under_each_reading(
    last_change: date | None, today: date, calendar_year: bool, twelve_months: bool
) -> None:
    for policy, allowed in ((CALENDAR, calendar_year), (TWELVE, twelve_months)):
        if allowed:
            effective = check_option_change(
                current=1, new=2, last_change=last_change, today=today, policy=policy
            )
            assert effective == Month.of(today).plus(1)
        else:
            with pytest.raises(OptionChangeRefused):
                check_option_change(
                    current=1, new=2, last_change=last_change, today=today, policy=policy
                )


def test_the_refusals_say_when_the_next_change_is_allowed() -> None:
    with pytest.raises(OptionChangeRefused) as caught:
        check_option_change(
            current=1, new=2, last_change=date(2024, 12, 20), today=date(2025, 1, 5),
            policy=TWELVE,
        )  # fmt: skip
    assert caught.value.details == {
        "reason": "changed_within_twelve_months",
        "last_change": "2024-12-20",
        "changes_in_period": 1,
        "changes_per_period": 1,
        "next_change_on": "2025-12-20",
    }
    with pytest.raises(OptionChangeRefused) as caught:
        check_option_change(
            current=1, new=2, last_change=date(2025, 1, 2), today=date(2025, 1, 5),
            policy=CALENDAR,
        )  # fmt: skip
    assert caught.value.details["reason"] == "already_changed_this_year"


@pytest.mark.parametrize(
    ("today", "period", "first_day"),
    [
        (date(2025, 6, 15), CALENDAR_YEAR, date(2025, 1, 1)),
        (date(2025, 6, 15), TWELVE_MONTHS, date(2024, 6, 16)),
        (date(2025, 2, 28), TWELVE_MONTHS, date(2024, 2, 29)),
        (date(2024, 2, 29), TWELVE_MONTHS, date(2023, 3, 1)),
    ],
)
def test_the_window_changes_are_counted_in(today: date, period: str, first_day: date) -> None:
    assert option_change_window(today, period) == first_day


@pytest.mark.parametrize(
    ("last", "period", "following"),
    [
        (date(2024, 12, 20), CALENDAR_YEAR, date(2025, 1, 1)),
        (date(2024, 12, 20), TWELVE_MONTHS, date(2025, 12, 20)),
        (date(2024, 2, 29), TWELVE_MONTHS, date(2025, 3, 1)),
    ],
)
def test_the_next_change_is_allowed_on(last: date, period: str, following: date) -> None:
    assert next_option_change_on(last, period) == following
    # The window of that day no longer holds the last change; the day before's does.
    assert option_change_window(following, period) > last
    assert option_change_window(date.fromordinal(following.toordinal() - 1), period) <= last


def test_an_unknown_period_is_refused_when_the_policy_is_made() -> None:
    with pytest.raises(ValueError, match="option_change_period"):
        S40Policy(option_change_period="fortnightly")
