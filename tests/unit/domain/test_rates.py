"""Effective-dated rates: the seed history, overlays, and NoRate instead of zero."""

from __future__ import annotations

import pytest

from app.domain.months import Month
from app.domain.rates import DEFAULT_RATE_HISTORY, Rate, RateTable
from app.errors import InvalidInput, NoRate

TABLE = RateTable(DEFAULT_RATE_HISTORY)


@pytest.mark.parametrize(
    ("section", "option", "month", "amount", "government"),
    [
        (39, None, Month(1990, 1), 43_200, 0),
        (39, None, Month(2020, 2), 43_200, 0),
        (39, None, Month(2020, 3), 8_600, 0),  # 2020 cut starts
        (39, None, Month(2020, 5), 8_600, 0),  # 2020 cut ends
        (39, None, Month(2020, 6), 43_200, 0),
        (39, None, Month(2021, 5), 43_200, 0),
        (39, None, Month(2021, 6), 21_600, 0),  # Jun-Aug 2021 cut: 4.5% of 4,800
        (39, None, Month(2021, 7), 21_600, 0),
        (39, None, Month(2021, 8), 21_600, 0),
        (39, None, Month(2021, 9), 23_500, 0),  # Sep-Nov 2021 cut follows at once
        (39, None, Month(2021, 11), 23_500, 0),
        (39, None, Month(2021, 12), 43_200, 0),
        (39, None, Month(2022, 4), 43_200, 0),
        (39, None, Month(2022, 5), 9_100, 0),  # May-Jul 2022 cut: 1.9% of 4,800 as 91.00
        (39, None, Month(2022, 6), 9_100, 0),
        (39, None, Month(2022, 7), 9_100, 0),
        (39, None, Month(2022, 8), 43_200, 0),
        (39, None, Month(2030, 1), 43_200, 0),  # open-ended base
        (40, 1, Month(2021, 7), 7_000, 3_000),
        (40, 1, Month(2021, 8), 4_200, 3_000),  # cut: government share unchanged
        (40, 1, Month(2021, 12), 4_200, 3_000),  # across the year end
        (40, 1, Month(2022, 1), 4_200, 3_000),
        (40, 1, Month(2022, 2), 7_000, 3_000),
        (40, 1, Month(2022, 4), 7_000, 3_000),
        (40, 1, Month(2022, 5), 4_200, 3_000),  # May-Jul 2022 cut
        (40, 1, Month(2022, 7), 4_200, 3_000),
        (40, 1, Month(2022, 8), 7_000, 3_000),
        (40, 2, Month(2021, 7), 10_000, 5_000),
        (40, 2, Month(2021, 8), 6_000, 5_000),
        (40, 2, Month(2022, 1), 6_000, 5_000),
        (40, 2, Month(2022, 2), 10_000, 5_000),
        (40, 2, Month(2022, 4), 10_000, 5_000),
        (40, 2, Month(2022, 5), 6_000, 5_000),
        (40, 2, Month(2022, 7), 6_000, 5_000),
        (40, 2, Month(2022, 8), 10_000, 5_000),
        (40, 3, Month(2012, 1), 30_000, 15_000),
        (40, 3, Month(2021, 8), 18_000, 15_000),
        (40, 3, Month(2022, 1), 18_000, 15_000),
        (40, 3, Month(2022, 2), 30_000, 15_000),
        (40, 3, Month(2022, 4), 30_000, 15_000),
        (40, 3, Month(2022, 5), 18_000, 15_000),
        (40, 3, Month(2022, 7), 18_000, 15_000),
        (40, 3, Month(2022, 8), 30_000, 15_000),
    ],
)
def test_default_history(
    section: int, option: int | None, month: Month, amount: int, government: int
) -> None:
    assert TABLE.amount(section, option, month) == amount
    assert TABLE.government(section, option, month) == government
    assert TABLE.rate(section, option, month).covers(month)


def test_section_39_ignores_an_option_the_caller_holds() -> None:
    assert TABLE.amount(39, 2, Month(2024, 1)) == 43_200


