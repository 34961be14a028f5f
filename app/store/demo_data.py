"""Deterministic synthetic insured persons and payment histories, loaded with COPY.

The same ``seed`` and ``as_of`` date give the same rows. IDs are unique by construction: the
twelve leading digits come from a bijection of the row index (an affine map modulo 10^11), so
no two rows collide and no set of IDs must be held in memory.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg

from app.domain.months import Month
from app.domain.national_id import check_digit
from app.domain.rates import DEFAULT_RATE_HISTORY, RateTable
from app.service.ports import HISTORY_MONTHS

TITLES_MALE = ("นาย",)
TITLES_FEMALE = ("นาง", "นางสาว")
FIRST_MALE = (
    "สมชาย",
    "สมศักดิ์",
    "ประเสริฐ",
    "วิชัย",
    "สุรชัย",
    "อนุชา",
    "ธนากร",
    "กิตติ",
    "ณัฐพล",
    "ปิยะ",
    "วีระ",
    "ชัยวัฒน์",
    "ศักดิ์ชัย",
    "บุญมี",
    "สมพงษ์",
    "อภิชาติ",
    "จักรพันธ์",
    "ธีระ",
)
FIRST_FEMALE = (
    "สมหญิง",
    "สุนีย์",
    "มาลี",
    "วันเพ็ญ",
    "กาญจนา",
    "ศิริพร",
    "อรุณี",
    "นภา",
    "พรทิพย์",
    "จันทร์เพ็ญ",
    "รัตนา",
    "สุภาพร",
    "ปราณี",
    "ดวงใจ",
    "อัมพร",
    "ณัฐธิดา",
    "พิมพ์ชนก",
    "ลำดวน",
)
LAST_NAMES = (
    "ใจดี",
    "สุขสวัสดิ์",
    "ศรีสุข",
    "แก้วมณี",
    "ทองดี",
    "บุญมา",
    "รุ่งเรือง",
    "วงศ์สวัสดิ์",
    "จันทร์แก้ว",
    "พรหมมา",
    "สายทอง",
    "มั่นคง",
    "ศรีวงศ์",
    "อินทร์แก้ว",
    "คำแสน",
    "ชัยมงคล",
    "เพชรรัตน์",
    "นาคสุข",
    "ปานทอง",
    "สมบูรณ์",
    "ทองคำ",
    "มณีวงศ์",
    "ศักดิ์สิทธิ์",
    "เรืองศรี",
)
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
)
MONTH_COLUMNS = ("national_id", "section", "month", "amount_satang", "s40_option", "paid_on")
_MODULUS = 10**11
_MULTIPLIER = 7_368_787_397  # coprime to 10 (odd, not a multiple of 5): a bijection mod 10^11


@dataclass(frozen=True, slots=True)
class SeedPlan:
    persons: int
    seed: int
    as_of: date
    s39_share: float = 0.15  # 1.9 of 12.7 million (DOMAIN.md, 2022)


def national_id_for(index: int, *, seed: int) -> str:
    """The unique valid national ID of row ``index`` for ``seed``."""
    body = (index * _MULTIPLIER + seed * 1_000_003 + 12_345) % _MODULUS
    first = "12345678"[(index + seed) % 8]
    head = f"{first}{body:011d}"
    return head + check_digit(head)


class _Rows:
    """Builds the rows of one person; rates are cached per (section, option, month)."""

    def __init__(self, plan: SeedPlan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.rates = RateTable(DEFAULT_RATE_HISTORY)
        self.current = Month.of(plan.as_of)
        self._amounts: dict[tuple[int, int | None, Month], int] = {}

    def amount(self, section: int, option: int | None, month: Month) -> int:
        key = (section, option, month)
        if key not in self._amounts:
            self._amounts[key] = self.rates.amount(section, option, month)
        return self._amounts[key]

    def person(self, index: int) -> tuple[tuple[object, ...], list[tuple[object, ...]]]:
        rng = self.rng
        nid = national_id_for(index, seed=self.plan.seed)
        female = rng.random() < 0.5
        title = rng.choice(TITLES_FEMALE if female else TITLES_MALE)
        first = rng.choice(FIRST_FEMALE if female else FIRST_MALE)
        last = rng.choice(LAST_NAMES)
        if rng.random() < self.plan.s39_share:
            return self._s39(nid, title, first, last)
        return self._s40(nid, title, first, last)

    def _months(
        self, nid: str, section: int, option: int | None, first: Month, last: Month
    ) -> list[tuple[object, ...]]:
        rows: list[tuple[object, ...]] = []
        month = first
        while month <= last:
            paid_on = min(
                month.plus(1).first_day + timedelta(days=self.rng.randrange(14)), self.plan.as_of
            )
            rows.append(
                (
                    nid,
                    section,
                    month.first_day,
                    self.amount(section, option, month),
                    option,
                    paid_on,
                )
            )
            month = month.plus(1)
        return rows

    def _s39(
        self, nid: str, title: str, first: str, last: str
    ) -> tuple[tuple[object, ...], list[tuple[object, ...]]]:
        rng, current = self.rng, self.current
        start = current.minus(rng.randrange(13, 121))
        history_from = max(start, current.minus(HISTORY_MONTHS))
        kind = rng.random()
        status, reason, ended = "active", None, None
        if kind < 0.07:  # terminated: three consecutive unpaid months, long ago
            last_paid = current.minus(8)
            status, reason, ended = "terminated", "three_consecutive_unpaid", last_paid.plus(1)
        elif kind < 0.12:  # one month from termination: two closed months unpaid
            last_paid = current.minus(3)
        else:
            last_paid = current.minus(1)
        months = self._months(nid, 39, None, history_from, last_paid)
        person = (
            nid,
            title,
            first,
            last,
            39,
            status,
            reason,
            ended.first_day if ended else None,
            start.first_day,
            None,
            "counter",
            "monthly",
            "00",
            None,
            months[-1][5] if months else None,
            months[-1][3] if months else None,
        )
        return person, months

    def _s40(
        self, nid: str, title: str, first: str, last: str
    ) -> tuple[tuple[object, ...], list[tuple[object, ...]]]:
        rng, current = self.rng, self.current
        option = rng.choices((1, 2, 3), weights=(40, 35, 25))[0]
        start = current.minus(rng.randrange(2, 61))
        age = rng.randrange(15, 66)
        birth = date(self.plan.as_of.year - age, rng.randrange(1, 13), rng.randrange(1, 29))
        kind = rng.random()
        status = "active"
        if kind < 0.15:  # paid ahead
            last_paid = current.plus(rng.randrange(1, 7))
        elif kind < 0.70:
            last_paid = current.minus(1)
        elif kind < 0.95:
            last_paid = current.minus(4)
        else:
            last_paid, status = current.minus(6), "inactive"
        first_paid = max(start, current.minus(6))
        months = self._months(nid, 40, option, first_paid, last_paid)
        method = rng.choices(("counter", "bank", "online"), weights=(70, 20, 10))[0]
        person = (
            nid,
            title,
            first,
            last,
            40,
            status,
            None,
            None,
            start.first_day,
            option,
            method,
            None,
            None,
            birth,
            months[-1][5] if months else None,
            months[-1][3] if months else None,
        )
        return person, months


def generate(plan: SeedPlan) -> Iterator[tuple[tuple[object, ...], list[tuple[object, ...]]]]:
    """Every person of the plan with its paid months, in order."""
    rows = _Rows(plan)
    for index in range(plan.persons):
        yield rows.person(index)


async def load(
    conn: asyncpg.Connection,
    plan: SeedPlan,
    *,
    chunk: int = 50_000,
    progress: Callable[[int], None] = lambda _n: None,
) -> int:
    """COPY the plan's persons and months through ``conn``; returns persons inserted."""
    empty = await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM insured_persons)")
    inserted = 0
    people: list[tuple[object, ...]] = []
    months: list[tuple[object, ...]] = []
    for person, paid in generate(plan):
        people.append(person)
        months.extend(paid)
        if len(people) >= chunk:
            inserted += await _flush(conn, people, months, direct=empty)
            progress(len(people))
            people, months = [], []
    if people:
        inserted += await _flush(conn, people, months, direct=empty)
        progress(len(people))
    await conn.execute("ANALYZE insured_persons")
    await conn.execute("ANALYZE paid_months")
    return inserted


async def _flush(
    conn: asyncpg.Connection,
    people: list[tuple[object, ...]],
    months: list[tuple[object, ...]],
    *,
    direct: bool,
) -> int:
    async with conn.transaction():
        if direct:
            await conn.copy_records_to_table(
                "insured_persons", records=people, columns=PERSON_COLUMNS
            )
            await conn.copy_records_to_table("paid_months", records=months, columns=MONTH_COLUMNS)
            return len(people)
        # Into a database that already has persons: skip the ones that exist.
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS seed_persons (LIKE insured_persons)"
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
        return int(status.split()[-1])
