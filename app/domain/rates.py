"""Effective-dated contribution rates keyed by section, option and contribution month."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from app.domain.months import Month
from app.errors import InvalidInput, NoRate

SECTIONS: Final = frozenset({39, 40})
S40_OPTIONS: Final = frozenset({1, 2, 3})


@dataclass(frozen=True, slots=True)
class Rate:
    """What the insured pays (and the government adds) per month over a span of months."""

    section: int
    option: int | None  # None for Section 39; 1, 2 or 3 for Section 40
    first_month: Month
    last_month: Month | None  # None: open-ended
    amount_satang: int
    government_satang: int = 0

    def __post_init__(self) -> None:
        if self.section not in SECTIONS:
            raise InvalidInput(f"No rates exist for section {self.section}.", field="section")
        if self.section == 39 and self.option is not None:
            raise InvalidInput("Section 39 rates have no option.", field="option")
        if self.section == 40 and self.option not in S40_OPTIONS:
            raise InvalidInput("Section 40 rates need option 1, 2 or 3.", field="option")
        if self.last_month is not None and self.last_month < self.first_month:
            raise InvalidInput(
                f"The rate ends ({self.last_month}) before it starts ({self.first_month}).",
                field="last_month",
            )
        if self.amount_satang < 0 or self.government_satang < 0:
            raise InvalidInput("Rate amounts cannot be negative.", field="amount_satang")

    def covers(self, month: Month) -> bool:
        """Whether this rate applies to ``month``."""
        return self.first_month <= month and (self.last_month is None or month <= self.last_month)


def lines_digest(rates: Iterable[Rate]) -> str:
    """The fingerprint of rate lines in their order: SHA-256, in hex, of each line as
    ``section|option|first|last|amount|government`` (an absent option or end written empty,
    months as their first day), joined by commas. ``app.rates.repository.RATE_DIGEST_SQL``
    computes the same in the store, so an instance can tell whether its table is the store's
    without reading the table."""
    text = ",".join(
        f"{r.section}|{'' if r.option is None else r.option}|{r.first_month.first_day}|"
        f"{'' if r.last_month is None else r.last_month.first_day}|{r.amount_satang}|"
        f"{r.government_satang}"
        for r in rates
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _key(section: int, option: int | None) -> tuple[int, int | None]:
    # Section 39 has one rate line whatever option a caller holds.
    return (section, None if section == 39 else option)


class RateTable:
    """Rates to look up by month: the covering rate that starts latest wins."""

    def __init__(self, rates: Iterable[Rate]) -> None:
        self._rates: tuple[Rate, ...] = tuple(rates)
        self.digest = lines_digest(self._rates)  # tells this table from another one
        ordered: dict[tuple[int, int | None], list[tuple[int, int, Rate]]] = {}
        for position, rate in enumerate(self._rates):
            key = _key(rate.section, rate.option)
            ordered.setdefault(key, []).append((rate.first_month.index, position, rate))
        # Latest start first; among equal starts, the rate added last first.
        self._by_key = {
            key: tuple(rate for _, _, rate in sorted(entries, reverse=True, key=lambda e: e[:2]))
            for key, entries in ordered.items()
        }
        # Answers already found: the table never changes, and every inquiry asks for the
        # same dozen months. Bounded; cleared when full.
        self._found: dict[tuple[int, int | None, Month], Rate] = {}

    @property
    def rates(self) -> tuple[Rate, ...]:
        """Every rate, in the order given."""
        return self._rates

    def rate(self, section: int, option: int | None, month: Month) -> Rate:
        """The rate in force for ``month``; NoRate when none covers it (never a zero amount)."""
        found = self._found.get((section, option, month))
        if found is not None:
            return found
        for rate in self._by_key.get(_key(section, option), ()):
            if rate.covers(month):
                if len(self._found) >= 4096:
                    self._found.clear()
                self._found[(section, option, month)] = rate
                return rate
        line = f"section {section}" if option is None else f"section {section} option {option}"
        raise NoRate(
            f"No contribution rate is defined for {line} in {month}.",
            section=section,
            option=option,
            month=str(month),
        )

    def amount(self, section: int, option: int | None, month: Month) -> int:
        """The amount the insured pays for ``month``, in satang."""
        return self.rate(section, option, month).amount_satang

    def government(self, section: int, option: int | None, month: Month) -> int:
        """The government's share for ``month``, in satang (information only)."""
        return self.rate(section, option, month).government_satang


#: The rate history to seed (DOMAIN.md), line for line as the migrations load it (0001, then
#: 0007): temporary cuts overlay the open-ended base rates. Section 39 is 9% of a fixed
#: 4,800-baht base; its government share is not confirmed, and 0 stands for "not known" here
#: as in the table. Section 40 cuts leave the government share unchanged. The May-Jul 2022
#: Section 39 amount (1.9% of 4,800 = 91.20) is 91.00 until SSO confirms the rounding
#: (0007_rate_cuts_2021_2022.sql says why).
DEFAULT_RATE_HISTORY: Final[tuple[Rate, ...]] = (
    # Rate(section, option, first_month, last_month, amount_satang, government_satang)
    Rate(39, None, Month(1990, 1), None, 43_200, 0),
    Rate(39, None, Month(2020, 3), Month(2020, 5), 8_600, 0),
    Rate(39, None, Month(2021, 9), Month(2021, 11), 23_500, 0),
    Rate(40, 1, Month(2012, 1), None, 7_000, 3_000),
    Rate(40, 1, Month(2021, 8), Month(2022, 1), 4_200, 3_000),
    Rate(40, 2, Month(2012, 1), None, 10_000, 5_000),
    Rate(40, 2, Month(2021, 8), Month(2022, 1), 6_000, 5_000),
    Rate(40, 3, Month(2012, 1), None, 30_000, 15_000),
    Rate(40, 3, Month(2021, 8), Month(2022, 1), 18_000, 15_000),
    # 0007: the (M) cuts of May 2021 and March 2022.
    Rate(39, None, Month(2021, 6), Month(2021, 8), 21_600, 0),
    Rate(39, None, Month(2022, 5), Month(2022, 7), 9_100, 0),
    Rate(40, 1, Month(2022, 5), Month(2022, 7), 4_200, 3_000),
    Rate(40, 2, Month(2022, 5), Month(2022, 7), 6_000, 5_000),
    Rate(40, 3, Month(2022, 5), Month(2022, 7), 18_000, 15_000),
)
