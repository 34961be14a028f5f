"""The seed's rows as PostgreSQL's binary COPY format, built without a Python object per row.

A range of persons becomes three byte strings, one ``COPY ... (FORMAT binary)`` each for
``insured_persons``, ``paid_months`` and ``closed_memberships``. A field's encoding is cached
by value (titles, names, dates and amounts repeat), a month row is the person's ID followed by
the cached rest of the row, and a person's months are one ``bytes.join``. The column types are
written here; a table whose column has another type rejects the COPY ("incorrect binary data
format"), it never stores something else. tests/unit/insured/test_demo_rows.py decodes the
bytes back and compares them with ``generate()``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from operator import getitem

from app.insured.demo_data.rows import (
    CLOSED_COLUMNS,
    MONTH_COLUMNS,
    PERSON_COLUMNS,
    SeedPlan,
    _Rows,
    drawn,
    former_s39,
)

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
TRAILER = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"
_EPOCH = date(2000, 1, 1).toordinal()
_ID_LENGTH = struct.pack(">i", 13)  # PostgreSQL's dates count days from 2000-01-01


def _text(value: object) -> bytes:
    data = str(value).encode()
    return struct.pack(">i", len(data)) + data


def _date(value: object) -> bytes:
    assert isinstance(value, date)
    return struct.pack(">ii", 4, value.toordinal() - _EPOCH)


def _int(fmt: str) -> Callable[[object], bytes]:
    size = struct.calcsize(fmt)
    return lambda value: struct.pack(">i" + fmt, size, value)


ENCODERS: dict[str, Callable[[object], bytes]] = {
    "text": _text,
    "date": _date,
    "smallint": _int("h"),
    "integer": _int("i"),
    "bigint": _int("q"),
}
#: The type of every column the seed writes (information_schema's names).
COLUMN_TYPES = {
    "national_id": "text", "title": "text", "first_name": "text", "last_name": "text",
    "section": "smallint", "status": "text", "status_reason": "text", "ended_month": "date",
    "effective_date": "date", "s40_option": "smallint", "payment_method": "text",
    "period_of_payment": "text", "return_code": "text", "birth_date": "date",
    "last_paid_on": "date", "last_paid_satang": "bigint", "s33_months": "smallint",
    "s33_employment_ended_on": "date", "s39_applied_on": "date", "s39_eligibility": "text",
    "month": "date", "amount_satang": "integer", "paid_on": "date", "coverage_start": "date",
    "end_reason": "text", "closed_on": "date", "closed_by": "text",
}  # fmt: skip


class _Field(dict[object, bytes]):
    """One column's encoded values, by value (NULL for None)."""

    def __init__(self, column: str) -> None:
        super().__init__()
        self._encode = ENCODERS[COLUMN_TYPES[column]]

    def __missing__(self, value: object) -> bytes:
        encoded = self[value] = NULL if value is None else self._encode(value)
        return encoded


def _fields(columns: tuple[str, ...]) -> list[_Field]:
    return [_Field(column) for column in columns[1:]]  # the first, the ID, is never cached


@dataclass(frozen=True, slots=True)
class Chunk:
    """A range of persons as three binary COPY streams."""

    persons: int
    months: int
    closed: int
    person_data: bytes
    month_data: bytes
    closed_data: bytes


class Encoder:
    """Encodes ranges of one plan's persons; its caches last as long as it does."""

    def __init__(self, plan: SeedPlan) -> None:
        self.plan = plan
        self.rows = _Rows(plan)
        self._person = _fields(PERSON_COLUMNS)
        self._closed = _fields(CLOSED_COLUMNS)
        self._month = _fields(MONTH_COLUMNS)
        self._runs: dict[tuple[int, int | None, int, int], list[bytes]] = {}

    def _run(self, section: int, option: int | None, first: int, last: int) -> list[bytes]:
        """The month rows first..last without their leading ID (and with an empty first
        item), to be joined by the ID: ``id.join(run)`` is the rows."""
        key = (section, option, first, last)
        run = self._runs.get(key)
        if run is None:
            run = [b""]
            for index in range(first, last + 1):
                tail = self.rows.tail(section, option, index)
                run.append(b"".join(map(getitem, self._month, tail)))
            self._runs[key] = run
        return run

    def chunk(self, start: int, stop: int) -> Chunk:
        """Persons ``start``..``stop`` (and their months and ended memberships), in order."""
        person_head = struct.pack(">h", len(PERSON_COLUMNS))
        month_head = struct.pack(">h", len(MONTH_COLUMNS))
        closed_head = struct.pack(">h", len(CLOSED_COLUMNS))
        share, own = self.plan.former_s39_share, self.rows.own
        people, months, closed = [HEADER], [HEADER], [HEADER]
        persons = month_count = closed_count = 0
        fields, closed_fields, runs, join = self._person, self._closed, self._runs, b"".join
        for person, section, option, first, last in drawn(self.plan, self.rows, start, stop):
            nid = _ID_LENGTH + str(person[0]).encode()  # IDs: 13 ASCII digits by construction
            people.append(person_head + nid + join(map(getitem, fields, person[1:])))
            persons += 1
            if first <= last:
                rows = runs.get((section, option, first, last)) or self._run(
                    section, option, first, last
                )
                months.append((month_head + nid).join(rows))
                month_count += len(rows) - 1
            for row in former_s39(person, share=share, own=own):
                closed.append(closed_head + nid + join(map(getitem, closed_fields, row[1:])))
                closed_count += 1
        for parts in (people, months, closed):
            parts.append(TRAILER)
        return Chunk(
            persons,
            month_count,
            closed_count,
            b"".join(people),
            b"".join(months),
            b"".join(closed),
        )


_ENCODER: Encoder | None = None


def encode(plan: SeedPlan, start: int, stop: int) -> Chunk:
    """``Encoder(plan).chunk(start, stop)``, keeping the encoder (and its caches) for the next
    range of the same plan: a loader process's task."""
    global _ENCODER
    if _ENCODER is None or _ENCODER.plan != plan:
        _ENCODER = Encoder(plan)
    return _ENCODER.chunk(start, stop)
