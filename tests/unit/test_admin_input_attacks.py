"""Hostile inputs to the operator CLI and to the parsers behind SSO's own APIs: each is refused
as a client error naming what is wrong, never an uncaught exception."""

from __future__ import annotations

import base64
from datetime import date

import pytest

from app.audit.records import LookupCursor
from app.cli.main import main
from app.complaints.records import parse_age
from app.errors import InvalidExtract, InvalidInput, InvalidSettlementFile
from app.insured.extract_file import ExtractHeader, read_extract, write_extract
from app.settlement.bank_file import read_bank_file
from tests.unit.settlement.test_bank_file import bank_file

NID = "3100600445635"


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "lookups", "--national-id", NID, "--to", "9999-12-31"],
        ["audit", "verify", "--to", "9999-12-31"],
    ],
)
def test_cli_to_date_of_the_last_day_python_knows_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # A bare --to date means "through that day": the day after 9999-12-31 does not exist.
    # argparse answers a bad value with a usage error (exit 2), not a traceback.
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "--to" in capsys.readouterr().err


@pytest.mark.parametrize(
    "age", ["P9999999999D", "9999999999d", "99999999999999w", "PT99999999999999999H"]
)
def test_an_age_past_what_a_timedelta_holds_is_invalid_input(age: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_age(age)
    assert refused.value.details["field"] == "olderThan"


@pytest.mark.parametrize("seq", ["99999999999999999999", "-99999999999999999999"])
def test_a_lookup_cursor_whose_seq_no_bigint_holds_is_invalid_input(seq: str) -> None:
    token = base64.urlsafe_b64encode(f"2024-01-01T00:00:00+00:00|{seq}".encode()).decode()
    with pytest.raises(InvalidInput) as refused:
        LookupCursor.decode(token.rstrip("="))
    assert refused.value.details["field"] == "cursor"


# --- settlement bank file: Thai digits are not ASCII digits ------------------------------------
THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")


def _thai(ascii_digits: bytes) -> bytes:
    return ascii_digits.decode("ascii").translate(THAI_DIGITS).encode("tis_620")


def test_a_bank_file_business_date_with_thai_digits_is_refused() -> None:
    records = bank_file()
    header = records[0]
    assert header[62:70] == b"03062024"  # DDMM then the year (its digits are checked)
    # DD and MM in Thai digits (TIS-620 holds them, one byte each): the year stays ASCII.
    records[0] = header[:62] + _thai(b"0306") + header[66:]
    assert len(records[0]) == len(header)
    with pytest.raises(InvalidSettlementFile):
        read_bank_file(records)


def test_a_bank_file_payment_time_with_thai_digits_is_refused() -> None:
    records = bank_file()
    detail = records[1]
    assert detail[30:36] == b"101112"
    records[1] = detail[:30] + _thai(b"101112") + detail[36:]
    _, details = read_bank_file(records)
    with pytest.raises(InvalidSettlementFile):
        list(details)


def test_a_person_extract_trailer_count_in_thai_digits_is_refused() -> None:
    records = list(write_extract(ExtractHeader(40, date(2024, 6, 1), "SRC"), []))
    trailer = records[-1]
    assert trailer[1:10] == b"000000000"
    records[-1] = trailer[:1] + _thai(b"000000000") + trailer[10:]
    _, details = read_extract(records, section=40)
    with pytest.raises(InvalidExtract):
        list(details)
