"""Deterministic synthetic insured persons and payment histories, loaded with COPY.

The same ``seed`` and ``as_of`` date give the same rows. IDs are unique by construction: the
twelve leading digits come from a bijection of the row index (an affine map modulo 10^11), so
no two rows collide and no set of IDs must be held in memory.

Section 39 members carry the Section 33 history they registered with (months contributed, the
last day of employment, the application date within six months of it), and about one Section
40 member in twenty has a Section 39 membership that ended before (``closed_memberships``).
These come from a random stream of the person's own (seeded by the ID), so the rows of the
main stream are as they were before this history existed.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg

from app.counter.ports import HISTORY_MONTHS
from app.domain.months import Month
from app.domain.national_id import check_digit
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


def section33_history(nid: str, coverage_start: date) -> tuple[int, date, date]:
    """Months of Section 33 contributions, the last day of that work and the application date
    of a Section 39 membership beginning on ``coverage_start`` (eligible: 12 months or more,
    applied within the six months)."""
    rng = random.Random(int(nid))
    left = coverage_start - timedelta(days=1 + rng.randrange(0, 20))
    return rng.randrange(12, 241), left, left + timedelta(days=rng.randrange(1, 60))


def national_id_for(index: int, *, seed: int) -> str:
    """The unique valid national ID of row ``index`` for ``seed``."""
    body = (index * _MULTIPLIER + seed * 1_000_003 + 12_345) % _MODULUS
    first = "12345678"[(index + seed) % 8]
    head = f"{first}{body:011d}"
    return head + check_digit(head)


CHUNK = 10_000  # persons per chunk; each chunk has its own random stream


def _chunk_rng(seed: int, chunk: int) -> random.Random:
    return random.Random((seed << 32) ^ (chunk * 0x9E3779B1))


class _Rows:
    """Builds persons and their paid months; the constant part of month rows is cached."""

    def __init__(self, plan: SeedPlan) -> None:
        self.plan = plan
        self.rates = RateTable(DEFAULT_RATE_HISTORY)
        self.current = Month.of(plan.as_of).index
        self._tails: dict[tuple[int, int | None, int], tuple[object, ...]] = {}

    def _tail(self, section: int, option: int | None, index: int) -> tuple[object, ...]:
        key = (section, option, index)
        tail = self._tails.get(key)
        if tail is None:
            month = Month.from_index(index)
            paid_on = min(month.plus(1).first_day + timedelta(days=9), self.plan.as_of)
            amount = self.rates.amount(section, option, month)
            tail = self._tails[key] = (section, month.first_day, amount, option, paid_on)
        return tail

    def _months(
        self, nid: str, section: int, option: int | None, first: int, last: int
    ) -> list[tuple[object, ...]]:
        tail = self._tail
        return [(nid, *tail(section, option, i)) for i in range(first, last + 1)]

    def person(self, index: int, rng: random.Random) -> Person:
        nid = national_id_for(index, seed=self.plan.seed)
        draw = rng.random()
        female = draw < 0.5
        title = rng.choice(TITLES_FEMALE) if female else TITLES_MALE[0]
        first = rng.choice(FIRST_FEMALE if female else FIRST_MALE)
        last = rng.choice(LAST_NAMES)
        if rng.random() < self.plan.s39_share:
            return self._s39(nid, title, first, last, rng)
        return self._s40(nid, title, first, last, rng)

    def _s39(self, nid: str, title: str, first: str, last: str, rng: random.Random) -> Person:
        current = self.current
        start = current - rng.randrange(13, 121)
        history_from = max(start, current - HISTORY_MONTHS)
        kind = rng.random()
        status, reason, ended = "active", None, None
        if kind < 0.07:  # terminated: three consecutive unpaid months, long ago
            last_paid = current - 8
            status, reason = "terminated", "three_consecutive_unpaid"
            ended = Month.from_index(last_paid + 1).first_day
        elif kind < 0.12:  # one month from termination: two closed months unpaid
            last_paid = current - 3
        else:
            last_paid = current - 1
        months = self._months(nid, 39, None, history_from, last_paid)
        coverage = Month.from_index(start).first_day
        s33 = section33_history(nid, coverage)
        person = (
            nid, title, first, last, 39, status, reason, ended, coverage, None, "counter",
            "monthly", "00", None, months[-1][5] if months else None,
            months[-1][3] if months else None, *s33, "eligible",
        )  # fmt: skip
        return person, months

    def _s40(self, nid: str, title: str, first: str, last: str, rng: random.Random) -> Person:
        current = self.current
        draw = rng.random()
        option = 1 if draw < 0.40 else 2 if draw < 0.75 else 3
        start = current - rng.randrange(2, 61)
        age = rng.randrange(15, 66)
        birth = date(self.plan.as_of.year - age, rng.randrange(1, 13), rng.randrange(1, 29))
        kind = rng.random()
        status = "active"
        if kind < 0.15:  # paid ahead
            last_paid = current + rng.randrange(1, 7)
        elif kind < 0.70:
            last_paid = current - 1
        elif kind < 0.95:
            last_paid = current - 4
        else:
            last_paid, status = current - 6, "inactive"
        months = self._months(nid, 40, option, max(start, current - 3), last_paid)
        method = "counter" if kind < 0.70 else "bank" if kind < 0.90 else "online"
        person = (
            nid, title, first, last, 40, status, None, None, Month.from_index(start).first_day,
            option, method, None, None, birth,
            months[-1][5] if months else None, months[-1][3] if months else None,
            None, None, None, None,
        )  # fmt: skip
        return person, months


def former_s39(person: Row, *, share: float) -> list[Row]:
    """Now and then, for a Section 40 member, the Section 39 membership that ended before
    (a row of ``CLOSED_COLUMNS``); from the person's own random stream."""
    nid, section, s40_start = str(person[0]), person[4], person[8]
    own = random.Random(int(nid) ^ 0x5339)
    if section != 40 or not isinstance(s40_start, date) or own.random() >= share:
        return []
    ended = Month.of(s40_start).minus(own.randrange(0, 6))
    coverage = ended.minus(own.randrange(6, 60)).first_day
    months, left, applied = section33_history(nid, coverage)
    return [(nid, 39, coverage, ended.first_day, "three_consecutive_unpaid", months, left,
             applied, "eligible", s40_start, "seed")]  # fmt: skip


