"""Deterministic synthetic insured persons and payment histories: the rows `ssogw seed` loads.

The same ``seed`` and ``as_of`` date give the same rows. IDs are unique by construction: the
twelve leading digits come from a bijection of the row index (an affine map modulo 10^11), so
no two rows collide and no set of IDs must be held in memory.

Section 39 members carry the Section 33 history they registered with (months contributed, the
last day of employment, the application date within six months of it), and about one Section
40 member in twenty has a Section 39 membership that ended before (``closed_memberships``).
These come from a random stream of the person's own (seeded by the ID), so the rows of the
main stream are as they were before this history existed. Which Section 40 members had such
a membership is decided by a hash of the ID (``_former_s39_drawn``), not by that stream: most
have none, and seeding a generator for each took a quarter of the seed's encoding.

Written for speed (13 million persons are generated in a few minutes) without changing a row
but for that choice: ``random.Random.randrange``/``choice`` are replaced by the same draws made
directly (``_below`` is ``Random._randbelow``), a person's own stream reseeds one C generator
instead of building a ``random.Random`` (seeding with an int is the same state), and the check
digit comes from tables. tests/unit/insured/test_demo_rows.py holds the rows to what they were.
"""

from __future__ import annotations

import random
from _random import Random as _Generator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from app.counter.ports import HISTORY_MONTHS
from app.domain.months import Month
from app.domain.rates import DEFAULT_RATE_HISTORY, RateTable

TITLES_MALE = ("นาย",)
TITLES_FEMALE = ("นาง", "นางสาว")
FIRST_MALE = (
    "สมชาย", "สมศักดิ์", "ประเสริฐ", "วิชัย", "สุรชัย", "อนุชา", "ธนากร", "กิตติ", "ณัฐพล",
    "ปิยะ", "วีระ", "ชัยวัฒน์", "ศักดิ์ชัย", "บุญมี", "สมพงษ์", "อภิชาติ", "จักรพันธ์",
    "ธีระ",
)  # fmt: skip
FIRST_FEMALE = (
    "สมหญิง", "สุนีย์", "มาลี", "วันเพ็ญ", "กาญจนา", "ศิริพร", "อรุณี", "นภา", "พรทิพย์",
    "จันทร์เพ็ญ", "รัตนา", "สุภาพร", "ปราณี", "ดวงใจ", "อัมพร", "ณัฐธิดา", "พิมพ์ชนก",
    "ลำดวน",
)  # fmt: skip
LAST_NAMES = (
    "ใจดี", "สุขสวัสดิ์", "ศรีสุข", "แก้วมณี", "ทองดี", "บุญมา", "รุ่งเรือง", "วงศ์สวัสดิ์",
    "จันทร์แก้ว", "พรหมมา", "สายทอง", "มั่นคง", "ศรีวงศ์", "อินทร์แก้ว", "คำแสน", "ชัยมงคล",
    "เพชรรัตน์", "นาคสุข", "ปานทอง", "สมบูรณ์", "ทองคำ", "มณีวงศ์", "ศักดิ์สิทธิ์",
    "เรืองศรี",
)  # fmt: skip
PERSON_COLUMNS = (
    "national_id",
    "title",
    "first_name",
    "last_name",
    "section",
    "status",
    "status_reason",
    "ended_month",
    "effective_date",
    "s40_option",
    "payment_method",
    "period_of_payment",
    "return_code",
    "birth_date",
    "last_paid_on",
    "last_paid_satang",
    "s33_months",
    "s33_employment_ended_on",
    "s39_applied_on",
    "s39_eligibility",
)
CLOSED_COLUMNS = (
    "national_id", "section", "coverage_start", "ended_month", "end_reason", "s33_months",
    "s33_employment_ended_on", "s39_applied_on", "s39_eligibility", "closed_on", "closed_by",
)  # fmt: skip
MONTH_COLUMNS = ("national_id", "section", "month", "amount_satang", "s40_option", "paid_on")
_MODULUS = 10**11
_MULTIPLIER = 7_368_787_397  # coprime to 10 (odd, not a multiple of 5): a bijection mod 10^11


@dataclass(frozen=True, slots=True)
class SeedPlan:
    persons: int
    seed: int
    as_of: date
    s39_share: float = 0.15  # 1.9 of 12.7 million (DOMAIN.md, 2022)
    former_s39_share: float = 0.05  # Section 40 members whose Section 39 membership ended


Row = tuple[object, ...]
Person = tuple[Row, list[Row]]  # the person and their paid months
#: A person as the generator draws them: the row, and their paid months as a run of month
#: indexes (section, option, first, last; none when first > last), expanded by the caller.
Drawn = tuple[Row, int, int | None, int, int]
Bits = Callable[[int], int]


def _below(bits: Bits, n: int) -> int:
    """``random.Random._randbelow(n)`` of the generator whose ``getrandbits`` is ``bits``:
    the same draws, so ``start + _below(bits, stop - start)`` is ``randrange(start, stop)`` and
    ``seq[_below(bits, len(seq))]`` is ``choice(seq)``."""
    k = n.bit_length()
    r = bits(k)
    while r >= n:
        r = bits(k)
    return r


