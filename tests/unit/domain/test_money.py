"""Money: baht in, integer satang inside, baht out."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.money import COUNTER_CEILING_SATANG, format_baht, to_baht, to_satang
from app.errors import InvalidAmount


@pytest.mark.parametrize(
    ("value", "satang"),
    [
        ("432", 43_200),
        ("432.00", 43_200),
        ("1234.5", 123_450),
        ("0.01", 1),
        (".5", 50),
        ("7.", 700),
        ("+1", 100),
        (" 86 ", 8_600),
        ("1.500", 150),  # trailing zeros are still whole satang
        ("432." + "0" * 60_000, 43_200),  # however many: more than Python's int() reads
        ("0." + "0" * 5_000, 0),
        (Decimal("0E-5000"), 0),
        ("0", 0),
        ("30000.00", COUNTER_CEILING_SATANG),
        (Decimal("235.00"), 23_500),
        (Decimal("1E+2"), 10_000),
        (Decimal("0.10"), 10),
        (Decimal("-0"), 0),
        (70, 7_000),
        (0, 0),
    ],
)
def test_to_satang_reads_baht_exactly(value: Decimal | str | int, satang: int) -> None:
    assert to_satang(value) == satang


@pytest.mark.parametrize(
    ("value", "reason", "words"),
    [
        ("1.005", "decimals", "more than 2 decimal places"),
        (Decimal("0.001"), "decimals", "more than 2 decimal places"),
        ("0." + "0" * 5_000 + "1", "decimals", "more than 2 decimal places"),
        ("1." + "1" * 5_000, "decimals", "more than 2 decimal places"),
        ("999999999999999.991", "decimals", "more than 2 decimal places"),
        ("-1", "negative", "negative"),
        (Decimal("-0.01"), "negative", "negative"),
        (-5, "negative", "negative"),
        ("NaN", "not_a_number", "finite"),
        (Decimal("sNaN"), "not_a_number", "finite"),
        ("Infinity", "not_a_number", "finite"),
        (Decimal("-Infinity"), "not_a_number", "finite"),
        ("", "syntax", "not a number"),
        ("abc", "syntax", "not a number"),
        ("1,234.50", "syntax", "not a number"),
        ("1e3", "syntax", "plain baht"),
        ("1_000", "syntax", "plain baht"),
        ("-0", "syntax", "plain baht"),
        ("๑๒", "syntax", "plain baht"),  # Thai digits: Decimal reads them, the gateway does not
        (Decimal("1E+15"), "too_large", "too large"),
        (10**16, "too_large", "too large"),
        (True, "type", "not bool"),
        (1.5, "type", "not float"),
        (None, "type", "not NoneType"),
    ],
)
def test_to_satang_refusals_name_the_problem(value: Any, reason: str, words: str) -> None:
    with pytest.raises(InvalidAmount) as caught:
        to_satang(value)
    assert caught.value.details == {"reason": reason}
    assert words in caught.value.message


def test_largest_accepted_amount_is_exact() -> None:
    assert to_satang("999999999999999.99") == 99_999_999_999_999_999
    with pytest.raises(InvalidAmount, match="too large"):
        to_satang("1000000000000000")


@pytest.mark.parametrize(
    ("satang", "baht", "plain", "with_unit"),
    [
        (0, "0.00", "0.00", "฿0.00"),
        (1, "0.01", "0.01", "฿0.01"),
        (8_600, "86.00", "86.00", "฿86.00"),
        (123_450, "1234.50", "1,234.50", "฿1,234.50"),
        (3_000_000, "30000.00", "30,000.00", "฿30,000.00"),
        (123_456_789_01, "123456789.01", "123,456,789.01", "฿123,456,789.01"),
        (-4_200, "-42.00", "-42.00", "-฿42.00"),
    ],
)
def test_baht_out(satang: int, baht: str, plain: str, with_unit: str) -> None:
    assert to_baht(satang) == Decimal(baht)
    assert str(to_baht(satang)) == baht
    assert format_baht(satang) == plain
    assert format_baht(satang, with_unit=True) == with_unit


@given(st.integers(min_value=0, max_value=10**17 - 1))
def test_satang_round_trips_through_baht(satang: int) -> None:
    assert to_satang(to_baht(satang)) == satang
    assert to_satang(str(to_baht(satang))) == satang
    assert to_satang(format_baht(satang).replace(",", "")) == satang


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0E+20000000"), 0),  # a power of ten of 20,000,000 digits took 10 s
        (Decimal("-0E+20000000"), 0),
        (Decimal("0E-20000000"), 0),
        (Decimal("1E-20000000"), "decimals"),
    ],
)
def test_an_exponent_costs_nothing(value: Decimal, expected: object) -> None:
    # An amount is read before its caller is admitted: no power of ten is built from it.
    started = time.perf_counter()
    try:
        result: object = to_satang(value)
    except InvalidAmount as error:
        result = error.details["reason"]
    assert result == expected
    assert time.perf_counter() - started < 1.0
