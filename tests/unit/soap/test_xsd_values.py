"""XSD values on the wire: exact money, dateTimes with and without offsets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from app.errors import InvalidAmount
from app.soap.xsd_values import (
    format_baht,
    format_datetime,
    parse_baht,
    parse_boolean,
    parse_date,
    parse_datetime,
    parse_int,
)

BKK = timezone(timedelta(hours=7))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-10T09:30:00", datetime(2024, 6, 10, 9, 30, tzinfo=BKK)),  # Bangkok
        ("2024-06-10T02:30:00Z", datetime(2024, 6, 10, 9, 30, tzinfo=BKK)),
        ("2024-06-10T11:30:00+09:00", datetime(2024, 6, 10, 9, 30, tzinfo=BKK)),
        ("2024-06-09T21:30:00-05:00", datetime(2024, 6, 10, 9, 30, tzinfo=BKK)),
        ("2024-06-10T09:30:00.5", datetime(2024, 6, 10, 9, 30, 0, 500_000, tzinfo=BKK)),
        ("2024-06-10T09:30:00.123+07:00", datetime(2024, 6, 10, 9, 30, 0, 123_000, tzinfo=BKK)),
        ("2024-06-10T02:30:00.123456Z", datetime(2024, 6, 10, 9, 30, 0, 123_456, tzinfo=BKK)),
        # .NET writes 7 digits; beyond microseconds they are cut
        ("2024-06-10T09:30:00.1234567+07:00", datetime(2024, 6, 10, 9, 30, 0, 123_456, tzinfo=BKK)),
    ],
)
def test_datetimes_in(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed.utcoffset() is not None
    assert parsed == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-06-10",
        "2024-06-10 09:30:00",
        "2024-06-10T9:30:00",
        "2024-06-10T09:30",
        "2024-02-30T09:30:00",
        "2024-06-10T25:00:00",
        "2024-06-10T09:30:00+15:00",
        "2024-06-10T09:30:00.Z",
        "2024-06-10T09:30:00.1234567890Z",
        "20240610T093000",
        "２０２４-06-10T09:30:00",  # fullwidth digits
    ],
)
def test_what_is_not_a_datetime(text: str) -> None:
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_datetimes_out_carry_the_bangkok_offset() -> None:
    assert format_datetime(datetime(2024, 6, 10, 2, 30, tzinfo=UTC)) == "2024-06-10T09:30:00+07:00"
    assert (
        format_datetime(datetime(2024, 6, 10, 2, 30, 0, 1, tzinfo=UTC))
        == "2024-06-10T09:30:00.000001+07:00"
    )
    assert format_datetime(datetime(2024, 6, 10, 9, 30)) == "2024-06-10T09:30:00+07:00"


def test_dates() -> None:
    assert parse_date("2024-06-10") == date(2024, 6, 10)
    assert parse_date("2024-06-10+07:00") == date(2024, 6, 10)
    for bad in ("2024-6-10", "2024-13-01", "10/06/2024", "2024-06-10T00:00:00"):
        with pytest.raises(ValueError):
            parse_date(bad)


@pytest.mark.parametrize(
    ("text", "satang"),
    [
        ("432.00", 43_200),
        ("432", 43_200),
        ("432.5", 43_250),
        ("0.01", 1),
        (".5", 50),
        ("+70.00", 7_000),
        ("1000.000", 100_000),
        ("999999999999999.99", 99_999_999_999_999_999),
        ("0.1", 10),  # 0.1 is not exact in binary floating point; here it is
    ],
)
def test_baht_to_satang_is_exact(text: str, satang: int) -> None:
    assert parse_baht(text) == satang


@pytest.mark.parametrize(
    "text",
    ["-1.00", "432.001", "1e3", "NaN", "Infinity", "", "4 32", "1,000.00", "1000000000000000"],
)
def test_amounts_refused(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_baht(text)


@pytest.mark.parametrize("satang", [0, 1, 10, 43_200, 99_999_999_999_999_999])
def test_satang_round_trips_through_baht(satang: int) -> None:
    text = format_baht(satang)
    assert text.partition(".")[2].__len__() == 2
    assert parse_baht(text) == satang


def test_integers_and_booleans() -> None:
    assert parse_int("39") == 39
    assert parse_int("+40") == 40
    for bad in ("39.0", "", "x", "99999999999"):
        with pytest.raises(ValueError):
            parse_int(bad)
    assert parse_boolean("1") is True
    assert parse_boolean("false") is False
    with pytest.raises(ValueError):
        parse_boolean("yes")
