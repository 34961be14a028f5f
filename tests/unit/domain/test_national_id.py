"""National ID: length, digits, check digit and per-section prefixes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.national_id import (
    DEFAULT_PREFIXES,
    check_digit,
    generate_national_id,
    validate_national_id,
)
from app.errors import InvalidInput, InvalidNationalId

KNOWN_VALID = ["3100600445635", "1112034563562", "1234545678781"]


def with_check(first12: str) -> str:
    return first12 + check_digit(first12)


@pytest.mark.parametrize("raw", KNOWN_VALID)
def test_known_ids_are_valid_for_both_sections(raw: str) -> None:
    assert validate_national_id(raw) == raw
    assert validate_national_id(raw, section=39) == raw
    assert validate_national_id(raw, section=40) == raw


@pytest.mark.parametrize(
    ("raw", "reason", "words"),
    [
        ("", "length", "exactly 13 digits"),
        ("310060044563", "length", "got 12"),
        ("31006004456350", "length", "got 14"),
        ("3-1006-00445-63-5", "length", "got 17"),
        ("310060044563X", "digits", "only the digits"),
        (" 310060044563", "digits", "only the digits"),
        ("๓๑๐๐๖๐๐๔๔๕๖๓๕", "digits", "only the digits"),  # Thai digits are not ASCII
        ("3100600445636", "checksum", "check digit"),
        ("3100600445634", "checksum", "check digit"),
        (with_check("900000000000"), "prefix", "'9'"),
        (with_check("000000000001"), "prefix", "'00'"),
    ],
)
def test_bad_ids_name_the_rule_broken(raw: str, reason: str, words: str) -> None:
    with pytest.raises(InvalidNationalId) as caught:
        validate_national_id(raw)
    assert caught.value.details["reason"] == reason
    assert words in caught.value.message
    if raw:
        assert raw not in str(caught.value.details)  # the ID never travels in details


def test_zero_prefix_is_section_40_only() -> None:
    raw = with_check("012345678901")
    assert validate_national_id(raw, section=40) == raw
    assert validate_national_id(raw) == raw  # allowed for some section
    with pytest.raises(InvalidNationalId) as caught:
        validate_national_id(raw, section=39)
    assert caught.value.details["reason"] == "prefix"
    assert "Section 39" in caught.value.message
    assert caught.value.details["allowed"] == list("12345678")


def test_nine_and_double_zero_refused_even_if_a_setting_allows_them() -> None:
    generous = {40: frozenset("0123456789")}
    for first12 in ("912345678901", "001234567890"):
        with pytest.raises(InvalidNationalId, match="never starts"):
            validate_national_id(with_check(first12), section=40, prefixes=generous)


def test_prefix_setting_narrows_the_accepted_digits() -> None:
    only_thai = {39: frozenset("1"), 40: frozenset("1")}
    with pytest.raises(InvalidNationalId) as caught:
        validate_national_id("3100600445635", prefixes=only_thai)
    assert caught.value.details["reason"] == "prefix"
    assert "any section" in caught.value.message
    assert validate_national_id("1112034563562", prefixes=only_thai) == "1112034563562"


def test_unknown_section_is_invalid_input_not_a_bad_id() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_national_id("3100600445635", section=33)
    assert not isinstance(caught.value, InvalidNationalId)
    assert caught.value.details["field"] == "section"


def test_default_prefixes_per_section() -> None:
    assert DEFAULT_PREFIXES[39] == frozenset("12345678")
    assert DEFAULT_PREFIXES[40] == frozenset("012345678")


@pytest.mark.parametrize("bad", ["", "12345678901", "1234567890123", "31006004456X"])
def test_check_digit_needs_twelve_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="12 ASCII digits"):
        check_digit(bad)


def test_check_digit_of_known_ids() -> None:
    for raw in KNOWN_VALID:
        assert check_digit(raw[:12]) == raw[12]


@pytest.mark.parametrize("first", list("012345678"))
def test_generated_ids_start_as_asked(first: str) -> None:
    raw = generate_national_id(random.Random(7), first_digit=first)
    assert raw[0] == first
    assert validate_national_id(raw, section=40) == raw


@pytest.mark.parametrize("first", ["9", "x", ""])
def test_generator_refuses_impossible_first_digits(first: str) -> None:
    with pytest.raises(ValueError, match="no valid national ID"):
        generate_national_id(random.Random(1), first_digit=first)


def _residue(raw: str) -> int:
    return sum(int(d) * (13 - i) for i, d in enumerate(raw[:12])) % 11


@settings(deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    position=st.integers(min_value=0, max_value=12),
    shift=st.integers(min_value=1, max_value=9),
)
def test_generated_ids_validate_and_one_changed_digit_invalidates(
    seed: int, position: int, shift: int
) -> None:
    raw = generate_national_id(random.Random(seed))
    assert validate_national_id(raw) == raw
    digit = (int(raw[position]) + shift) % 10
    changed = raw[:position] + str(digit) + raw[position + 1 :]
    try:
        validate_national_id(changed)
    except InvalidNationalId as refused:
        assert refused.details["reason"] in {"checksum", "prefix"}
    else:
        # The official scheme has two blind spots, and only these let a changed ID through:
        # the third digit weighs 11, which is 0 modulo 11, so it is never checked; and sums
        # of 0 and 10 modulo 11 both give check digit 1.
        assert position == 2 or (raw[12] == "1" and {_residue(raw), _residue(changed)} == {0, 10})


def test_third_digit_is_not_covered_by_the_check_digit() -> None:
    # A fact of the official algorithm, kept here so nobody "fixes" check_digit() by accident.
    assert validate_national_id("3100600445635") == "3100600445635"
    assert validate_national_id("3190600445635") == "3190600445635"


def test_sums_of_0_and_10_share_check_digit_1() -> None:
    bodies = [f"1{n:011d}" for n in range(200)]
    by_residue = {_residue(body + "0"): body for body in bodies}
    assert check_digit(by_residue[0]) == check_digit(by_residue[10]) == "1"


@settings(max_examples=300)
@given(st.from_regex(r"\A[0-9]{12}\Z"))
def test_the_check_digit_is_the_official_weighted_sum(first12: str) -> None:
    weights = range(13, 1, -1)
    total = sum(int(digit) * weight for digit, weight in zip(first12, weights, strict=True))
    assert check_digit(first12) == str((11 - total % 11) % 10)
