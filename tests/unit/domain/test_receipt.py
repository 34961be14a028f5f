"""Receipt numbers: format, check character and parsing."""

from __future__ import annotations

import string
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.receipt import (
    check_character,
    parse_receipt_number,
    receipt_number,
    validate_receipt_number,
)
from app.errors import InvalidInput


def test_format() -> None:
    assert receipt_number(123, business_date=date(2024, 6, 1)) == "R240601-00000123-W"
    assert receipt_number(0, business_date=date(2099, 12, 31)).startswith("R991231-00000000-")
    wide = receipt_number(123_456_789_012, business_date=date(2024, 2, 29))
    assert wide.startswith("R240229-123456789012-")


def test_iso_7064_mod_37_36_check() -> None:
    # The hybrid system: re-running the loop over digits plus check ends on 1 (mod 36).
    alphabet = string.digits + string.ascii_uppercase
    for digits in ("0", "240601", "24060100000123", "9" * 20):
        product = 36
        for ch in digits + check_character(digits):
            step = (product + alphabet.index(ch)) % 36 or 36
            product = step * 2 % 37
        assert step == 1


@pytest.mark.parametrize(
    ("sequence", "day"),
    [(-1, date(2024, 6, 1)), (1, date(1999, 12, 31)), (1, date(2100, 1, 1))],
)
def test_receipt_number_refuses(sequence: int, day: date) -> None:
    with pytest.raises(ValueError, match="receipt"):
        receipt_number(sequence, business_date=day)


def test_parse_reads_date_and_sequence_and_tolerates_case_and_spaces() -> None:
    assert parse_receipt_number("R240601-00000123-W") == (date(2024, 6, 1), 123)
    assert parse_receipt_number(" r240601-00000123-w ") == (date(2024, 6, 1), 123)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "format"),
        ("R240601-0000123-W", "format"),  # 7 digits
        ("R240601-00000123", "format"),
        ("X240601-00000123-W", "format"),
        ("R240601-000000123-W", "format"),  # extra leading zero
        ("R241301-00000123-W", "date"),
        ("R230229-00000123-W", "date"),  # 2023 is no leap year
        ("R240601-00000124-W", "check"),
        ("R240601-00000123-X", "check"),
        ("R250601-00000123-W", "check"),
    ],
)
def test_parse_refusals(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_receipt_number(text)
    assert caught.value.details == {"field": "receipt_no", "reason": reason}
    assert validate_receipt_number(text) is False


@given(
    sequence=st.integers(min_value=0, max_value=10**12),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    position=st.integers(min_value=0),
    shift=st.integers(min_value=1, max_value=9),
)
def test_round_trip_and_any_one_mistyped_digit_is_caught(
    sequence: int, day: date, position: int, shift: int
) -> None:
    number = receipt_number(sequence, business_date=day)
    assert validate_receipt_number(number)
    assert parse_receipt_number(number) == (day, sequence)
    digit_positions = [i for i, ch in enumerate(number) if ch.isdigit() and i < len(number) - 1]
    at = digit_positions[position % len(digit_positions)]
    typo = number[:at] + str((int(number[at]) + shift) % 10) + number[at + 1 :]
    assert not validate_receipt_number(typo)
