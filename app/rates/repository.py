"""The rate table and the paid-month rows a rate covers, in SQL.

Implements ``app.rates.service.RatesStore``. The paid months under a new rate are read
with a server-side cursor in one read-only snapshot, a chunk at a time, so the caller can
stream the overpayments of a cut over millions of months.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Final

import asyncpg

from app.db.failures import translated
from app.db.sync_commit import PAYMENT_APPLICATION
from app.domain.months import Month
from app.domain.overpayment import PaidMonth, cover_ended
from app.domain.rates import Rate
from app.rates.records import RateRecord
from app.refunds.repository import covers_join, covers_of

_COLUMNS = (
    "id, section, s40_option, first_month, last_month, amount_satang, government_satang, note,"
    " created_at"
)
log = logging.getLogger(__name__)

# The person's memberships come with each month (as the refund listing reads them): a month
# that no membership of its section covers any more is owed back whole, not for a cut.
_PAID_SQL = f"""
SELECT m.national_id, m.month, m.amount_satang,
       coalesce(m.surcharge_satang, 0) AS surcharge_satang,{covers_join("paid_months", "m")}
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

#: How long adding a rate line waits, at least, for the payments open at its commit: the time a
#: counter waits for an answer (DOMAIN.md: about 30 s), so that a payment of any instance,
#: whatever its own commit wait, has ended or been given up by its counter.
SETTLE_S: Final = 30.0

# The payment transactions open now (app.db.sync_commit names them), each by its session and
# transaction id: those that may have read the rate table's fingerprint already.
_OPEN_PAYMENTS = """
SELECT coalesce(array_agg(pid), '{}') AS pids, coalesce(array_agg(backend_xid::text), '{}') AS xids
  FROM pg_stat_activity
 WHERE datname = current_database() AND application_name = $1 AND backend_xid IS NOT NULL
   AND pid <> pg_backend_pid()
"""
_STILL_OPEN = """
SELECT count(*) FROM pg_stat_activity a
  JOIN unnest($1::int[], $2::text[]) AS w(pid, xid) ON a.pid = w.pid AND a.backend_xid::text = w.xid
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


class RatesRepository:
    """The RatesStore of the service layer, on the primary."""

    def __init__(self, *, primary: Callable[[], asyncpg.Pool], settle_s: float = SETTLE_S) -> None:
        """``settle_s``: how long adding a rate line waits for the payments open at its commit
        (the composition root: at least ``SETTLE_S``, more where this instance's payments may
        wait longer for their commit)."""
        self._primary = primary
        self._settle_s = settle_s

    async def _settled(self) -> None:
        """Wait until the payment transactions open now have ended, or ``settle_s`` has
        passed, on a connection of its own. A failure of that connection (terminated, a
        restart of the primary, its release) does not end the wait: it goes on on another until
        the deadline; past it, the failure is logged, never raised: the line has committed."""
        deadline = time.monotonic() + self._settle_s
        watched: asyncpg.Record | None = None  # the payments open when the line committed
        while True:
            try:
                left = max(deadline - time.monotonic(), 0.0)
                async with asyncio.timeout(left + 1.0), self._primary().acquire() as conn:
                    if watched is None:
                        watched = await conn.fetchrow(_OPEN_PAYMENTS, PAYMENT_APPLICATION)
                    assert watched is not None
                    # Polled: the server tells no one when another session's transaction ends.
                    while await conn.fetchval(_STILL_OPEN, watched["pids"], watched["xids"]):
                        if time.monotonic() >= deadline:
                            log.warning(
                                "a rate line was added while payments stayed open %.1f s; its"
                                " answer may miss what they pay", self._settle_s,
                            )  # fmt: skip
                            return
                        await asyncio.sleep(0.01)
                    return
            except Exception as exc:
                if time.monotonic() >= deadline:
                    log.warning("a rate line was added; waiting for open payments failed: %r", exc)
                    return
                await asyncio.sleep(0.05)

    async def list_rates(self, *, section: int | None) -> list[RateRecord]:
        async with translated("primary"):
            rows = await self._primary().fetch(
                f"SELECT {_COLUMNS} FROM contribution_rates"
                " WHERE $1::smallint IS NULL OR section = $1 ORDER BY id",
                section,
            )
        return [_record(row) for row in rows]

    async def insert_rate(self, rate: Rate, *, note: str | None) -> RateRecord:
        """Add ``rate``; return once the payment transactions open when it committed have
        ended (up to ``settle_s``). A confirm that read the table's fingerprint before the line
        committed may still commit a payment priced without it; once those have ended, what
        is listed of the paid months (the months a cut overpays) holds their payments. The
        line is added once it has committed, whatever becomes of the wait."""
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
        assert row is not None
        await self._settled()
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