def generate(plan: SeedPlan, *, start: int = 0, stop: int | None = None) -> Iterator[Person]:
    """Persons ``start``..``stop`` of the plan with their paid months, in order.

    Any range gives the same rows as the whole plan would for those indexes, so the load can be
    split between workers without changing the data.
    """
    rows = _Rows(plan)
    stop = plan.persons if stop is None else min(stop, plan.persons)
    index = start
    while index < stop:
        chunk = index // CHUNK
        rng = _chunk_rng(plan.seed, chunk)
        skip = index - chunk * CHUNK
        for _ in range(skip):  # replay the stream up to ``index`` (only for unaligned starts)
            rows.person(chunk * CHUNK, rng)
        end = min(stop, (chunk + 1) * CHUNK)
        for i in range(index, end):
            yield rows.person(i, rng)
        index = end


TASK_PERSONS = 250_000  # persons per worker task


async def load(
    dsn: str,
    plan: SeedPlan,
    *,
    workers: int = 1,
    progress: Callable[[int], None] = lambda _n: None,
) -> int:
    """COPY the plan's persons and paid months into the database at ``dsn``.

    Work is split into tasks of ``TASK_PERSONS`` persons run by ``workers`` processes, each on
    its own connection; the rows do not depend on the split. Returns the persons inserted.
    """
    conn = await asyncpg.connect(dsn)
    try:
        direct = bool(await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM insured_persons)"))
    finally:
        await conn.close()
    ranges = [
        (a, min(a + TASK_PERSONS, plan.persons)) for a in range(0, plan.persons, TASK_PERSONS)
    ]
    inserted = 0
    if workers <= 1 or len(ranges) == 1:
        for a, b in ranges:
            inserted += await _load_range(dsn, plan, a, b, direct=direct)
            progress(b - a)
    else:
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [
                loop.run_in_executor(pool, _load_range_sync, dsn, plan, a, b, direct)
                for a, b in ranges
            ]
            for done in asyncio.as_completed(futures):
                count, persons = await done
                inserted += count
                progress(persons)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE insured_persons")
        await conn.execute("ANALYZE paid_months")
    finally:
        await conn.close()
    return inserted


