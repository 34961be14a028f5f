"""The inquiry's amount due: the current month's rate at the Section 40 option in force."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from app.counter.entitlement import amount_due
from app.counter.ports import MemberSnapshot
from app.domain.months import Month
from app.domain.rates import DEFAULT_RATE_HISTORY, Rate, RateTable

TABLE = RateTable(DEFAULT_RATE_HISTORY)
TODAY = date(2024, 6, 12)
S40 = MemberSnapshot(
    national_id="1112034563562",
    title="นาง",
    first_name="มาลี",
    last_name="ศรีสุข",
    section=40,
    status="active",
    status_reason=None,
    ended_month=None,
    coverage_start=Month(2020, 1),
    option=2,
    option_changed_on=None,
    paid={Month(2024, 6): date(2024, 6, 1)},
)


@pytest.mark.parametrize(
    ("member", "today", "expected"),
    [
        (S40, TODAY, 10_000),  # option 2, whether or not the month is paid
        (replace(S40, option=3), TODAY, 30_000),
        (replace(S40, option=1), date(2021, 9, 30), 4_200),  # a cut month: the cut rate
        (replace(S40, status="terminated"), TODAY, 10_000),  # a rate, whatever the standing
        # Changed from option 1 this month: option 2 applies from next month, 1 now.
        (replace(S40, previous_option=1, option_effective=Month(2024, 7)), TODAY, 7_000),
        (replace(S40, previous_option=1, option_effective=Month(2024, 6)), TODAY, 10_000),
        (replace(S40, section=39, option=None), TODAY, None),  # Section 40 only
    ],
)
def test_amount_due(member: MemberSnapshot, today: date, expected: int | None) -> None:
    assert amount_due(member, today=today, rates=TABLE) == expected


def test_no_rate_for_the_month_is_unknown_not_zero() -> None:
    only_2012 = RateTable([Rate(40, 2, Month(2012, 1), Month(2012, 12), 10_000, 5_000)])
    assert amount_due(S40, today=TODAY, rates=only_2012) is None
