"""Paid months that may be owed a refund, streamed from the primary.

Two kinds of candidate, each month once: months paid above today's rate for them (the due
table travels as four arrays; Section 39 rows match option 0), and months paid at or after the
end of a membership of their section. Endings are read where they are recorded: a membership
closed when the next one was registered (``closed_memberships.ended_month``), and the latest
membership when an event ended it (``insured_persons`` recorded ``terminated`` with its month:
an officer's termination, a return to Section 33). Each row carries the person's memberships;
``app.domain.overpayment.refunds_owed`` decides what is owed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date

import asyncpg

from app.db.failures import translated
from app.domain.months import Month
from app.domain.overpayment import Cover, PaidMonth
from app.refunds.records import DueAmount, PaidRow


def covers_join(source: str, alias: str) -> str:
    """The end of a select list and its FROM: the columns ``covers_of`` reads, for each row of
    ``source`` (as ``alias``, with a ``national_id``), and the joins that bring them: the
    person's latest membership and those closed before it."""
    return f"""
       p.section AS latest_section, p.effective_date,
       CASE WHEN p.status = 'terminated' THEN p.ended_month END AS latest_end, cm.closed
  FROM {source} {alias}
  JOIN insured_persons p ON p.national_id = {alias}.national_id
  LEFT JOIN LATERAL (
        SELECT json_agg(json_build_array(x.section, x.coverage_start, x.ended_month)) AS closed
          FROM closed_memberships x WHERE x.national_id = {alias}.national_id) cm ON true"""


_SQL = f"""
WITH ended AS (
    SELECT national_id, section, min(ended_month) AS first_end
      FROM (SELECT national_id, section, ended_month FROM closed_memberships
             WHERE ended_month <= $2
            UNION ALL
            SELECT national_id, section, ended_month FROM insured_persons  -- by its index
             WHERE section IN (39, 40) AND status = 'terminated' AND ended_month <= $2) AS e
     GROUP BY national_id, section
), candidates AS (
    SELECT m.national_id, m.section, m.s40_option, m.month, m.amount_satang,
           coalesce(m.surcharge_satang, 0) AS surcharge_satang
      FROM paid_months m
      JOIN unnest($3::smallint[], $4::smallint[], $5::date[], $6::integer[])
           AS d(section, option, month, due)
        ON d.section = m.section AND d.month = m.month
       AND d.option = CASE WHEN m.section = 39 THEN 0 ELSE m.s40_option END
     WHERE m.month BETWEEN $1 AND $2 AND m.amount_satang - coalesce(m.surcharge_satang, 0) > d.due
    UNION
    SELECT m.national_id, m.section, m.s40_option, m.month, m.amount_satang,
           coalesce(m.surcharge_satang, 0) AS surcharge_satang
      FROM ended e
      JOIN paid_months m
        ON m.national_id = e.national_id AND m.section = e.section
       AND m.month >= greatest(e.first_end, $1) AND m.month <= $2
)
SELECT c.national_id, c.section, c.s40_option, c.month, c.amount_satang, c.surcharge_satang,
       p.title, p.first_name, p.last_name,{covers_join("candidates", "c")}
 ORDER BY c.national_id, c.section, c.month
"""


def _month(day: date) -> Month:
    return Month(day.year, day.month)


def covers_of(row: asyncpg.Record) -> tuple[Cover, ...]:
    """The person's memberships: the latest (``insured_persons``) and those closed before it."""
    end = row["latest_end"]
    latest = Cover(
        row["latest_section"], _month(row["effective_date"]), _month(end) if end else None
    )
    closed = json.loads(row["closed"]) if row["closed"] else []
    return (
        latest,
        *(
            Cover(section, _month(date.fromisoformat(start)), _month(date.fromisoformat(ended)))
            for section, start, ended in closed
        ),
    )


class RefundsRepository:
    """The PaidMonthSource of the service layer, on the primary."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], *, timeout_s: float = 1800.0) -> None:
        self._pool = pool
        self._timeout = timeout_s

    async def refund_candidates(
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
                        r["national_id"],
                        r["section"],
                        r["s40_option"],
                        month,
                        r["amount_satang"],
                        r["surcharge_satang"],
                    ),
                    r["title"],
                    r["first_name"],
                    r["last_name"],
                    covers_of(r),
                )
