"""Settlement files: the Thai banks' 256-character bill-payment layout (TIS-620) and UTF-8 CSV.

A bank file is one ``H`` header, a ``D`` detail per transaction and a ``T`` trailer, each exactly
256 bytes of TIS-620, records ended by CRLF (LF accepted). The fields are in ``HEADER``,
``DETAIL`` and ``TRAILER`` below, layouts of ``app.domain.fixed_width``. Text is left-aligned
and space-padded; numbers right-aligned and zero-padded; amounts are satang (11+2 digits in a
detail, 15+2 in the trailer, no decimal point); dates ``DDMMYYYY`` (a year of 2400 or more is
Buddhist Era). Ref1 is the national ID, Ref2 the partner's transaction id, Ref3 the section and
months: ``40:202406-202408`` (comma-separated ``YYYYMM`` or inclusive ``YYYYMM-YYYYMM`` runs).
The CSV layout is in ``settlement_csv``; both are described in ``docs/formats.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from typing import Final

from app.domain.calendar import BANGKOK
from app.domain.fixed_width import Field, Layout, RecordFamily, Value, digits
from app.domain.money import format_baht
from app.domain.months import Month
from app.errors import InvalidMonth, InvalidSettlementFile

RECORD_LENGTH: Final = 256
SSO_NAME: Final = "สำนักงานประกันสังคม"
BANK_RECORDS: Final = RecordFamily(RECORD_LENGTH, InvalidSettlementFile, blank_controls=True)
_LEAD: Final = BANK_RECORDS.layout(
    Field("type", 1, 1), Field("sequence", 2, 8, numeric=True), Field("bank_code", 10, 3),
    Field("company_account", 13, 10),
)  # fmt: skip
HEADER: Final = _LEAD.extend(Field("company_name", 23, 40), Field("business_date", 63, 8),
                             Field("partner_code", 71, 20))  # fmt: skip
DETAIL: Final = _LEAD.extend(
    Field("payment_date", 23, 8), Field("payment_time", 31, 6), Field("name", 37, 50),
    Field("ref1", 87, 20), Field("ref2", 107, 20), Field("ref3", 127, 20),
    Field("store_id", 147, 10), Field("terminal_id", 157, 10), Field("kind", 167, 1),
    Field("amount", 168, 13, numeric=True),  # satang, 11+2 digits
)  # fmt: skip
TRAILER: Final = _LEAD.extend(Field("count", 23, 9, numeric=True),
                              Field("total", 32, 17, numeric=True))  # fmt: skip
_REF3_ITEM: Final = re.compile(r"(\d{6})(?:-(\d{6}))?", re.ASCII)


@dataclass(frozen=True, slots=True)
class SettlementLine:
    """One transaction of a settlement file (a D record or a CSV row)."""

    line_no: int
    partner_txn_id: str
    national_id: str
    section: int
    months: tuple[Month, ...]
    amount_satang: int
    paid_at: datetime | None = None
    name: str = ""
    store_id: str = ""
    terminal_id: str = ""


@dataclass(frozen=True, slots=True)
class BankHeader:
    """What the H record of a bank file says."""

    business_date: date
    partner_code: str = ""
    bank_code: str = "000"
    company_account: str = "0000000000"
    company_name: str = SSO_NAME


def refuse(line: int, message: str, **details: object) -> InvalidSettlementFile:
    """The error for a file that cannot be taken, naming the line."""
    return InvalidSettlementFile(f"Line {line}: {message}", line=line, **details)


# --- fields ----------------------------------------------------------------------------------
def _number(text: str, line: int, field: str) -> int:
    value = digits(text)
    if value is None:
        raise refuse(line, f"{field} must be digits (got {text!r}).", field=field)
    return value


def _date(text: str, line: int, field: str) -> date:
    year = _number(text[4:], line, field) if len(text) == 8 else 0
    try:
        if digits(text[:4]) is None:  # int() alone would read Thai digits too
            raise ValueError(text)
        return date(year - 543 if year >= 2400 else year, int(text[2:4]), int(text[:2]))
    except ValueError:
        raise refuse(line, f"{field} {text!r} is not a DDMMYYYY date.", field=field) from None


def national_id_field(text: str, line: int, field: str) -> str:
    if len(text) != 13 or not text.isdigit() or not text.isascii():
        raise refuse(line, f"{field} must be a 13-digit national ID.", field=field)
    return text


def parse_ref3(text: str, line: int) -> tuple[int, tuple[Month, ...]]:
    """Section and months from Ref3, such as ``40:202406-202408`` or ``39:202401,202403``."""
    section, colon, rest = text.partition(":")
    if not colon or section not in ("39", "40") or not rest:
        raise refuse(line, f"Ref3 must be like 40:202406-202408 (got {text!r}).", field="ref3")
    months: list[Month] = []
    for item in rest.split(","):
        match = _REF3_ITEM.fullmatch(item)
        try:
            first = Month(int(item[:4]), int(item[4:6])) if match else None
            last = Month(int(match[2][:4]), int(match[2][4:])) if match and match[2] else first
        except InvalidMonth:
            first = last = None
        if first is None or last is None or not 0 <= last.index - first.index <= 12:
            raise refuse(line, f"Ref3 item {item!r} is not YYYYMM or a YYYYMM-YYYYMM run.",
                         field="ref3")  # fmt: skip
        months.extend(Month.range(first, last))
    if len(set(months)) != len(months):
        raise refuse(line, "Ref3 names a month twice.", field="ref3")
    return int(section), tuple(sorted(months))


def format_ref3(section: int, months: Iterable[Month]) -> str:
    """Ref3 for a section and its months: runs of consecutive months as ``first-last``."""
    runs: list[list[Month]] = []
    for month in sorted(set(months)):
        if runs and runs[-1][-1].plus(1) == month:
            runs[-1].append(month)
        else:
            runs.append([month])
    tag = [f"{r[0].year:04d}{r[0].month:02d}" for r in runs]
    end = [f"-{r[-1].year:04d}{r[-1].month:02d}" if len(r) > 1 else "" for r in runs]
    return f"{section}:" + ",".join(a + b for a, b in zip(tag, end, strict=True))


# --- reading a bank file ---------------------------------------------------------------------
def _check_sequence(fields: dict[str, str], line: int, position: int) -> None:
    if fields["sequence"] and fields["sequence"] != f"{position:08d}":
        raise refuse(line, f"sequence number {fields['sequence']!r} should be {position}.",
                     field="sequence")  # fmt: skip


def parse_header(text: str, line: int = 1) -> BankHeader:
    """The H record."""
    fields = HEADER.parse(text)
    if fields["type"] != "H":
        raise refuse(line, "the file must start with an H record.", reason="header")
    _check_sequence(fields, line, 1)
    return BankHeader(
        business_date=_date(fields["business_date"], line, "business date"),
        partner_code=fields["partner_code"],
        bank_code=fields["bank_code"],
        company_account=fields["company_account"],
        company_name=fields["company_name"],
    )


def parse_detail(text: str, line: int, position: int) -> SettlementLine:
    """A D record, the ``position``-th record of its file."""
    fields = DETAIL.parse(text)
    _check_sequence(fields, line, position)
    if not fields["ref2"]:
        raise refuse(line, "Ref2 (the partner transaction id) is empty.", field="ref2")
    try:  # a file repeats a few values over and over: read each once
        section, months = _known_ref3(fields["ref3"])
        paid_at = _known_instant(fields["payment_date"], fields["payment_time"] or "000000")
    except InvalidSettlementFile:
        section, months = parse_ref3(fields["ref3"], line)  # the same error, with the line
        paid_at = _instant(fields["payment_date"], fields["payment_time"] or "000000", line)
    return SettlementLine(
        line_no=line,
        partner_txn_id=fields["ref2"],
        national_id=national_id_field(fields["ref1"], line, "Ref1"),
        section=section,
        months=months,
        amount_satang=_number(fields["amount"], line, "amount"),
        paid_at=paid_at,
        name=fields["name"],
        store_id=fields["store_id"],
        terminal_id=fields["terminal_id"],
    )


def _instant(day: str, clock: str, line: int) -> datetime:
    try:
        if digits(clock) is None:  # int() alone would read Thai digits too
            raise ValueError(clock)
        at = time(int(clock[:2]), int(clock[2:4]), int(clock[4:]))
    except ValueError:
        raise refuse(line, f"payment time {clock!r} is not HHMMSS.", field="payment_time") from None
    return datetime.combine(_date(day, line, "payment date"), at, tzinfo=BANGKOK)


@lru_cache(maxsize=8192)
def _known_ref3(text: str) -> tuple[int, tuple[Month, ...]]:
    return parse_ref3(text, 0)


@lru_cache(maxsize=8192)
def _known_instant(day: str, clock: str) -> datetime:
    return _instant(day, clock, 0)


def check_trailer(text: str, line: int, *, count: int, total_satang: int) -> None:
    """Refuse a T record whose count or total differs from the details read."""
    fields = TRAILER.parse(text)
    said_count = _number(fields["count"], line, "trailer count")
    said_total = _number(fields["total"], line, "trailer total")
    if (said_count, said_total) != (count, total_satang):
        raise refuse(
            line,
            f"the trailer says {said_count} records totalling {format_baht(said_total)} baht; the "
            f"file has {count} records totalling {format_baht(total_satang)} baht.",
            reason="trailer",
            trailer_count=said_count,
            detail_count=count,
            trailer_total_satang=said_total,
            detail_total_satang=total_satang,
        )


def read_bank_file(lines: Iterable[bytes]) -> tuple[BankHeader, Iterator[SettlementLine]]:
    """The header at once and the details as they are read; the trailer is checked at the end."""
    numbered = enumerate(lines, start=1)
    first = next(numbered, None)
    if first is None:
        raise refuse(1, "the file is empty.", reason="empty")
    return parse_header(BANK_RECORDS.decode(first[1], 1)), _details(numbered)


def _details(numbered: Iterator[tuple[int, bytes]]) -> Iterator[SettlementLine]:
    count = total = 0
    line = 1
    for line, raw in numbered:
        text = BANK_RECORDS.decode(raw, line)
        if text[0] == "D":
            detail = parse_detail(text, line, count + 2)
            count += 1
            total += detail.amount_satang
            yield detail
        elif text[0] == "T":
            _check_sequence(TRAILER.parse(text), line, count + 2)
            check_trailer(text, line, count=count, total_satang=total)
            for extra, rest in numbered:
                if rest.strip():
                    raise refuse(extra, "a record follows the trailer.", reason="after_trailer")
            return
        else:
            raise refuse(line, f"unknown record type {text[0]!r} (D or T).", reason="type")
    raise refuse(line + 1, "the file ends without a T trailer.", reason="trailer")


def partner_code_of(partner: str) -> str:
    """A partner's code as a header carries it, read back: the first 20 characters of its name
    in TIS-620 (``?`` for a character it lacks), without the padding around them."""
    return partner[:20].encode("tis_620", errors="replace").decode("cp874").strip()


def check_header(header: BankHeader, *, business_date: date, partner: str) -> None:
    """Refuse a file made for another business date or another partner."""
    if header.business_date != business_date:
        raise refuse(1, f"the file is for business date {header.business_date}, not "
                     f"{business_date}.", reason="business_date")  # fmt: skip
    if header.partner_code and header.partner_code != partner_code_of(partner):
        raise refuse(1, f"the file is for partner {header.partner_code!r}, not {partner!r}.",
                     reason="partner")  # fmt: skip


# --- writing a bank file ---------------------------------------------------------------------
class BankFileWriter:
    """Writes a bank file record by record, counting and totalling for the trailer."""

    def __init__(self, header: BankHeader) -> None:
        self._header = header
        self.count = 0
        self.total_satang = 0

    def _record(self, kind: str, sequence: int, values: dict[str, Value], layout: Layout) -> bytes:
        h = self._header
        lead: dict[str, Value] = {"type": kind, "sequence": sequence, "bank_code": h.bank_code,
                                  "company_account": h.company_account}  # fmt: skip
        return layout.encode(lead | values)

    def header(self) -> bytes:
        """The H record."""
        h = self._header
        day = h.business_date
        values: dict[str, Value] = {"company_name": h.company_name, "partner_code": h.partner_code,
                  "business_date": f"{day.day:02d}{day.month:02d}{day.year:04d}"}  # fmt: skip
        return self._record("H", 1, values, HEADER)

    def detail(self, line: SettlementLine) -> bytes:
        """One D record; InvalidSettlementFile when a reference does not fit 20 characters."""
        ref3 = format_ref3(line.section, line.months)
        for field, value in (("Ref2", line.partner_txn_id), ("Ref3", ref3)):
            if len(value) > 20:
                raise InvalidSettlementFile(f"{field} {value!r} is longer than 20 characters; "
                                            "use the CSV layout.", field=field.lower())  # fmt: skip
        midnight = datetime.combine(self._header.business_date, time(0), tzinfo=BANGKOK)
        at = (line.paid_at or midnight).astimezone(BANGKOK)
        values: dict[str, Value] = {
            "payment_date": at.strftime("%d%m") + f"{at.year:04d}",
            "payment_time": at.strftime("%H%M%S"), "name": line.name,
            "ref1": line.national_id, "ref2": line.partner_txn_id, "ref3": ref3,
            "store_id": line.store_id, "terminal_id": line.terminal_id, "kind": "C",
            "amount": line.amount_satang,
        }  # fmt: skip
        record = self._record("D", self.count + 2, values, DETAIL)  # counted once it is written
        self.count += 1
        self.total_satang += line.amount_satang
        return record

    def trailer(self) -> bytes:
        """The T record with the count and total of the details written."""
        values: dict[str, Value] = {"count": self.count, "total": self.total_satang}
        return self._record("T", self.count + 2, values, TRAILER)


def write_bank_file(header: BankHeader, lines: Iterable[SettlementLine]) -> Iterator[bytes]:
    """Every record of a bank file, header to trailer."""
    writer = BankFileWriter(header)
    yield writer.header()
    yield from (writer.detail(line) for line in lines)
    yield writer.trailer()
