"""Paid months above today's rates, for refund listings, streamed from the primary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import asyncpg

from app.db.failures import translated
from app.domain.months import Month
from app.domain.overpayment import PaidMonth
from app.refunds.records import DueAmount, PaidRow

# The due table travels as four arrays; S39 rows match option 0 whatever option they carry.
_SQL = """
SELECT m.national_id, m.section, m.s40_option, m.month, m.amount_satang,
       p.title, p.first_name, p.last_name
  FROM paid_months m
  JOIN unnest($3::smallint[], $4::smallint[], $5::date[], $6::integer[]) AS d(section, option,
       month, due)
    ON d.section = m.section AND d.month = m.month
   AND d.option = CASE WHEN m.section = 39 THEN 0 ELSE m.s40_option END
  JOIN insured_persons p ON p.national_id = m.national_id
 WHERE m.month BETWEEN $1 AND $2 AND m.amount_satang > d.due
 ORDER BY m.national_id, m.section, m.month
"""


class RefundsRepository:
    """The PaidMonthSource of the service layer, on the primary."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], *, timeout_s: float = 1800.0) -> None:
        self._pool = pool
        self._timeout = timeout_s

    async def paid_above(
        self, first: Month, last: Month, due: Sequence[DueAmount]
    ) -> AsyncIterator[PaidRow]:
        args = (
            first.first_day,
            last.first_day,
            [d.section for d in due],
            [d.option or 0 for d in due],
            [d.month.first_day for d in due],
            [d.due_satang for d in due],
        )
        months: dict[object, Month] = {}
        async with translated("primary"), self._pool().acquire() as conn, conn.transaction():
            async for r in conn.cursor(_SQL, *args, prefetch=10_000, timeout=self._timeout):
                day = r["month"]
                month = months.get(day) or months.setdefault(day, Month(day.year, day.month))
                yield PaidRow(
                    PaidMonth(
                        r["national_id"], r["section"], r["s40_option"], month, r["amount_satang"]
                    ),
                    r["title"],
                    r["first_name"],
                    r["last_name"],
                )
