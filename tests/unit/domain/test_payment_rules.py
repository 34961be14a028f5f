"""Payment validation: each broken rule raises its own error with what a clerk needs."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.months import Month
from app.domain.payable import MonthDue
from app.domain.payment_rules import ValidatedPayment, validate_payment
from app.domain.rates import DEFAULT_RATE_HISTORY, RateTable
from app.domain.section39 import s39_payable_months
from app.domain.section40 import S40Policy, s40_payable_months
from app.errors import (
    AlreadyPaid,
    AmountMismatch,
    InvalidAmount,
    InvalidInput,
    MonthNotPayable,
    MonthsNotContiguous,
    OverCeiling,
    SavingsNotAllowed,
)

TABLE = RateTable(DEFAULT_RATE_HISTORY)
TODAY = date(2024, 6, 10)
S39_PAID = set(Month.range(Month(2023, 1), Month(2024, 3)))
S39_DUES = s39_payable_months(
    coverage_start=Month(2023, 1), paid=S39_PAID, today=TODAY, rates=TABLE
)


def ms(*texts: str) -> list[Month]:
    return [Month.parse(text) for text in texts]


def s39(requested: list[Month], amount: int, savings: int = 0, **kw: object) -> ValidatedPayment:
    args: dict[str, object] = {
        "section": 39,
        "option": None,
        "requested": requested,
        "amount_satang": amount,
        "savings_satang": savings,
        "payable": S39_DUES,
        "paid": S39_PAID,
    }
    args.update(kw)
    return validate_payment(**args)  # type: ignore[arg-type]


def s40(option: int, requested: list[Month], amount: int, savings: int = 0) -> ValidatedPayment:
    dues = s40_payable_months(option=option, paid=(), today=TODAY, rates=TABLE)
    return validate_payment(
        section=40,
        option=option,
        requested=requested,
        amount_satang=amount,
        savings_satang=savings,
        payable=dues,
        paid=(),
        ceiling_satang=3_000_000,
        s40_policy=S40Policy(),
    )


def test_fixture_offers_april_may_june() -> None:
    assert [str(due.month) for due in S39_DUES] == ["2024-04", "2024-05", "2024-06"]


@pytest.mark.parametrize(
    ("requested", "amount"),
    [
        (ms("2024-04"), 43_200),
        (ms("2024-04", "2024-05"), 86_400),
        (ms("2024-04", "2024-05", "2024-06"), 129_600),
        (ms("2024-06", "2024-04", "2024-05"), 129_600),  # order of the request does not matter
    ],
)
def test_exact_earliest_months_are_accepted(requested: list[Month], amount: int) -> None:
    payment = s39(requested, amount)
    assert list(payment.months) == sorted(requested)
    assert payment.contribution_satang == payment.total_satang == amount
    assert payment.savings_satang == 0
    assert [line.month for line in payment.lines] == sorted(requested)


def test_empty_request() -> None:
    with pytest.raises(InvalidInput) as caught:
        s39([], 0)
    assert caught.value.details == {"field": "months", "reason": "empty"}


def test_duplicate_months() -> None:
    with pytest.raises(InvalidInput, match="2024-04") as caught:
        s39(ms("2024-04", "2024-05", "2024-04"), 129_600)
    assert caught.value.details == {"field": "months", "reason": "duplicate", "months": ["2024-04"]}


@pytest.mark.parametrize(("amount", "savings"), [(-1, 0), (43_200, -1)])
def test_negative_amounts(amount: int, savings: int) -> None:
    with pytest.raises(InvalidAmount) as caught:
        s39(ms("2024-04"), amount, savings)
    assert caught.value.details == {"reason": "negative"}


def test_already_paid_lists_the_months() -> None:
    with pytest.raises(AlreadyPaid) as caught:
        s39(ms("2024-03", "2024-02", "2024-04"), 129_600)
    assert caught.value.details == {"months": ["2024-02", "2024-03"]}


def test_a_stale_payable_list_cannot_pay_twice() -> None:
    # The enquiry offered April; a payment since then recorded it on the primary.
    with pytest.raises(AlreadyPaid):
        s39(ms("2024-04"), 43_200, paid=S39_PAID | {Month(2024, 4)})


@pytest.mark.parametrize("month", ["2024-07", "2023-12"])
def test_month_not_payable_shows_the_payable_list(month: str) -> None:
    paid = S39_PAID - {Month(2023, 12)}
    with pytest.raises(MonthNotPayable) as caught:
        s39(ms("2024-04", month), 86_400, paid=paid)
    assert caught.value.details == {
        "month": month,
        "months": [month],
        "payable": ["2024-04", "2024-05", "2024-06"],
    }
    assert "Payable: 2024-04, 2024-05, 2024-06" in caught.value.message


def test_nothing_payable_says_none() -> None:
    with pytest.raises(MonthNotPayable, match="Payable: none"):
        s39(ms("2024-04"), 43_200, payable=[])


@pytest.mark.parametrize(
    ("requested", "expected", "skipped"),
    [
        (ms("2024-05"), ["2024-04"], ["2024-04"]),
        (ms("2024-06"), ["2024-04"], ["2024-04"]),
        (ms("2024-04", "2024-06"), ["2024-04", "2024-05"], ["2024-05"]),
        (ms("2024-05", "2024-06"), ["2024-04", "2024-05"], ["2024-04"]),
    ],
)
def test_no_skipping(requested: list[Month], expected: list[str], skipped: list[str]) -> None:
    with pytest.raises(MonthsNotContiguous) as caught:
        s39(requested, 43_200 * len(requested))
    assert caught.value.details["expected"] == expected
    assert caught.value.details["skipped"] == skipped
    assert caught.value.details["given"] == [str(month) for month in sorted(requested)]


def test_amount_mismatch_names_both_amounts() -> None:
    with pytest.raises(AmountMismatch, match=re.escape("1,296.00 baht, not 1,296.01")) as caught:
        s39(ms("2024-04", "2024-05", "2024-06"), 129_601)
    assert caught.value.details == {
        "expected_satang": 129_600,
        "given_satang": 129_601,
        "contribution_satang": 129_600,
        "savings_satang": 0,
    }


def test_over_ceiling_and_exactly_at_it() -> None:
    assert s39(ms("2024-04", "2024-05"), 86_400, ceiling_satang=86_400).total_satang == 86_400
    with pytest.raises(OverCeiling) as caught:
        s39(ms("2024-04", "2024-05", "2024-06"), 129_600, ceiling_satang=86_400)
    assert caught.value.details == {"total_satang": 129_600, "ceiling_satang": 86_400}


def test_section_39_takes_no_savings() -> None:
    with pytest.raises(SavingsNotAllowed) as caught:
        s39(ms("2024-04"), 43_300, 100)
    assert caught.value.details["reason"] == "not_eligible"
    assert "options 2, 3" in caught.value.message


def test_unknown_section() -> None:
    with pytest.raises(InvalidInput, match="Section 33"):
        s39(ms("2024-04"), 43_200, section=33)


# --- Section 40 and additional savings ---------------------------------------------------------
def test_s40_savings_for_options_2_and_3_up_to_1000_baht_a_month() -> None:
    payment = s40(2, ms("2024-06"), 10_000 + 100_000, 100_000)
    assert (payment.contribution_satang, payment.savings_satang, payment.total_satang) == (
        10_000,
        100_000,
        110_000,
    )
    two = s40(3, ms("2024-06", "2024-07"), 60_000 + 200_000, 200_000)
    assert two.total_satang == 260_000


def test_s40_savings_over_the_monthly_limit() -> None:
    with pytest.raises(SavingsNotAllowed, match=re.escape("1,000.00 baht a month")) as caught:
        s40(2, ms("2024-06", "2024-07"), 20_000 + 200_001, 200_001)
    assert caught.value.details == {
        "reason": "over_limit",
        "max_satang": 200_000,
        "given_satang": 200_001,
    }


def test_s40_option_1_takes_no_savings() -> None:
    with pytest.raises(SavingsNotAllowed) as caught:
        s40(1, ms("2024-06"), 7_100, 100)
    assert caught.value.details == {"reason": "not_eligible", "section": 40, "option": 1}


def _changing(before: int, after: int) -> list[MonthDue]:
    """June at ``before``, July on at ``after``: an option change effective in July."""
    june = s40_payable_months(option=before, paid=(), today=TODAY, rates=TABLE)
    later = s40_payable_months(option=after, paid=(), today=TODAY, rates=TABLE)
    return [d for d in june if d.month == Month(2024, 6)] + [
        d for d in later if d.month > Month(2024, 6)
    ]


def _pay_changing(before: int, after: int, months: list[Month], savings: int) -> ValidatedPayment:
    dues = _changing(before, after)
    contribution = sum(d.amount_satang for d in dues if d.month in months)
    return validate_payment(
        section=40,
        option=after,  # the member's option, as registered: the new one
        requested=months,
        amount_satang=contribution + savings,
        savings_satang=savings,
        payable=dues,
        paid=(),
        ceiling_satang=3_000_000,
        s40_policy=S40Policy(),
    )


def test_s40_savings_go_with_the_option_each_month_is_priced_at() -> None:
    # Option 1 until June, 2 from July: June takes no savings, July up to 1,000 baht.
    with pytest.raises(SavingsNotAllowed) as caught:
        _pay_changing(1, 2, ms("2024-06"), 100)
    assert caught.value.details["reason"] == "not_eligible"
    both = _pay_changing(1, 2, ms("2024-06", "2024-07"), 100_000)
    assert both.total_satang == 7_000 + 10_000 + 100_000
    with pytest.raises(SavingsNotAllowed) as over:
        _pay_changing(1, 2, ms("2024-06", "2024-07"), 100_001)
    assert over.value.details == {
        "reason": "over_limit",
        "max_satang": 100_000,
        "given_satang": 100_001,
    }
    # Option 3 until June, 1 from July: June still takes savings.
    assert _pay_changing(3, 1, ms("2024-06"), 50_000).savings_satang == 50_000
    assert [line.option for line in _pay_changing(3, 1, ms("2024-06", "2024-07"), 0).lines] == [
        3,
        1,
    ]


def test_s40_amount_must_include_the_savings() -> None:
    with pytest.raises(AmountMismatch) as caught:
        s40(2, ms("2024-06"), 10_000, 50_000)
    assert caught.value.details["expected_satang"] == 60_000


def test_s40_thirteen_months_at_most() -> None:
    thirteen = Month.range(Month(2024, 6), Month(2025, 6))
    assert s40(3, thirteen, 13 * 30_000).total_satang == 390_000
    with pytest.raises(MonthNotPayable) as caught:
        s40(3, [*thirteen, Month(2025, 7)], 14 * 30_000)
    assert caught.value.details["month"] == "2025-07"
    with pytest.raises(MonthNotPayable):
        s40(3, ms("2024-05"), 30_000)  # a past month, never


def test_more_months_than_one_payment_holds_are_refused_though_each_is_offered() -> None:
    """A policy built past the settings' bounds offers 14 months; a payment of all of them is
    the client's to split (the ledger holds 13 a payment), never a database refusal."""
    policy = S40Policy(max_months_ahead=13)
    dues = s40_payable_months(option=1, paid=(), today=TODAY, rates=TABLE, policy=policy)
    months, total = [due.month for due in dues], sum(due.amount_satang for due in dues)
    assert len(months) == 14
    with pytest.raises(InvalidInput) as caught:
        validate_payment(
            section=40, option=1, requested=months, amount_satang=total, savings_satang=0,
            payable=dues, paid=(), ceiling_satang=3_000_000, s40_policy=policy,
        )  # fmt: skip
    assert (caught.value.details["reason"], caught.value.details["limit"]) == ("too_many", 13)


