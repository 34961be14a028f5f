"""Settlement files as UTF-8 CSV: a header row naming ``CSV_COLUMNS``, one payment a row.

Months are ``YYYY-MM`` joined by ``;``, the amount is baht with up to 2 decimals, ``paid_at`` is
ISO 8601 (read as Bangkok time without an offset). Described in ``docs/formats.md``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Final

from app.domain.calendar import BANGKOK
from app.domain.money import to_baht, to_satang
from app.domain.months import Month
from app.domain.spreadsheet_cells import escape_row, unescape_cell
from app.errors import InvalidAmount, InvalidMonth
from app.settlement.bank_file import (
    RECORD_LENGTH,
    SettlementLine,
    national_id_field,
    refuse,
)

CSV_COLUMNS: Final = ("partner_txn_id", "national_id", "section", "months", "amount",
                      "paid_at", "store_id", "terminal_id", "name")  # fmt: skip
_CSV_REQUIRED: Final = CSV_COLUMNS[:5]


def _utf8(lines: Iterable[bytes]) -> Iterator[str]:
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise refuse(number, f"byte 0x{raw[exc.start]:02X} is not UTF-8.",
                         reason="encoding") from None  # fmt: skip
        yield text.removeprefix("\ufeff") if number == 1 else text


def _csv_line(cells: dict[str, str], line: int) -> SettlementLine:
    if cells["section"] not in ("39", "40"):
        raise refuse(line, "section must be 39 or 40.", field="section")
    if not cells["partner_txn_id"]:
        raise refuse(line, "partner_txn_id is empty.", field="partner_txn_id")
    try:
        months = tuple(sorted(Month.parse(m.strip()) for m in cells["months"].split(";")))
        amount = to_satang(cells["amount"])
        paid_at = datetime.fromisoformat(cells["paid_at"]) if cells["paid_at"] else None
    except (InvalidMonth, InvalidAmount) as exc:
        raise refuse(line, exc.message, field=exc.code.rpartition("_")[2]) from None
    except ValueError:
        raise refuse(line, "paid_at is not an ISO 8601 date-time.", field="paid_at") from None
    if len(set(months)) != len(months):
        raise refuse(line, "months names a month twice.", field="months")
    if paid_at is not None and paid_at.tzinfo is None:
        paid_at = paid_at.replace(tzinfo=BANGKOK)
    return SettlementLine(
        line_no=line,
        partner_txn_id=cells["partner_txn_id"],
        national_id=national_id_field(cells["national_id"], line, "national_id"),
        section=int(cells["section"]),
        months=months,
        amount_satang=amount,
        paid_at=paid_at,
        name=cells["name"],
        store_id=cells["store_id"],
        terminal_id=cells["terminal_id"],
    )


def _rows(reader: Any) -> Iterator[list[str]]:
    """The reader's rows; what the csv module cannot read (a field past its limit, a line
    ending in a bare carriage return) is the file's fault, named with its line."""
    while True:
        try:
            row: list[str] = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise refuse(reader.line_num, f"the CSV cannot be read: {exc}.",
                         reason="syntax") from None  # fmt: skip
        yield row


def read_csv_file(lines: Iterable[bytes]) -> Iterator[SettlementLine]:
    """The rows of a UTF-8 CSV settlement file whose header row names the columns."""
    reader = csv.reader(_utf8(lines))
    rows = _rows(reader)
    names = [name.strip().lower() for name in next(rows, [])]
    missing = [name for name in _CSV_REQUIRED if name not in names]
    if missing:
        raise refuse(1, f"the header row lacks {', '.join(missing)}.", reason="header")
    twice = sorted({name for name in names if name and names.count(name) > 1})
    if twice:  # else the last of them would be read, silently
        raise refuse(1, f"the header row names {', '.join(twice)} twice.", reason="header")
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise refuse(reader.line_num, f"{len(row)} fields where the header has "
                         f"{len(names)}.", reason="fields")  # fmt: skip
        cells = dict(zip(names, (unescape_cell(cell.strip()) for cell in row), strict=True))
        yield _csv_line({name: cells.get(name, "") for name in CSV_COLUMNS}, reader.line_num)


def csv_header() -> bytes:
    """The header row of the gateway's CSV files."""
    return (",".join(CSV_COLUMNS) + "\r\n").encode()


def csv_record(line: SettlementLine) -> bytes:
    """One CSV row: months ``YYYY-MM`` joined by ``;``, the amount in baht with 2 decimals."""
    out = io.StringIO()
    paid_at = line.paid_at.isoformat() if line.paid_at else ""
    months = ";".join(str(month) for month in line.months)
    csv.writer(out).writerow(escape_row([line.partner_txn_id, line.national_id, line.section,
                                         months, to_baht(line.amount_satang), paid_at,
                                         line.store_id, line.terminal_id, line.name]))  # fmt: skip
    return out.getvalue().encode()


def detect_format(first_line: bytes) -> str:
    """``bank`` when the first record is a 256-byte H record, else ``csv``."""
    record = first_line.rstrip(b"\r\n")
    return "bank" if len(record) == RECORD_LENGTH and record[:1] == b"H" else "csv"
