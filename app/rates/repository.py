"""The rate table and the paid-month rows a rate covers, in SQL.

Implements ``app.rates.service.RatesStore``. The paid months under a new rate are read
with a server-side cursor in one read-only snapshot, a chunk at a time, so the caller can
stream the overpayments of a cut over millions of months.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from typing import Final

import asyncpg

from app.db.failures import translated
from app.domain.months import Month
from app.domain.overpayment import PaidMonth, cover_ended
from app.domain.rates import Rate
from app.rates.records import RateRecord
from app.refunds.repository import covers_of

_COLUMNS = (
    "id, section, s40_option, first_month, last_month, amount_satang, government_satang, note,"
    " created_at"
)
# The person's memberships come with each month (as the refund listing reads them): a month
# that no membership of its section covers any more is owed back whole, not for a cut.
_PAID_SQL = """
SELECT m.national_id, m.month, m.amount_satang,
       coalesce(m.surcharge_satang, 0) AS surcharge_satang,
       p.section AS latest_section, p.effective_date,
       CASE WHEN p.status = 'terminated' THEN p.ended_month END AS latest_end, cm.closed
  FROM paid_months m
  JOIN insured_persons p ON p.national_id = m.national_id
  LEFT JOIN LATERAL (
        SELECT json_agg(json_build_array(x.section, x.coverage_start, x.ended_month)) AS closed
          FROM closed_memberships x WHERE x.national_id = m.national_id) cm ON true
 WHERE m.section = $1 AND m.s40_option IS NOT DISTINCT FROM $2
   AND m.month >= $3 AND ($4::date IS NULL OR m.month <= $4)
   AND m.amount_satang - coalesce(m.surcharge_satang, 0) > $5
 ORDER BY m.month, m.national_id
"""


#: The rate table's fingerprint as the store holds it, one value (``lines_digest`` of
#: ``app.domain.rates`` computes the same from a table read): a confirm reads it under its
#: person's lock, an inquiry with its member (``app.counter``), to tell a stale table.
RATE_DIGEST_SQL: Final = """(SELECT encode(sha256(convert_to(coalesce(string_agg(
    concat_ws('|', section, coalesce(s40_option::text, ''), to_char(first_month, 'YYYY-MM-DD'),
              coalesce(to_char(last_month, 'YYYY-MM-DD'), ''), amount_satang, government_satang),
    ',' ORDER BY id), ''), 'UTF8')), 'hex') FROM contribution_rates)"""

#: How long adding a rate line waits for the transactions open when it committed.
SETTLE_S: Final = 5.0
_STILL_OPEN = """
SELECT count(*) FROM pg_snapshot_xip($1::text::pg_snapshot) AS x
 WHERE pg_xact_status(x) = 'in progress'
"""


def _rate(row: asyncpg.Record) -> Rate:
    return Rate(
        section=row["section"],
        option=row["s40_option"],
        first_month=Month.of(row["first_month"]),
        last_month=Month.of(row["last_month"]) if row["last_month"] else None,
        amount_satang=row["amount_satang"],
        government_satang=row["government_satang"],
    )


def _record(row: asyncpg.Record) -> RateRecord:
    return RateRecord(id=row["id"], rate=_rate(row), note=row["note"], created_at=row["created_at"])


async def fetch_rates(db: asyncpg.Pool | asyncpg.Connection) -> list[Rate]:
    """Every contribution rate, in the order they were decided (later ones win ties), from a
    pool or on a connection (a confirm's transaction)."""
    async with translated("primary"):
        rows = await db.fetch(
            "SELECT section, s40_option, first_month, last_month, amount_satang,"
            " government_satang FROM contribution_rates ORDER BY id"
        )
    return [_rate(row) for row in rows]


def _paid(row: asyncpg.Record, section: int, option: int | None) -> PaidMonth:
    return PaidMonth(
        national_id=row["national_id"],
        section=section,
        option=option if section == 40 else None,
        month=Month.of(row["month"]),
        amount_satang=row["amount_satang"],
        surcharge_satang=row["surcharge_satang"],
    )


async def _settled(conn: asyncpg.Connection) -> None:
    """Wait until the transactions open now have ended, or ``SETTLE_S`` has passed."""
    snapshot = await conn.fetchval("SELECT pg_current_snapshot()::text")
    deadline = time.monotonic() + SETTLE_S
    # Polled: the server tells no one when another session's transaction ends.
    while await conn.fetchval(_STILL_OPEN, snapshot) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


class RatesRepository:
    """The RatesStore of the service layer, on the primary."""

    def __init__(self, *, primary: Callable[[], asyncpg.Pool]) -> None:
        self._primary = primary

    async def list_rates(self, *, section: int | None) -> list[RateRecord]:
        async with translated("primary"):
            rows = await self._primary().fetch(
                f"SELECT {_COLUMNS} FROM contribution_rates"
                " WHERE $1::smallint IS NULL OR section = $1 ORDER BY id",
                section,
            )
        return [_record(row) for row in rows]

    async def insert_rate(self, rate: Rate, *, note: str | None) -> RateRecord:
        """Add ``rate``; return once the transactions open when it committed have ended (up
        to ``SETTLE_S``). A confirm that read the table's fingerprint before the line committed
        may still commit a payment priced without it; once those have ended, what is listed
        of the paid months (the months a cut overpays) holds their payments."""
        async with translated("primary"), self._primary().acquire() as conn:
            row = await conn.fetchrow(
                "INSERT INTO contribution_rates (section, s40_option, first_month, last_month,"
                " amount_satang, government_satang, note) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                f" RETURNING {_COLUMNS}",
                rate.section,
                rate.option,
                rate.first_month.first_day,
                rate.last_month.first_day if rate.last_month else None,
                rate.amount_satang,
                rate.government_satang,
                note,
            )
            await _settled(conn)
        assert row is not None
        return _record(row)

    async def paid_months(
        self,
        *,
        section: int,
        option: int | None,
        first: Month,
        last: Month | None,
        above_satang: int,
        chunk: int,
    ) -> AsyncGenerator[list[PaidMonth], None]:
        async with (
            translated("primary"),
            self._primary().acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            cursor = await conn.cursor(
                _PAID_SQL,
                section,
                option if section == 40 else None,
                first.first_day,
                last.first_day if last else None,
                above_satang,
            )
            while rows := await cursor.fetch(chunk):
                paid = [(_paid(row, section, option), row) for row in rows]
                yield [item for item, row in paid if not cover_ended(item, covers_of(row))]