def section33_history(
    nid: str, coverage_start: date, *, own: _Generator | None = None
) -> tuple[int, date, date]:
    """Months of Section 33 contributions, the last day of that work and the application date
    of a Section 39 membership beginning on ``coverage_start`` (eligible: 12 months or more,
    applied within the six months). ``own``: a generator to reseed (saves building one)."""
    if own is None:
        own = _Generator()
    own.seed(int(nid))  # what random.Random(int(nid)) does
    bits = own.getrandbits
    left = coverage_start - timedelta(days=1 + _below(bits, 20))
    months = 12 + _below(bits, 229)
    return months, left, left + timedelta(days=1 + _below(bits, 59))


def _weights(digits: int, first_weight: int) -> list[int]:
    """The weighted digit sum modulo 11 of every number of ``digits`` digits (leading zeros
    included), the first digit weighing ``first_weight`` and each next one less."""
    return [
        sum(int(d) * (first_weight - i) for i, d in enumerate(f"{n:0{digits}d}")) % 11
        for n in range(10**digits)
    ]


# The check digit (app/domain/national_id.py: weights 13..2 over the first 12 digits) of an ID
# whose first digit is followed by the eleven of ``body``: three slices of it looked up.
_HIGH, _MID, _LOW = _weights(3, 12), _weights(4, 9), _weights(4, 5)


