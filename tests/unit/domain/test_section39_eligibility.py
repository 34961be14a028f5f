"""Section 39 eligibility: 12 months of Section 33 contributions, applied within 6 months of
leaving work (the months counted as the Civil and Commercial Code counts a period)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.months import Month
from app.domain.section39 import (
    APPLIED_TOO_LATE,
    REENTRY_NEEDS_SECTION33,
    TOO_FEW_S33_MONTHS,
    Section33History,
    ensure_s39_eligible,
    period_end,
    s39_application_deadline,
    s39_eligibility,
)
from app.errors import InvalidInput, NotEligibleForSection39


@pytest.mark.parametrize(
    ("employment_ended_on", "last_day_to_apply"),
    [
        (date(2024, 1, 15), date(2024, 7, 15)),  # the same-numbered day six months on
        (date(2024, 1, 31), date(2024, 7, 31)),  # counted from 1 Feb: six whole months
        (date(2023, 8, 31), date(2024, 2, 29)),  # from 1 Sep: to the end of (leap) February
        (date(2022, 8, 31), date(2023, 2, 28)),
        (date(2023, 8, 30), date(2024, 2, 29)),  # from 31 Aug: February has no 31st
        (date(2023, 8, 28), date(2024, 2, 28)),  # from 29 Aug: the day before 29 Feb 2024
        (date(2023, 2, 28), date(2023, 8, 31)),  # from 1 Mar: six whole months, to 31 Aug
        (date(2024, 2, 29), date(2024, 8, 31)),
        (date(2024, 6, 30), date(2024, 12, 31)),
        (date(2024, 7, 1), date(2025, 1, 1)),  # across the year's end
        (date(2024, 12, 31), date(2025, 6, 30)),
    ],
)
def test_the_last_day_to_apply(employment_ended_on: date, last_day_to_apply: date) -> None:
    assert s39_application_deadline(employment_ended_on) == last_day_to_apply


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2024, 3, 1), 1, date(2024, 3, 31)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # no 31 Feb: the month's last day
        (date(2024, 1, 16), 1, date(2024, 2, 15)),
        (date(2024, 1, 16), 12, date(2025, 1, 15)),
    ],
)
def test_a_period_in_months_ends_as_the_civil_code_says(
    start: date, months: int, end: date
) -> None:
    assert period_end(start, months) == end


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31)))
def test_the_deadline_is_six_months_on_never_seven(ended: date) -> None:
    deadline = s39_application_deadline(ended)
    span = Month.of(deadline).index - Month.of(ended).index
    assert 5 <= span <= 6, (ended, deadline)  # 5 only when a 1st starts six whole months
    assert deadline > ended
    # The day after the deadline is out; the deadline itself is in.
    history = Section33History(12, ended)
    assert s39_eligibility(history, applied_on=deadline).eligible
    late = s39_eligibility(history, applied_on=deadline + timedelta(days=1))
    assert late.reasons == (APPLIED_TOO_LATE,)


LEFT = date(2024, 1, 15)


@pytest.mark.parametrize(
    ("months", "applied_on", "reasons"),
    [
        (12, LEFT + timedelta(days=1), ()),  # 12 months: accepted
        (11, LEFT + timedelta(days=1), (TOO_FEW_S33_MONTHS,)),  # 11 months: refused
        (0, LEFT, (TOO_FEW_S33_MONTHS,)),
        (240, LEFT, ()),  # on the last day of work itself
        (12, date(2024, 7, 15), ()),  # six months after leaving: accepted
        (12, date(2024, 7, 16), (APPLIED_TOO_LATE,)),  # a day more: refused
        (12, date(2024, 8, 15), (APPLIED_TOO_LATE,)),  # seven months: refused
        (11, date(2024, 8, 15), (TOO_FEW_S33_MONTHS, APPLIED_TOO_LATE)),
    ],
)
def test_eligibility_boundaries(months: int, applied_on: date, reasons: tuple[str, ...]) -> None:
    verdict = s39_eligibility(Section33History(months, LEFT), applied_on=applied_on)
    assert verdict.reasons == reasons
    assert verdict.eligible is (reasons == ())
    assert verdict.deadline == date(2024, 7, 15)


def test_a_refusal_names_every_rule_broken_with_iso_dates() -> None:
    with pytest.raises(NotEligibleForSection39) as caught:
        ensure_s39_eligible(Section33History(11, LEFT), applied_on=date(2024, 8, 15))
    assert caught.value.code == "client.s39_not_eligible" and caught.value.http_status == 422
    assert caught.value.details == {
        "reason": TOO_FEW_S33_MONTHS,
        "reasons": [TOO_FEW_S33_MONTHS, APPLIED_TOO_LATE],
        "months_contributed": 11,
        "minimum_months": 12,
        "employment_ended_on": "2024-01-15",
        "applied_on": "2024-08-15",
        "deadline": "2024-07-15",
        "previous_ended_month": None,
    }
    assert ensure_s39_eligible(Section33History(12, LEFT), applied_on=LEFT).eligible


@pytest.mark.parametrize(
    ("previous_end", "employment_ended_on", "eligible"),
    [
        (Month(2023, 5), date(2024, 1, 15), True),  # worked under Section 33 after it ended
        (Month(2024, 1), date(2024, 1, 1), True),  # the first day of the month it ended
        (Month(2024, 2), date(2024, 1, 15), False),  # the old Section 33 history again
        (None, date(2024, 1, 15), True),
    ],
)
def test_the_way_back_into_section_39_is_through_section_33(
    previous_end: Month | None, employment_ended_on: date, eligible: bool
) -> None:
    verdict = s39_eligibility(
        Section33History(24, employment_ended_on),
        applied_on=employment_ended_on + timedelta(days=3),
        previous_s39_end=previous_end,
    )
    assert verdict.eligible is eligible
    assert verdict.reasons == (() if eligible else (REENTRY_NEEDS_SECTION33,))


@pytest.mark.parametrize(
    ("months", "applied_on", "field"),
    [
        (-1, LEFT, "section33.monthsContributed"),
        (1201, LEFT, "section33.monthsContributed"),
        (12, LEFT - timedelta(days=1), "appliedOn"),  # before the work ended
    ],
)
def test_a_history_that_cannot_be_is_invalid_input(
    months: int, applied_on: date, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        s39_eligibility(Section33History(months, LEFT), applied_on=applied_on)
    assert caught.value.details["field"] == field
