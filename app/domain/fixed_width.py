"""Fixed-width records: named fields at fixed columns of a line of one length, TIS-620 on the wire.

A ``RecordFamily`` is what the records of one file share: their length, the error a bad one
raises and whether control characters are blanked when written. Each kind of record of the
family is a ``Layout`` of fields (name, first column counted from 1, width). Text is
left-aligned, space-padded and cut to its width; a number is right-aligned and zero-padded, and
one that does not fit is refused. A field whose value is ``None`` or left out is blank.

Columns count characters. TIS-620 has one byte for each character, so a column is a byte too:
a record is decoded as cp874 (TIS-620 and a few Windows marks) and encoded as TIS-620, where a
character it lacks becomes ``?``, one for one, and the widths survive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Final

from app.errors import ServiceError

CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\ufffd]")  # C0, C1 and undecodable bytes
Value = str | int | None


@dataclass(frozen=True, slots=True)
class Field:
    """A field of a record: its name, first column (from 1), width and kind."""

    name: str
    start: int
    width: int
    numeric: bool = False  # right-aligned, zero-padded; text is left-aligned, space-padded

    @property
    def end(self) -> int:
        """The field's last column (from 1)."""
        return self.start + self.width - 1


@dataclass(frozen=True, slots=True)
class RecordFamily:
    """The records of one file: their length, their error, and whether controls are blanked."""

    length: int
    error: type[ServiceError]  # raised as error(message, **details)
    blank_controls: bool = False

    def layout(self, *fields: Field) -> Layout:
        """A kind of record of this family, made of ``fields`` in column order."""
        return Layout(self, fields)

    def refuse(self, line: int, message: str, **details: object) -> ServiceError:
        """The error for a record that cannot be read, naming its line."""
        return self.error(f"Line {line}: {message}", line=line, **details)

    def decode(self, raw: bytes, line: int) -> str:
        """One record's text: exactly ``length`` TIS-620 bytes (a line end aside), no controls."""
        record = raw.rstrip(b"\r\n")
        if len(record) != self.length:
            raise self.refuse(line, f"a record must be {self.length} bytes, this one has "
                              f"{len(record)}.", reason="length", length=len(record))  # fmt: skip
        text = record.decode("cp874", errors="replace")
        bad = CONTROL.search(text)
        if bad is not None:
            column = bad.start() + 1
            raise self.refuse(line, f"byte 0x{record[column - 1]:02X} at column {column} is not "
                              "TIS-620 text.", reason="encoding", column=column)  # fmt: skip
        return text

    @staticmethod
    def encode(text: str) -> bytes:
        """A record's text as TIS-620 bytes ended by CRLF."""
        return text.encode("tis_620", errors="replace") + b"\r\n"


class Layout:
    """One kind of record: its fields, read from a line and laid into one."""

    __slots__ = ("_fillers", "_getter", "family", "fields", "names")

    def __init__(self, family: RecordFamily, fields: tuple[Field, ...]) -> None:
        _check(fields, family.length)
        self.family = family
        self.fields = fields
        self.names = tuple(field.name for field in fields)
        getter = itemgetter(*(slice(f.start - 1, f.end) for f in fields))
        self._getter: Callable[[str], tuple[str, ...]] = (
            getter if len(fields) > 1 else lambda text: (getter(text),)
        )
        ends = (0, *(field.end for field in fields))
        starts = (*(field.start - 1 for field in fields), family.length)
        self._fillers = tuple(" " * (start - end) for end, start in zip(ends, starts, strict=True))

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def extend(self, *fields: Field) -> Layout:
        """This layout with ``fields`` added after its own."""
        return Layout(self.family, (*self.fields, *fields))

    def field(self, name: str) -> Field:
        """The field called ``name``."""
        return self.fields[self.names.index(name)]

    def parse(self, text: str) -> dict[str, str]:
        """Each field's text, its padding stripped."""
        return dict(zip(self.names, map(str.strip, self._getter(text)), strict=True))

    def format(self, values: Mapping[str, Value]) -> str:
        """The record's text with ``values`` in their fields (a field left out is blank)."""
        parts = [self._fillers[0]]
        for field, filler in zip(self.fields, self._fillers[1:], strict=True):
            parts.append(self._lay(field, values.get(field.name)))
            parts.append(filler)
        return "".join(parts)

    def encode(self, values: Mapping[str, Value]) -> bytes:
        """The record as TIS-620 bytes ended by CRLF."""
        return self.family.encode(self.format(values))

    def _lay(self, field: Field, value: Value) -> str:
        if value is None:
            return " " * field.width
        if field.numeric is not isinstance(value, int):
            kind = "a number" if field.numeric else "text"
            raise TypeError(f"Field {field.name} takes {kind}, not {value!r}.")
        if isinstance(value, int):
            text = f"{value:0{field.width}d}"
            if value < 0 or len(text) > field.width:
                raise self.family.error(f"{field.name} {value} does not fit {field.width} digits.",
                                        field=field.name)  # fmt: skip
            return text
        if self.family.blank_controls:
            value = CONTROL.sub(" ", value)
        return value[: field.width].ljust(field.width)


def _check(fields: tuple[Field, ...], length: int) -> None:
    """Refuse a layout whose fields overlap, leave the record or share a name."""
    end = 0
    for field in fields:
        if field.width < 1 or field.start <= end or field.end > length:
            raise ValueError(f"Field {field.name} ({field.start}/{field.width}) does not fit.")
        end = field.end
    if not fields or len({field.name for field in fields}) != len(fields):
        raise ValueError("A layout needs fields with distinct names.")


def digits(text: str) -> int | None:
    """The number ``text`` spells in ASCII digits, or None when it is anything else."""
    return int(text) if text.isdigit() and text.isascii() else None
