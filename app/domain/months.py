"""Contribution months: a year and a month, ordered, with exact arithmetic."""

from __future__ import annotations

import re
from collections.abc import Collection
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from app.errors import InvalidMonth

_MONTH_TEXT = re.compile(r"(\d{4})-(\d{2})", re.ASCII)
_MIN_YEAR = 1
_MAX_YEAR = 9999
# Months are values and every inquiry walks the same dozen: ``from_index`` hands out one
# instance per month (all of them fit: 120,000 months from year 1 to 9999).
_MAX_INTERNED = 120_000


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A contribution month such as 2024-06; ordered by time."""

    year: int
    month: int
    _text: str = field(init=False, repr=False, compare=False, hash=False)
    _hash: int = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not _MIN_YEAR <= self.year <= _MAX_YEAR:
            raise InvalidMonth(
                f"{self.year:04d}-{self.month:02d} is not a calendar month.",
                year=self.year,
                month=self.month,
            )
        object.__setattr__(self, "_text", f"{self.year:04d}-{self.month:02d}")
        object.__setattr__(self, "_hash", self.year * 12 + self.month - 1)

    def __hash__(self) -> int:
        # The month's index, computed once: an inquiry hashes some thirty months (sets and
        # dicts of paid and payable months), and the dataclass's hash builds a tuple each time.
        return self._hash

    @classmethod
    def parse(cls, text: str) -> Month:
        """Read a month written as YYYY-MM."""
        match = _MONTH_TEXT.fullmatch(text)
        if match is None:
            raise InvalidMonth(
                f"The month must be written YYYY-MM (got {text[:20]!r}).", value=text[:20]
            )
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        """The month a calendar date falls in (a business date, never an instant)."""
        if isinstance(day, datetime):
            # An instant's month depends on the time zone: convert with bangkok_date() first.
            raise TypeError("Month.of() takes a date; convert an instant with bangkok_date()")
        return cls.from_index(day.year * 12 + day.month - 1)

    @classmethod
    def from_index(cls, index: int) -> Month:
        """The month whose ``index`` is the given number (one shared instance per month)."""
        found = _INTERNED.get(index)
        if found is None:
            year, month0 = divmod(index, 12)
            found = cls(year, month0 + 1)
            if len(_INTERNED) < _MAX_INTERNED:
                _INTERNED[index] = found
        return found

    @property
    def index(self) -> int:
        """A running month number (year * 12 + month - 1): differences count months."""
        return self.year * 12 + self.month - 1

    @property
    def first_day(self) -> date:
        """The first calendar day of the month."""
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        """The last calendar day of the month (the 29th for a leap February)."""
        if self.month == 12:
            return date(self.year, 12, 31)
        return date(self.year, self.month + 1, 1) - timedelta(days=1)

    def plus(self, months: int) -> Month:
        """The month ``months`` later (earlier when negative)."""
        return Month.from_index(self.index + months)

    def minus(self, months: int) -> Month:
        """The month ``months`` earlier."""
        return Month.from_index(self.index - months)

    @staticmethod
    def range(first: Month, last: Month) -> list[Month]:
        """Every month from ``first`` to ``last``, both included; empty when first > last."""
        return [Month.from_index(i) for i in range(first.index, last.index + 1)]

    def __str__(self) -> str:
        return self._text


_INTERNED: dict[int, Month] = {}


def month_set(months: Collection[Month]) -> AbstractSet[Month]:
    """``months`` to look months up in: a set as it is (a member's paid months are a dict's
    keys, which looks up as fast), anything else copied into one."""
    return months if isinstance(months, AbstractSet) else frozenset(months)
