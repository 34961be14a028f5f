"""Refunds per person and month: after a retroactive rate cut, and for months paid after the
membership they were paid under had ended."""

from __future__ import annotations

import pytest

from app.domain.months import Month
from app.domain.overpayment import (
    COVER_ENDED,
    RATE_CUT,
    Cover,
    Overpayment,
    PaidMonth,
    compute_overpayments,
    refunds_owed,
)
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


def test_a_late_surcharge_is_not_refunded_for_a_cut_but_is_for_an_ended_cover() -> None:
    # 432 baht + a 10-baht late surcharge for May 2024: no cut, nothing owed.
    late = PaidMonth("3100600445635", 39, None, Month(2024, 5), 44_200, 1_000)
    assert compute_overpayments([late], AFTER_CUT) == []
    # Aug 2021 was cut to 216: the contribution's excess is owed, the surcharge is not.
    cut = PaidMonth("3100600445635", 39, None, Month(2021, 8), 44_200, 1_000)
    assert compute_overpayments([cut], AFTER_CUT) == [
        Overpayment("3100600445635", 39, None, Month(2021, 8), 43_200, 21_600, 21_600)
    ]
    # A month no membership covers is owed back whole, the surcharge with it.
    ended = [Cover(39, Month(2024, 1), Month(2024, 5))]
    assert [o.refund_satang for o in refunds_owed([late], covers=ended, rates=AFTER_CUT)] == [
        44_200
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


# --- months paid after the membership ended ---------------------------------------------------
NID = "3100600445635"
M = Month.parse


def owed(covers: list[Cover], *months: tuple[int, str, int]) -> list[tuple[str, int, int, str]]:
    rows = [PaidMonth(NID, section, None if section == 39 else 2, M(text), amount)
            for section, text, amount in months]  # fmt: skip
    return [
        (str(o.month), o.due_satang, o.refund_satang, o.reason)
        for o in refunds_owed(rows, covers=covers, rates=AFTER_CUT)
    ]


def test_months_paid_after_a_section_39_membership_ended_are_refunded_in_full() -> None:
    # S39 from 2024-01, ended from 2024-05 (Section 33 employment recorded late); now S40.
    covers = [Cover(40, M("2024-06"), None), Cover(39, M("2024-01"), M("2024-05"))]
    paid = [(39, "2024-03", 43_200), (39, "2024-04", 43_200), (39, "2024-05", 43_200),
            (39, "2024-06", 43_200)]  # fmt: skip
    assert owed(covers, *paid) == [
        ("2024-05", 0, 43_200, COVER_ENDED),
        ("2024-06", 0, 43_200, COVER_ENDED),
    ]
    # The Section 40 months are the new membership's, whatever the Section 39 ones were.
    assert owed(covers, (40, "2024-06", 10_000)) == []


def test_while_the_ended_membership_is_still_the_latest_one_too() -> None:
    covers = [Cover(39, M("2024-01"), M("2024-05"))]
    assert owed(covers, (39, "2024-04", 43_200), (39, "2024-05", 43_200)) == [
        ("2024-05", 0, 43_200, COVER_ENDED)
    ]


def test_a_later_membership_of_the_same_section_keeps_the_months_it_covers() -> None:
    # S39 ended from 2024-05; back through Section 33; S39 again from 2024-07.
    covers = [Cover(39, M("2024-07"), None), Cover(39, M("2024-01"), M("2024-05"))]
    paid = [(39, "2024-05", 43_200), (39, "2024-06", 43_200), (39, "2024-07", 43_200)]
    assert owed(covers, *paid) == [
        ("2024-05", 0, 43_200, COVER_ENDED),
        ("2024-06", 0, 43_200, COVER_ENDED),
    ]
    # ... and an older membership covers its own months, a later ending notwithstanding.
    older = [Cover(39, M("2019-01"), M("2020-01")), Cover(39, M("2023-01"), M("2024-01"))]
    assert owed(older, (39, "2019-06", 43_200), (39, "2021-06", 43_200)) == [
        ("2021-06", 0, 43_200, COVER_ENDED)
    ]


def test_a_month_before_any_ending_or_outside_every_membership_is_not_cover_ended() -> None:
    covers = [Cover(40, M("2024-03"), None)]  # never ended
    assert owed(covers, (40, "2024-01", 10_000), (40, "2024-04", 10_000)) == []


def test_a_cut_month_after_the_end_is_refunded_once_in_full() -> None:
    # May 2022 was cut to 91 baht; paid 432 after the membership ended in April 2022.
    covers = [Cover(39, M("2020-01"), M("2022-04"))]
    assert owed(covers, (39, "2022-03", 43_200), (39, "2022-05", 43_200)) == [
        ("2022-05", 0, 43_200, COVER_ENDED)
    ]
    still_open = [Cover(39, M("2020-01"), None)]
    assert owed(still_open, (39, "2022-05", 43_200)) == [("2022-05", 9_100, 34_100, RATE_CUT)]


def test_nothing_taken_nothing_owed_and_no_rate_needed_for_a_full_refund() -> None:
    covers = [Cover(40, M("2000-01"), M("2010-01"))]
    assert owed(covers, (40, "2010-02", 0)) == []
    # No Section 40 rate before 2012: the month is still owed in full, never a NoRate.
    assert owed(covers, (40, "2011-01", 10_000)) == [("2011-01", 0, 10_000, COVER_ENDED)]
    assert owed([Cover(40, M("2000-01"), None)], (40, "2011-01", 10_000)) == []
