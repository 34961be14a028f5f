"""The bank bill-payment layout (256 characters, TIS-620) and the CSV layout, both ways."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.calendar import BANGKOK
from app.domain.months import Month
from app.errors import InvalidSettlementFile
from app.settlement.bank_file import (
    BankHeader,
    SettlementLine,
    check_header,
    format_ref3,
    parse_ref3,
    read_bank_file,
    write_bank_file,
)
from app.settlement.csv_file import csv_header, csv_record, detect_format, read_csv_file

DAY = date(2024, 6, 3)
HEADER = BankHeader(DAY, partner_code="cvs-th")
LINES = [
    SettlementLine(0, "POS-0001", "3100600445635", 40, (Month(2024, 6), Month(2024, 7)), 14_000,
                   datetime(2024, 6, 3, 10, 11, 12, tzinfo=BANGKOK), "นางสมหญิง ใจดี", "S-0042",
                   "T-07"),
    SettlementLine(0, "POS-0002", "1112034563562", 39, (Month(2024, 5),), 43_200,
                   datetime(2024, 6, 3, 23, 59, 59, tzinfo=BANGKOK), "นายสมศักดิ์ ทองคำ"),
]  # fmt: skip


def bank_file(lines: list[SettlementLine] = LINES) -> list[bytes]:
    return list(write_bank_file(HEADER, lines))


def read_all(records: list[bytes]) -> list[SettlementLine]:
    _, details = read_bank_file(records)
    return list(details)


def test_every_record_is_256_tis620_bytes_with_the_fields_in_place() -> None:
    records = bank_file()
    assert [len(r) for r in records] == [258] * 4  # 256 and CRLF
    detail = records[1][:256]
    assert detail[:9] == b"D00000002"
    assert detail[36:86].decode("tis_620").rstrip() == "นางสมหญิง ใจดี"  # one byte per character
    assert detail[86:106] == b"3100600445635       "  # Ref1: the national ID
    assert detail[106:126] == b"POS-0001            "  # Ref2: the partner's transaction id
    assert detail[126:146] == b"40:202406-202407    "  # Ref3: section and months
    assert detail[167:180] == b"0000000014000"  # 11+2 digits of satang
    trailer = records[-1][:256]
    assert trailer[22:31] == b"000000002" and trailer[31:48] == b"00000000000057200"


def test_a_written_file_reads_back_the_same() -> None:
    header, details = read_bank_file(bank_file())
    assert header == HEADER
    back = list(details)
    assert [line.line_no for line in back] == [2, 3]
    for read, written in zip(back, LINES, strict=True):
        assert (read.partner_txn_id, read.national_id, read.section, read.months,
                read.amount_satang, read.paid_at, read.name, read.store_id, read.terminal_id) == (
               written.partner_txn_id, written.national_id, written.section, written.months,
               written.amount_satang, written.paid_at, written.name, written.store_id,
               written.terminal_id)  # fmt: skip


def test_a_trailer_that_does_not_match_is_refused_with_its_line_and_numbers() -> None:
    records = bank_file()
    records[-1] = records[-1][:22] + b"000000003" + records[-1][31:]
    with pytest.raises(InvalidSettlementFile) as caught:
        read_all(records)
    error = caught.value
    assert error.details == {
        "line": 4, "reason": "trailer", "trailer_count": 3, "detail_count": 2,
        "trailer_total_satang": 57_200, "detail_total_satang": 57_200,
    }  # fmt: skip
    assert "Line 4" in error.message and "3 records" in error.message

    records = bank_file()
    records[-1] = records[-1][:31] + b"00000000000057300" + records[-1][48:]
    with pytest.raises(InvalidSettlementFile, match=r"573\.00 baht; the file has 2 records"):
        read_all(records)


@pytest.mark.parametrize(
    ("damage", "line", "reason"),
    [
        (lambda r: r[:-1], 4, "trailer"),  # no trailer at all
        (lambda r: [*r, r[1]], 5, "after_trailer"),
        (lambda r: [r[0], b"X" + r[1][1:], *r[2:]], 2, "type"),
        (lambda r: [r[0], r[1].decode("tis_620").encode("utf-8"), *r[2:]], 2, "length"),
        (lambda r: [r[0], r[1][:40] + b"\xdb" + r[1][41:], *r[2:]], 2, "encoding"),
        (lambda r: [], 1, "empty"),
    ],
)
def test_a_broken_file_is_refused_naming_the_line(damage, line, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidSettlementFile) as caught:
        read_all(damage(bank_file()))
    assert caught.value.details["line"] == line
    assert caught.value.details["reason"] == reason


@pytest.mark.parametrize(
    ("start", "value", "field"),
    [
        (86, b"31006004456  ", "Ref1"),
        (106, b"                    ", "ref2"),
        (126, b"41:202406           ", "ref3"),
        (126, b"40:202413           ", "ref3"),
        (167, b"00000000001x0", "amount"),
        (22, b"31022024", "payment date"),
        (30, b"256000", "payment_time"),
        (1, b"00000009", "sequence"),
    ],
)
def test_a_bad_field_is_refused_naming_the_line_and_field(
    start: int, value: bytes, field: str
) -> None:
    records = bank_file()
    records[2] = records[2][:start] + value + records[2][start + len(value) :]
    with pytest.raises(InvalidSettlementFile) as caught:
        read_all(records)
    assert caught.value.details["line"] == 3
    assert caught.value.details["field"] == field


def test_buddhist_era_dates_and_lf_endings_are_read() -> None:
    records = [r.rstrip(b"\r\n") + b"\n" for r in bank_file()]
    records[0] = records[0][:62] + b"03062567" + records[0][70:]
    header, details = read_bank_file(records)
    assert header.business_date == DAY
    assert len(list(details)) == 2


def test_the_header_must_be_for_the_day_and_partner_imported() -> None:
    check_header(HEADER, business_date=DAY, partner="cvs-th")
    check_header(BankHeader(DAY), business_date=DAY, partner="anyone")  # blank: not checked
    with pytest.raises(InvalidSettlementFile, match="business date 2024-06-03"):
        check_header(HEADER, business_date=date(2024, 6, 4), partner="cvs-th")
    with pytest.raises(InvalidSettlementFile, match="for partner 'cvs-th'"):
        check_header(HEADER, business_date=DAY, partner="other")


def test_a_reference_too_long_for_the_layout_is_refused_on_export() -> None:
    long_id = SettlementLine(0, "X" * 21, "3100600445635", 40, (Month(2024, 6),), 7_000)
    with pytest.raises(InvalidSettlementFile, match="Ref2"):
        bank_file([long_id])


months = st.sets(st.integers(0, 12), min_size=1, max_size=13).map(
    lambda offsets: tuple(sorted(Month(2024, 1).plus(o) for o in offsets))
)


@given(months, st.sampled_from([39, 40]))
def test_ref3_round_trips(chosen: tuple[Month, ...], section: int) -> None:
    text = format_ref3(section, chosen)
    assert parse_ref3(text, 1) == (section, chosen)


def test_ref3_writes_runs() -> None:
    assert format_ref3(40, [Month(2024, 1), Month(2024, 2), Month(2024, 4)]) == (
        "40:202401-202402,202404"
    )
    assert format_ref3(39, [Month(2024, 5)]) == "39:202405"
    with pytest.raises(InvalidSettlementFile, match="twice"):
        parse_ref3("40:202401-202402,202402", 9)


# --- CSV -------------------------------------------------------------------------------------
def csv_file(lines: list[SettlementLine] = LINES) -> bytes:
    return csv_header() + b"".join(csv_record(line) for line in lines)


def test_csv_round_trips_with_thai_names_and_a_bom() -> None:
    data = b"\xef\xbb\xbf" + csv_file()
    back = list(read_csv_file(data.splitlines(keepends=True)))
    assert [(b.line_no, b.partner_txn_id, b.months, b.amount_satang, b.name) for b in back] == [
        (2, "POS-0001", (Month(2024, 6), Month(2024, 7)), 14_000, "นางสมหญิง ใจดี"),
        (3, "POS-0002", (Month(2024, 5),), 43_200, "นายสมศักดิ์ ทองคำ"),
    ]
    assert back[0].paid_at == LINES[0].paid_at


def test_csv_needs_the_columns_and_exact_amounts() -> None:
    minimal = b"partner_txn_id,national_id,section,months,amount\nT1,3100600445635,40,2024-06,70\n"
    (line,) = read_csv_file(minimal.splitlines(keepends=True))
    assert line.amount_satang == 7_000 and line.paid_at is None
    with pytest.raises(InvalidSettlementFile, match="lacks amount"):
        list(read_csv_file([b"partner_txn_id,national_id,section,months\n"]))
    bad = minimal.replace(b",70\n", b",70.005\n")
    with pytest.raises(InvalidSettlementFile) as caught:
        list(read_csv_file(bad.splitlines(keepends=True)))
    assert caught.value.details == {"line": 2, "field": "amount"}
    with pytest.raises(InvalidSettlementFile, match="not UTF-8"):
        list(read_csv_file([csv_header(), "T1,นาง".encode("tis_620")]))


def test_the_format_is_told_from_the_first_line() -> None:
    assert detect_format(bank_file()[0]) == "bank"
    assert detect_format(csv_header()) == "csv"