def national_id_for(index: int, *, seed: int) -> str:
    """The unique valid national ID of row ``index`` for ``seed``."""
    body = (index * _MULTIPLIER + seed * 1_000_003 + 12_345) % _MODULUS
    first = (index + seed) % 8 + 1  # "12345678"[(index + seed) % 8]
    total = first * 13 + _HIGH[body // 100_000_000] + _MID[body // 10_000 % 10_000]
    total += _LOW[body % 10_000]
    return f"{first}{body:011d}{(11 - total % 11) % 10}"


CHUNK = 10_000  # persons per chunk; each chunk has its own random stream


def _chunk_rng(seed: int, chunk: int) -> random.Random:
    return random.Random((seed << 32) ^ (chunk * 0x9E3779B1))


class _Rows:
    """Draws persons; their paid months are runs of month indexes whose constant part (the
    tail of a month row) is cached."""

    def __init__(self, plan: SeedPlan) -> None:
        self.plan = plan
        self.rates = RateTable(DEFAULT_RATE_HISTORY)
        self.current = Month.of(plan.as_of).index
        self.own = _Generator()  # the person's own stream (section33_history, former_s39)
        self._tails: dict[tuple[int, int | None, int], tuple[object, ...]] = {}
        self._first_days: dict[int, date] = {}

    def tail(self, section: int, option: int | None, index: int) -> tuple[object, ...]:
        """A month row without its national ID: section, month, amount, option, paid on."""
        key = (section, option, index)
        tail = self._tails.get(key)
        if tail is None:
            month = Month.from_index(index)
            paid_on = min(month.plus(1).first_day + timedelta(days=9), self.plan.as_of)
            amount = self.rates.amount(section, option, month)
            tail = self._tails[key] = (section, month.first_day, amount, option, paid_on)
        return tail

    def months(
        self, nid: str, section: int, option: int | None, first: int, last: int
    ) -> list[Row]:
        tail = self.tail
        return [(nid, *tail(section, option, i)) for i in range(first, last + 1)]

    def _first_day(self, index: int) -> date:
        day = self._first_days.get(index)
        if day is None:
            day = self._first_days[index] = Month.from_index(index).first_day
        return day

    def _paid(
        self, section: int, option: int | None, first: int, last: int
    ) -> tuple[object, object]:
        """The last paid month's day of payment and amount (none paid: None, None)."""
        if first > last:
            return None, None
        tail = self.tail(section, option, last)
        return tail[4], tail[2]

    def person(self, index: int, rng: random.Random) -> Person:
        person, section, option, first, last = self.draw(index, rng)
        return person, self.months(str(person[0]), section, option, first, last)

    def draw(self, index: int, rng: random.Random) -> Drawn:
        nid = national_id_for(index, seed=self.plan.seed)
        bits = rng.getrandbits
        female = rng.random() < 0.5
        title = TITLES_FEMALE[_below(bits, len(TITLES_FEMALE))] if female else TITLES_MALE[0]
        names = FIRST_FEMALE if female else FIRST_MALE
        first = names[_below(bits, len(names))]
        last = LAST_NAMES[_below(bits, len(LAST_NAMES))]
        if rng.random() < self.plan.s39_share:
            return self._s39(nid, title, first, last, rng)
        return self._s40(nid, title, first, last, rng)

    def _s39(self, nid: str, title: str, first: str, last: str, rng: random.Random) -> Drawn:
        current = self.current
        start = current - 13 - _below(rng.getrandbits, 108)  # randrange(13, 121)
        history_from = max(start, current - HISTORY_MONTHS)
        kind = rng.random()
        status, reason, ended = "active", None, None
        if kind < 0.07:  # terminated: three consecutive unpaid months, long ago
            last_paid = current - 8
            status, reason = "terminated", "three_consecutive_unpaid"
            ended = self._first_day(last_paid + 1)
        elif kind < 0.12:  # one month from termination: two closed months unpaid
            last_paid = current - 3
        else:
            last_paid = current - 1
        coverage = self._first_day(start)
        s33 = section33_history(nid, coverage, own=self.own)
        paid_on, amount = self._paid(39, None, history_from, last_paid)
        person = (
            nid, title, first, last, 39, status, reason, ended, coverage, None, "counter",
            "monthly", "00", None, paid_on, amount, *s33, "eligible",
        )  # fmt: skip
        return person, 39, None, history_from, last_paid

    def _s40(self, nid: str, title: str, first: str, last: str, rng: random.Random) -> Drawn:
        current, bits = self.current, rng.getrandbits
        draw = rng.random()
        option = 1 if draw < 0.40 else 2 if draw < 0.75 else 3
        start = current - 2 - _below(bits, 59)  # randrange(2, 61)
        age = 15 + _below(bits, 51)  # randrange(15, 66)
        month = 1 + _below(bits, 12)  # randrange(1, 13), then the day: randrange(1, 29)
        birth = date(self.plan.as_of.year - age, month, 1 + _below(bits, 28))
        kind = rng.random()
        status = "active"
        if kind < 0.15:  # paid ahead
            last_paid = current + 1 + _below(bits, 6)  # randrange(1, 7)
        elif kind < 0.70:
            last_paid = current - 1
        elif kind < 0.95:
            last_paid = current - 4
        else:
            last_paid, status = current - 6, "inactive"
        paid_from = max(start, current - 3)
        paid_on, amount = self._paid(40, option, paid_from, last_paid)
        method = "counter" if kind < 0.70 else "bank" if kind < 0.90 else "online"
        person = (
            nid, title, first, last, 40, status, None, None, self._first_day(start), option,
            method, None, None, birth, paid_on, amount, None, None, None, None,
        )  # fmt: skip
        return person, 40, option, paid_from, last_paid


_MASK64 = 2**64 - 1


def _former_s39_drawn(nid: int, share: float) -> bool:
    """Whether the Section 40 member ``nid`` had a Section 39 membership that ended: true for
    a ``share`` of IDs. splitmix64's finaliser mixes the ID into 64 uniform bits (a seed's IDs
    are an affine map of the row number, a pattern that a bare multiplication would keep)."""
    z = (nid + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31) < share * 2.0**64


def former_s39(person: Row, *, share: float, own: _Generator | None = None) -> list[Row]:
    """Now and then (``_former_s39_drawn``), for a Section 40 member, the Section 39
    membership that ended before (a row of ``CLOSED_COLUMNS``), drawn from the person's own
    random stream (``own``: a generator to reseed)."""
    nid, section, s40_start = str(person[0]), person[4], person[8]
    if section != 40 or not isinstance(s40_start, date):
        return []
    number = int(nid)
    if not _former_s39_drawn(number, share):
        return []
    if own is None:
        own = _Generator()
    own.seed(number ^ 0x5339)  # what random.Random(int(nid) ^ 0x5339) does
    bits = own.getrandbits
    ended = Month.of(s40_start).minus(_below(bits, 6))  # randrange(0, 6)
    coverage = ended.minus(6 + _below(bits, 54)).first_day  # randrange(6, 60)
    months, left, applied = section33_history(nid, coverage, own=own)
    return [(nid, 39, coverage, ended.first_day, "three_consecutive_unpaid", months, left,
             applied, "eligible", s40_start, "seed")]  # fmt: skip


def drawn(plan: SeedPlan, rows: _Rows, start: int, stop: int) -> Iterator[Drawn]:
    """Persons ``start``..``stop`` of the plan as drawn, in order.

    Any range gives the same rows as the whole plan would for those indexes, so the load can be
    split between workers without changing the data.
    """
    stop = min(stop, plan.persons)
    index = start
    while index < stop:
        chunk = index // CHUNK
        rng = _chunk_rng(plan.seed, chunk)
        for _ in range(index - chunk * CHUNK):  # replay the stream up to ``index`` (unaligned)
            rows.draw(chunk * CHUNK, rng)
        end = min(stop, (chunk + 1) * CHUNK)
        draw = rows.draw
        for i in range(index, end):
            yield draw(i, rng)
        index = end


def generate(plan: SeedPlan, *, start: int = 0, stop: int | None = None) -> Iterator[Person]:
    """Persons ``start``..``stop`` of the plan with their paid months, in order."""
    rows = _Rows(plan)
    months = rows.months
    for person, section, option, first, last in drawn(
        plan, rows, start, plan.persons if stop is None else stop
    ):
        yield person, months(str(person[0]), section, option, first, last)
