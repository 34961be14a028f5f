"""Attacks on the settlement file readers (pure logic): hostile CSV files a partner may send."""

from __future__ import annotations

import io

import pytest

from app.domain.spreadsheet_cells import escape_cell, unescape_cell
from app.errors import InvalidSettlementFile
from app.settlement.csv_file import read_csv_file

NID = b"3100600445635"


def _read(data: bytes) -> list[object]:
    return list(read_csv_file(io.BytesIO(data).readlines()))


def test_a_csv_file_with_old_mac_cr_line_ends_is_refused_as_a_bad_file_not_a_crash() -> None:
    """ "CSV (Macintosh)" from a spreadsheet ends rows with CR alone: the reader meets one line
    with bare CRs in it and the csv module raises ``_csv.Error``, which is no ServiceError, so
    the REST import answers 500 server.internal and the command line a traceback."""
    data = (b"partner_txn_id,national_id,section,months,amount\r"
            b"T1," + NID + b",40,2024-06,70.00\rT2," + NID + b",40,2024-07,70.00\r")  # fmt: skip
    with pytest.raises(InvalidSettlementFile):
        _read(data)


def test_a_csv_field_past_the_csv_modules_limit_is_refused_as_a_bad_file_not_a_crash() -> None:
    """A quoted name running over several lines past 131,072 characters: ``_csv.Error`` again."""
    name = b'"' + (b"a" * 60_000 + b"\r\n") * 3 + b'"'
    data = (b"partner_txn_id,national_id,section,months,amount,name\r\n"
            b"T1," + NID + b",40,2024-06,70.00," + name + b"\r\n")  # fmt: skip
    with pytest.raises(InvalidSettlementFile):
        _read(data)


def test_a_header_naming_the_amount_twice_is_refused_not_read_as_the_last_column() -> None:
    """Two ``amount`` columns (gross and net, say): the reader silently takes the last one, so
    a 70.00 baht payment is read as 7,000.00 baht. An ambiguous header must be refused."""
    data = (b"partner_txn_id,national_id,section,months,amount,amount\r\n"
            b"T1," + NID + b",40,2024-06,70.00,7000.00\r\n")  # fmt: skip
    with pytest.raises(InvalidSettlementFile):
        _read(data)


@pytest.mark.parametrize("text", ["'=1", "'-T", "'+66812345678", "'@x"])
def test_a_cell_starting_with_an_apostrophe_and_a_formula_sign_survives_the_round_trip(
    text: str,
) -> None:
    """formats.md §8: a cell already starting with ``'`` and a formula sign "gets a second one,
    so the rule can be undone exactly". ``escape_cell("'=1")`` is ``''=1``, but
    ``unescape_cell`` only knows ``'=``…, so it gives ``''=1`` back: a value read back differs
    from the one written (a partner transaction id among them, the key of the match)."""
    assert unescape_cell(escape_cell(text)) == text