@pytest.mark.parametrize(
    ("section", "option", "month", "words"),
    [
        (39, None, Month(1989, 12), "section 39 in 1989-12"),
        (40, 1, Month(2011, 12), "section 40 option 1 in 2011-12"),
        (40, 4, Month(2024, 1), "section 40 option 4"),
        (40, None, Month(2024, 1), "section 40 in 2024-01"),
        (33, None, Month(2024, 1), "section 33"),
    ],
)
def test_no_rate_is_an_error_never_zero(
    section: int, option: int | None, month: Month, words: str
) -> None:
    with pytest.raises(NoRate, match=words) as caught:
        TABLE.amount(section, option, month)
    assert caught.value.details == {"section": section, "option": option, "month": str(month)}


def test_gap_between_closed_rates_has_no_rate() -> None:
    table = RateTable(
        [
            Rate(40, 1, Month(2024, 1), Month(2024, 3), 100),
            Rate(40, 1, Month(2024, 5), None, 200),
        ]
    )
    assert table.amount(40, 1, Month(2024, 3)) == 100
    with pytest.raises(NoRate):
        table.amount(40, 1, Month(2024, 4))
    assert table.amount(40, 1, Month(2024, 5)) == 200


def test_latest_start_wins_whatever_the_order_given() -> None:
    cut = Rate(39, None, Month(2020, 3), Month(2020, 5), 8_600)
    base = Rate(39, None, Month(1990, 1), None, 43_200)
    assert RateTable([cut, base]).amount(39, None, Month(2020, 4)) == 8_600
    assert RateTable([base, cut]).amount(39, None, Month(2020, 4)) == 8_600


def test_a_new_open_ended_base_overrides_the_old_one() -> None:
    table = RateTable([*DEFAULT_RATE_HISTORY, Rate(40, 1, Month(2025, 1), None, 9_000, 3_000)])
    assert table.amount(40, 1, Month(2024, 12)) == 7_000
    assert table.amount(40, 1, Month(2025, 1)) == 9_000


def test_same_start_tie_goes_to_the_rate_added_later() -> None:
    first = Rate(40, 2, Month(2021, 8), Month(2022, 1), 6_000, 5_000)
    correction = Rate(40, 2, Month(2021, 8), Month(2021, 12), 5_000, 5_000)
    table = RateTable([*DEFAULT_RATE_HISTORY, first, correction])
    assert table.amount(40, 2, Month(2021, 8)) == 5_000
    assert table.amount(40, 2, Month(2022, 1)) == 6_000
    assert table.rate(40, 2, Month(2021, 8)) is correction


def test_rates_keep_the_order_given() -> None:
    assert TABLE.rates == DEFAULT_RATE_HISTORY
    assert len(DEFAULT_RATE_HISTORY) == 14


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"section": 33, "option": None}, "section"),
        ({"section": 39, "option": 1}, "option"),
        ({"section": 40, "option": None}, "option"),
        ({"section": 40, "option": 4}, "option"),
        ({"section": 40, "option": 1, "last_month": Month(2019, 12)}, "last_month"),
        ({"section": 40, "option": 1, "amount_satang": -1}, "amount_satang"),
        ({"section": 40, "option": 1, "government_satang": -1}, "amount_satang"),
    ],
)
def test_rate_refuses_impossible_lines(kwargs: dict[str, object], field: str) -> None:
    line: dict[str, object] = {
        "first_month": Month(2020, 1),
        "last_month": None,
        "amount_satang": 100,
        "government_satang": 0,
    }
    line.update(kwargs)
    with pytest.raises(InvalidInput) as caught:
        Rate(**line)  # type: ignore[arg-type]
    assert caught.value.details["field"] == field


def test_covers_bounds() -> None:
    rate = Rate(39, None, Month(2021, 9), Month(2021, 11), 23_500)
    assert not rate.covers(Month(2021, 8))
    assert rate.covers(Month(2021, 9))
    assert rate.covers(Month(2021, 11))
    assert not rate.covers(Month(2021, 12))
