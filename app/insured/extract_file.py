"""The source system's fixed-width TIS-620 extracts of insured persons, Section 39 and 40.

Each record is exactly 200 bytes of TIS-620, records ended by CRLF (LF accepted): one ``H``
header, a ``D`` detail per person and a ``T`` trailer, layouts of ``app.domain.fixed_width``
(name, first column counted from 1, width); text is left-aligned and space-padded, numbers
right-aligned and zero-padded.
Dates are ``YYYYMMDD`` in the Buddhist Era (2567 = 2024 CE; a year below 2400 is read as CE);
amounts are satang. Status is ``A`` active, ``I`` inactive, ``T`` terminated.

    H  type 1/1 'H' | format 2/3 'S39' or 'S40' | extract date 5/8 | source system 13/40
    T  type 1/1 'T' | detail count 2/9
    D (S39)  type 1/1 'D' | national ID 2/13 | effective date 15/8 | title (initial) 23/20
             first name 43/50 | family name 93/50 | period of payment 143/10
             return code 153/2 | status 155/1
    D (S40)  type 1/1 'D' | national ID 2/13 | registration date 15/8 | title 23/20
             first name 43/50 | family name 93/50 | status 143/1 | option 144/1
             method of payment 145/10 | date of payment 155/8 (blank: none)
             payment period 163/10 | amount of payment 173/11 (9+2, blank: none)
             birth date 184/8 (blank: unknown)

A bad detail is rejected with its line and reason and the others still load; a bad encoding,
record length, header or trailer is fatal (``InvalidExtract``) and nothing is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Final

from app.domain.fixed_width import Field, Layout, RecordFamily, Value, digits
from app.domain.national_id import validate_national_id
from app.errors import InvalidExtract, InvalidNationalId

RECORD_LENGTH: Final = 200
STATUS_CODES: Final = {"A": "active", "I": "inactive", "T": "terminated"}
Prefixes = Mapping[int, frozenset[str]] | None
EXTRACT_RECORDS: Final = RecordFamily(RECORD_LENGTH, InvalidExtract)
HEADER: Final = EXTRACT_RECORDS.layout(
    Field("type", 1, 1), Field("format", 2, 3), Field("extract_date", 5, 8),
    Field("source", 13, 40),
)  # fmt: skip
TRAILER: Final = EXTRACT_RECORDS.layout(Field("type", 1, 1), Field("count", 2, 9, numeric=True))
_PERSON: Final = EXTRACT_RECORDS.layout(
    Field("type", 1, 1), Field("national_id", 2, 13), Field("effective_date", 15, 8),
    Field("title", 23, 20), Field("first_name", 43, 50), Field("last_name", 93, 50),
)  # fmt: skip
DETAIL: Final[Mapping[int, Layout]] = {
    39: _PERSON.extend(Field("period_of_payment", 143, 10), Field("return_code", 153, 2),
                       Field("status", 155, 1)),
    40: _PERSON.extend(Field("status", 143, 1), Field("option", 144, 1),
                       Field("payment_method", 145, 10), Field("last_paid_on", 155, 8),
                       Field("period_of_payment", 163, 10),
                       Field("last_paid_satang", 173, 11, numeric=True),  # satang, 9+2 digits
                       Field("birth_date", 184, 8)),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExtractHeader:
    """What the H record says."""

    section: int
    extract_date: date
    source: str


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One insured person of an extract, as the gateway stores it."""

    line_no: int
    national_id: str
    title: str
    first_name: str
    last_name: str
    section: int
    status: str
    effective_date: date
    s40_option: int | None = None
    payment_method: str | None = None
    period_of_payment: str | None = None
    return_code: str | None = None
    birth_date: date | None = None
    last_paid_on: date | None = None
    last_paid_satang: int | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A detail line that was not loaded, and why."""

    line_no: int
    field: str
    reason: str


class _Reject(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _fatal(line: int, message: str, reason: str, **details: object) -> InvalidExtract:
    return InvalidExtract(f"Line {line}: {message}", line=line, reason=reason, **details)


@lru_cache(maxsize=65536)  # extracts repeat dates a great deal
def parse_date(text: str, field: str) -> date:
    """A ``YYYYMMDD`` date, Buddhist Era when the year is 2400 or more."""
    try:
        year = int(text[:4]) if len(text) == 8 and text.isdigit() and text.isascii() else 0
        return date(year - 543 if year >= 2400 else year, int(text[4:6]), int(text[6:]))
    except ValueError:
        raise _Reject(field, f"{field} {text!r} is not a YYYYMMDD date") from None


def _optional_date(text: str, field: str) -> date | None:
    return parse_date(text, field) if text else None


def _person(fields: dict[str, str], line: int, section: int, prefixes: Prefixes) -> PersonRecord:
    try:
        national_id = validate_national_id(
            fields["national_id"], section=section, prefixes=prefixes
        )
    except InvalidNationalId as exc:
        raise _Reject("national_id", exc.message) from None
    status = STATUS_CODES.get(fields["status"])
    if status is None:
        raise _Reject("status", f"status {fields['status']!r} is not A, I or T")
    for name in ("title", "first_name", "last_name"):
        if not fields[name]:
            raise _Reject(name, f"{name} is empty")
    option: int | None = None
    amount: int | None = None
    if section == 40:
        if fields["option"] not in ("1", "2", "3"):
            raise _Reject("option", f"option {fields['option']!r} is not 1, 2 or 3")
        option = int(fields["option"])
        if fields["last_paid_satang"]:
            amount = digits(fields["last_paid_satang"])
            if amount is None:
                raise _Reject("last_paid_satang", "amount of payment is not digits")
    return PersonRecord(
        line_no=line,
        national_id=national_id,
        title=fields["title"],
        first_name=fields["first_name"],
        last_name=fields["last_name"],
        section=section,
        status=status,
        effective_date=parse_date(fields["effective_date"], "effective_date"),
        s40_option=option,
        payment_method=fields.get("payment_method") or None,
        period_of_payment=fields.get("period_of_payment") or None,
        return_code=fields.get("return_code") or None,
        birth_date=_optional_date(fields.get("birth_date", ""), "birth_date"),
        last_paid_on=_optional_date(fields.get("last_paid_on", ""), "last_paid_on"),
        last_paid_satang=amount,
    )


def parse_header(text: str, *, section: int) -> ExtractHeader:
    """The H record; fatal when it is missing or for the other section."""
    fields = HEADER.parse(text)
    if fields["type"] != "H":
        raise _fatal(1, "the extract must start with an H record.", "header")
    if fields["format"] != f"S{section}":
        raise _fatal(1, f"the header says {fields['format']!r}, not 'S{section}'.", "header")
    try:
        extract_date = parse_date(fields["extract_date"], "extract date")
    except _Reject as exc:
        raise _fatal(1, exc.reason, "header") from None
    return ExtractHeader(section, extract_date, fields["source"])


def read_extract(
    lines: Iterable[bytes], *, section: int, prefixes: Prefixes = None
) -> tuple[ExtractHeader, Iterator[PersonRecord | Rejection]]:
    """The header at once, then every detail as a record or a rejection; trailer checked last."""
    if section not in DETAIL:
        raise InvalidExtract(f"No extract format for section {section}.", reason="format")
    numbered = enumerate(lines, start=1)
    first = next(numbered, None)
    if first is None:
        raise _fatal(1, "the extract is empty.", "empty")
    header = parse_header(EXTRACT_RECORDS.decode(first[1], 1), section=section)
    return header, _details(numbered, section, prefixes)


def _details(
    numbered: Iterator[tuple[int, bytes]], section: int, prefixes: Prefixes
) -> Iterator[PersonRecord | Rejection]:
    count = 0
    line = 1
    for line, raw in numbered:
        text = EXTRACT_RECORDS.decode(raw, line)
        if text[0] == "D":
            count += 1
            try:
                yield _person(DETAIL[section].parse(text), line, section, prefixes)
            except _Reject as exc:
                yield Rejection(line, exc.field, exc.reason)
        elif text[0] == "T":
            said = TRAILER.parse(text)["count"]
            if digits(said) != count:  # None (not ASCII digits) is no count
                raise _fatal(line, f"the trailer says {said!r} records; the extract has {count}.",
                             "trailer", trailer_count=said, detail_count=count)  # fmt: skip
            if any(rest.strip() for _, rest in numbered):
                raise _fatal(line + 1, "a record follows the trailer.", "after_trailer")
            return
        else:
            raise _fatal(line, f"unknown record type {text[0]!r} (D or T).", "type")
    raise _fatal(line + 1, "the extract ends without a T trailer.", "trailer")


# --- writing (the source system's side; tests and benchmarks use it) -------------------------
def _be(day: date | None) -> str:
    return "" if day is None else f"{day.year + 543:04d}{day.month:02d}{day.day:02d}"


def format_person(person: PersonRecord) -> bytes:
    """One D record for ``person``."""
    codes = {name: code for code, name in STATUS_CODES.items()}
    values: dict[str, Value] = {
        "type": "D", "national_id": person.national_id, "title": person.title,
        "effective_date": _be(person.effective_date), "first_name": person.first_name,
        "last_name": person.last_name, "status": codes[person.status],
        "period_of_payment": person.period_of_payment or "",
        "return_code": person.return_code or "", "option": str(person.s40_option or ""),
        "payment_method": person.payment_method or "", "last_paid_on": _be(person.last_paid_on),
        "last_paid_satang": person.last_paid_satang,
        "birth_date": _be(person.birth_date),
    }  # fmt: skip
    return DETAIL[person.section].encode(values)


def write_extract(header: ExtractHeader, persons: Iterable[PersonRecord]) -> Iterator[bytes]:
    """Every record of an extract, header to trailer."""
    yield HEADER.encode({"type": "H", "format": f"S{header.section}", "source": header.source,
                         "extract_date": _be(header.extract_date)})  # fmt: skip
    count = 0
    for person in persons:
        count += 1
        yield format_person(person)
    yield TRAILER.encode({"type": "T", "count": count})