def _load_range_sync(
    dsn: str, plan: SeedPlan, start: int, stop: int, direct: bool
) -> tuple[int, int]:
    return asyncio.run(_load_range(dsn, plan, start, stop, direct=direct)), stop - start


async def _load_range(dsn: str, plan: SeedPlan, start: int, stop: int, *, direct: bool) -> int:
    # In key order: the rows of one COPY then go into the primary-key indexes left to right,
    # each index page visited once, instead of at random (the IDs scramble the row order).
    generated = sorted(generate(plan, start=start, stop=stop), key=lambda row: str(row[0][0]))
    people: list[Row] = []
    months: list[Row] = []
    closed: list[Row] = []
    for person, paid in generated:
        people.append(person)
        months.extend(paid)
        closed.extend(former_s39(person, share=plan.former_s39_share))
    conn = await asyncpg.connect(dsn)
    try:
        return await _flush(conn, people, months, closed, direct=direct)
    finally:
        await conn.close()


async def _flush(
    conn: asyncpg.Connection, people: list[Row], months: list[Row], closed: list[Row], *,
    direct: bool,
) -> int:  # fmt: skip
    async with conn.transaction():
        if direct:
            # Rows are consistent by construction; skip per-row foreign-key triggers when the
            # role may (the local pair's owner may set it). Primary keys are still enforced.
            with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.copy_records_to_table(
                "insured_persons", records=people, columns=PERSON_COLUMNS
            )
            await conn.copy_records_to_table("paid_months", records=months, columns=MONTH_COLUMNS)
            await conn.copy_records_to_table(
                "closed_memberships", records=closed, columns=CLOSED_COLUMNS
            )
            return len(people)
        # Into a database that already has persons: skip the ones that exist.
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS seed_persons (LIKE insured_persons INCLUDING DEFAULTS)"
            " ON COMMIT DELETE ROWS;"
            "CREATE TEMP TABLE IF NOT EXISTS seed_months (LIKE paid_months) ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table("seed_persons", records=people, columns=PERSON_COLUMNS)
        await conn.copy_records_to_table("seed_months", records=months, columns=MONTH_COLUMNS)
        columns = ", ".join(PERSON_COLUMNS)
        status = await conn.execute(
            f"INSERT INTO insured_persons ({columns}) SELECT {columns} FROM seed_persons "
            "ON CONFLICT (national_id) DO NOTHING"
        )
        mcols = ", ".join(MONTH_COLUMNS)
        await conn.execute(
            f"INSERT INTO paid_months ({mcols}) SELECT {mcols} FROM seed_months "
            "ON CONFLICT DO NOTHING"
        )
        # The ended memberships of persons not on record before (seeding again adds none).
        ccols = ", ".join(CLOSED_COLUMNS)
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS seed_closed AS SELECT {ccols}"
            " FROM closed_memberships WITH NO DATA"
        )
        await conn.execute("TRUNCATE seed_closed")
        await conn.copy_records_to_table("seed_closed", records=closed, columns=CLOSED_COLUMNS)
        await conn.execute(
            f"INSERT INTO closed_memberships ({ccols}) SELECT {ccols} FROM seed_closed c"
            " WHERE NOT EXISTS (SELECT 1 FROM closed_memberships x"
            " WHERE x.national_id = c.national_id)"
        )
        return int(status.split()[-1])