def test_payable_list_order_does_not_matter() -> None:
    shuffled = [S39_DUES[2], S39_DUES[0], S39_DUES[1]]
    assert s39(ms("2024-04"), 43_200, payable=shuffled).months == (Month(2024, 4),)


# --- property: the amount of N months is the sum of each month's rate ---------------------------
@settings(deadline=None)
@given(
    section_option=st.sampled_from([(39, None), (40, 1), (40, 2), (40, 3)]),
    today=st.dates(min_value=date(2019, 6, 1), max_value=date(2023, 6, 30)),
    count=st.integers(min_value=1, max_value=13),
)
def test_amount_of_n_months_is_the_sum_of_their_rates(
    section_option: tuple[int, int | None], today: date, count: int
) -> None:
    section, option = section_option
    dues: list[MonthDue]
    if section == 39:
        start = Month.of(today).minus(24)
        paid = set(Month.range(start, Month.of(today).minus(3)))
        dues = s39_payable_months(coverage_start=start, paid=paid, today=today, rates=TABLE)
    else:
        assert option is not None
        paid = set()
        dues = s40_payable_months(option=option, paid=paid, today=today, rates=TABLE)
    requested = [due.month for due in dues[:count]]
    expected = sum(TABLE.amount(section, option, month) for month in requested)
    payment = validate_payment(
        section=section,
        option=option,
        requested=requested,
        amount_satang=expected,
        savings_satang=0,
        payable=dues,
        paid=paid,
        ceiling_satang=3_000_000,
        s40_policy=S40Policy(),
    )
    assert payment.contribution_satang == payment.total_satang == expected
    assert list(payment.months) == requested
