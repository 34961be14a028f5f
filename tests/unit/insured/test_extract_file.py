"""The source system's fixed-width TIS-620 extracts of Section 39 and Section 40 persons."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from app.errors import InvalidExtract
from app.insured.extract_file import (
    ExtractHeader,
    PersonRecord,
    Rejection,
    format_person,
    read_extract,
    write_extract,
)

S39 = PersonRecord(0, "3100600445635", "น.ส.", "กาญจนา", "ศรีสุข", 39, "active",
                   date(2019, 4, 1), period_of_payment="monthly", return_code="00")  # fmt: skip
S40 = PersonRecord(0, "1112034563562", "นาย", "ณัฐพล", "วงศ์สวัสดิ์", 40, "inactive",
                   date(2021, 8, 1), s40_option=2, payment_method="counter",
                   period_of_payment="202405", birth_date=date(1988, 2, 29),
                   last_paid_on=date(2024, 6, 5), last_paid_satang=10_000)  # fmt: skip


def extract(section: int, persons: list[PersonRecord]) -> list[bytes]:
    return list(write_extract(ExtractHeader(section, date(2024, 6, 30), "SSO-MF"), persons))


def read(section: int, records: list[bytes]) -> list[PersonRecord | Rejection]:
    _, items = read_extract(records, section=section)
    return list(items)


@pytest.mark.parametrize("person", [S39, S40], ids=["s39", "s40"])
def test_an_extract_round_trips_with_thai_names(person: PersonRecord) -> None:
    records = extract(person.section, [person])
    assert [len(r) for r in records] == [202, 202, 202]
    assert records[0][:12] == f"HS{person.section}2567".encode() + b"0630"  # Buddhist Era
    header, items = read_extract(records, section=person.section)
    assert header == ExtractHeader(person.section, date(2024, 6, 30), "SSO-MF")
    assert list(items) == [replace(person, line_no=2)]


def test_fields_sit_where_the_layout_says() -> None:
    s39 = format_person(S39)[:200]
    assert s39[1:14] == b"3100600445635" and s39[14:22] == b"25620401"
    assert s39[42:92].decode("tis_620").rstrip() == "กาญจนา"
    assert s39[142:152] == b"monthly   " and s39[152:154] == b"00" and s39[154:155] == b"A"
    s40 = format_person(S40)[:200]
    assert s40[142:145] == b"I2c" and s40[154:162] == b"25670605"
    assert s40[172:183] == b"00000010000" and s40[183:191] == b"25310229"


@pytest.mark.parametrize(
    ("start", "value", "field", "reason"),
    [
        (1, b"3100600445636", "national_id", "check digit"),
        (1, b"9100600445635", "national_id", "check digit"),
        (1, b"31006004456  ", "national_id", "13 digits"),
        (14, b"25621301", "effective_date", "not a YYYYMMDD"),
        (42, b" " * 50, "first_name", "empty"),
        (154, b"X", "status", "not A, I or T"),
    ],
)
def test_a_bad_line_is_rejected_with_its_line_and_reason(
    start: int, value: bytes, field: str, reason: str
) -> None:
    records = extract(39, [S39, replace(S39, national_id="1234545678781")])
    records[2] = records[2][:start] + value + records[2][start + len(value) :]
    first, second = read(39, records)
    assert isinstance(first, PersonRecord)
    assert isinstance(second, Rejection)
    assert (second.line_no, second.field) == (3, field)
    assert reason in second.reason


def test_s40_rules_option_and_amount() -> None:
    records = extract(40, [S40, S40, S40])
    records[2] = records[2][:143] + b"4" + records[2][144:]
    records[3] = records[3][:172] + b"0000001000x" + records[3][183:]
    items = read(40, records)
    assert [(i.line_no, i.field) for i in items if isinstance(i, Rejection)] == [
        (3, "option"), (4, "last_paid_satang")]  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "line", "reason"),
    [
        (lambda r: r[:-1], 4, "trailer"),
        (lambda r: [*r[:-1], b"T000000003".ljust(200) + b"\r\n"], 4, "trailer"),
        (lambda r: [*r, r[1]], 5, "after_trailer"),
        (lambda r: [b"HS40" + r[0][4:], *r[1:]], 1, "header"),
        (lambda r: r[1:], 1, "header"),
        (lambda r: [r[0], r[1].decode("tis_620").encode("utf-8"), *r[2:]], 2, "length"),
        (lambda r: [r[0], r[1][:50] + b"\x9f" + r[1][51:], *r[2:]], 2, "encoding"),
        (lambda r: [r[0], b"Q" + r[1][1:], *r[2:]], 2, "type"),
    ],
)
def test_a_fatal_error_stops_the_whole_extract(damage, line, reason) -> None:  # type: ignore[no-untyped-def]
    records = damage(extract(39, [S39, replace(S39, national_id="1234545678781")]))
    with pytest.raises(InvalidExtract) as caught:
        read(39, records)
    assert (caught.value.details["line"], caught.value.details["reason"]) == (line, reason)


def test_prefixes_follow_the_setting() -> None:
    foreign = replace(S40, national_id="0101234567899")
    records = extract(40, [foreign])
    assert isinstance(read(40, records)[0], PersonRecord)
    _, items = read_extract(records, section=40, prefixes={39: frozenset("1"), 40: frozenset("1")})
    (rejected,) = items
    assert isinstance(rejected, Rejection) and rejected.field == "national_id"
