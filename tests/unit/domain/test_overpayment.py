"""Refunds after a retroactive rate cut, per person and month."""

from __future__ import annotations

import pytest

from app.domain.months import Month
from app.domain.overpayment import Overpayment, PaidMonth, compute_overpayments
from app.domain.rates import DEFAULT_RATE_HISTORY, Rate, RateTable
from app.errors import NoRate

BEFORE_CUT = RateTable(
    [rate for rate in DEFAULT_RATE_HISTORY if rate.last_month is None]  # base rates only
)
AFTER_CUT = RateTable(DEFAULT_RATE_HISTORY)


def paid(nid: str, section: int, option: int | None, month: str, amount: int) -> PaidMonth:
    return PaidMonth(nid, section, option, Month.parse(month), amount)


def test_months_paid_before_a_retroactive_cut_are_refunded() -> None:
    rows = [
        paid("3100600445635", 39, None, "2021-05", 43_200),  # before the cuts: nothing owed
        paid("3100600445635", 39, None, "2021-08", 43_200),  # Jun-Aug 2021: 216
        paid("3100600445635", 39, None, "2021-09", 43_200),  # Sep-Nov 2021: 235
        paid("3100600445635", 39, None, "2021-10", 43_200),
        paid("3100600445635", 39, None, "2022-05", 43_200),  # May-Jul 2022: 91
        paid("1112034563562", 40, 1, "2022-01", 7_000),
        paid("1112034563562", 40, 1, "2022-02", 7_000),  # between the cuts
        paid("1112034563562", 40, 1, "2022-07", 7_000),  # May-Jul 2022: 42
        paid("1234545678781", 40, 3, "2021-08", 18_000),  # already paid at the cut rate
    ]
    assert compute_overpayments(rows, AFTER_CUT) == [
        Overpayment("3100600445635", 39, None, Month(2021, 8), 43_200, 21_600, 21_600),
        Overpayment("3100600445635", 39, None, Month(2021, 9), 43_200, 23_500, 19_700),
        Overpayment("3100600445635", 39, None, Month(2021, 10), 43_200, 23_500, 19_700),
        Overpayment("3100600445635", 39, None, Month(2022, 5), 43_200, 9_100, 34_100),
        Overpayment("1112034563562", 40, 1, Month(2022, 1), 7_000, 4_200, 2_800),
        Overpayment("1112034563562", 40, 1, Month(2022, 7), 7_000, 4_200, 2_800),
    ]


def test_no_cut_no_refund_and_a_raise_is_not_a_refund() -> None:
    rows = [paid("3100600445635", 39, None, "2020-04", 8_600)]
    assert compute_overpayments(rows, AFTER_CUT) == []
    assert compute_overpayments(rows, BEFORE_CUT) == []  # underpaid, not overpaid
    assert compute_overpayments([], AFTER_CUT) == []


def test_a_new_cut_added_later_is_picked_up() -> None:
    cut_2024 = Rate(40, 2, Month(2024, 1), Month(2024, 3), 5_000, 5_000)
    table = RateTable([*DEFAULT_RATE_HISTORY, cut_2024])
    rows = [
        paid("1112034563562", 40, 2, text, 10_000) for text in ("2023-12", "2024-01", "2024-04")
    ]
    refunds = compute_overpayments(rows, table)
    assert [(str(r.month), r.refund_satang) for r in refunds] == [("2024-01", 5_000)]


def test_a_month_without_a_rate_is_an_error_not_a_full_refund() -> None:
    with pytest.raises(NoRate):
        compute_overpayments([paid("3100600445635", 40, 1, "2011-01", 7_000)], AFTER_CUT)
