"""Insured persons in SQL: keyset listings and full records through the read router, changes on
the primary.

Implements ``app.insured.records.InsuredStore``. A listing walks the primary key (or the
``(section, status, national_id)`` index when both filters are given) from the cursor onwards,
so any page costs the same at 13 million rows. Each filter combination has its own statement,
so every prepared statement keeps a plan that fits it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date

import asyncpg

from app.audit.records import AuditRecord
from app.audit.unlinked import add_unlinked
from app.db.failures import translated
from app.db.read_meta import ReadMeta
from app.db.replica_router import ReplicaRouter, parse_lsn
from app.domain.months import Month
from app.domain.standing import Earlier
from app.insured.membership_repository import (
    CLOSED_SQL,
    EARLIER_SQL,
    EVENTS_SQL,
    PERSON_COLUMNS,
    MembershipTx,
    closed_membership_of,
    earlier_of,
    judged_by_rules,
    person_of,
    status_event_of,
)
from app.insured.records import (
    InsuredDetail,
    InsuredPerson,
    OptionChangeEntry,
    PaidMonthEntry,
    PaymentEntry,
)

_COLUMNS = PERSON_COLUMNS
_FILTERS = {
    (False, False): "",
    (True, False): " AND section = $3",
    (False, True): " AND status = $3",
    (True, True): " AND section = $3 AND status = $4",
}
_PAYMENTS_SQL = """
SELECT p.receipt_no, p.partner_txn_id,
       CASE WHEN p.partner_id IS NOT NULL THEN 'partner' ELSE 'client' END AS channel_kind,
       COALESCE(pa.name, c.name) AS channel_name, p.section, p.s40_option, p.months,
       p.amount_satang, p.savings_satang, p.state, p.business_date, p.paid_at, p.posted_at,
       p.cancelled_at
  FROM payments p
  LEFT JOIN partners pa ON pa.id = p.partner_id
  LEFT JOIN api_clients c ON c.id = p.client_id
 WHERE p.national_id = $1
 ORDER BY p.posted_at DESC
 LIMIT $2
"""
_PAID_MONTHS_SQL = """
SELECT m.month, m.section, m.s40_option, m.amount_satang, m.paid_on, p.receipt_no
  FROM paid_months m
  LEFT JOIN payments p ON p.id = m.payment_id
 WHERE m.national_id = $1
 ORDER BY m.month DESC, m.section
 LIMIT $2
"""
# The Section 39 months a page's active members paid lately: what their status is derived from.
_S39_MONTHS_SQL = """
SELECT national_id, month, paid_on FROM paid_months
 WHERE national_id = ANY($1::text[]) AND section = 39 AND month >= $2
"""
_OPTION_CHANGES_SQL = """
SELECT changed_on, previous_option, new_option, effective_month, changed_by
  FROM s40_option_changes
 WHERE national_id = $1
 ORDER BY changed_on DESC, id DESC
 LIMIT $2
"""


def _payment(row: asyncpg.Record) -> PaymentEntry:
    return PaymentEntry(
        receipt_no=row["receipt_no"],
        partner_txn_id=row["partner_txn_id"],
        channel_kind=row["channel_kind"],
        channel_name=row["channel_name"],
        section=row["section"],
        option=row["s40_option"],
        months=tuple(Month(m.year, m.month) for m in row["months"]),
        amount_satang=row["amount_satang"],
        savings_satang=row["savings_satang"],
        state=row["state"],
        business_date=row["business_date"],
        paid_at=row["paid_at"],
        posted_at=row["posted_at"],
        cancelled_at=row["cancelled_at"],
    )


def _paid_month(row: asyncpg.Record) -> PaidMonthEntry:
    return PaidMonthEntry(
        month=Month(row["month"].year, row["month"].month),
        section=row["section"],
        option=row["s40_option"],
        amount_satang=row["amount_satang"],
        paid_on=row["paid_on"],
        receipt_no=row["receipt_no"],
    )


def _option_change(row: asyncpg.Record) -> OptionChangeEntry:
    return OptionChangeEntry(
        changed_on=row["changed_on"],
        previous_option=row["previous_option"],
        new_option=row["new_option"],
        effective_month=Month(row["effective_month"].year, row["effective_month"].month),
        changed_by=row["changed_by"],
    )


class OptionChangeTx:
    """One open primary transaction of an option change."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock_person(self, national_id: str) -> InsuredPerson | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM insured_persons WHERE national_id = $1 FOR UPDATE",
            national_id,
        )
        return person_of(row) if row is not None else None

    async def add_audit_record(self, record: AuditRecord) -> None:
        await add_unlinked(self._conn, record)

    async def changes_since(self, national_id: str, first_day: date) -> int:
        count: int = await self._conn.fetchval(
            "SELECT count(*) FROM s40_option_changes WHERE national_id = $1 AND changed_on >= $2",
            national_id,
            first_day,
        )
        return count

    async def record_option_change(
        self,
        national_id: str,
        *,
        previous: int,
        option: int,
        changed_on: date,
        effective_month: Month,
        changed_by: str,
    ) -> InsuredPerson:
        await self._conn.execute(
            "INSERT INTO s40_option_changes (national_id, changed_on, previous_option,"
            " new_option, effective_month, changed_by) VALUES ($1, $2, $3, $4, $5, $6)",
            national_id,
            changed_on,
            previous,
            option,
            effective_month.first_day,
            changed_by,
        )
        row = await self._conn.fetchrow(
            "UPDATE insured_persons SET s40_option = $2, option_changed_on = $3,"
            f" updated_at = now() WHERE national_id = $1 RETURNING {_COLUMNS}",
            national_id,
            option,
            changed_on,
        )
        assert row is not None  # locked above
        return person_of(row)


class InsuredRepository:
    """The InsuredStore of the service layer, on PostgreSQL."""

    def __init__(
        self, *, primary: Callable[[], asyncpg.Pool], router: Callable[[], ReplicaRouter]
    ) -> None:
        self._primary = primary
        self._router = router

    async def list_persons(
        self,
        *,
        section: int | None,
        status: str | None,
        after: str | None,
        limit: int,
        since: Month,
    ) -> tuple[list[InsuredPerson], dict[str, dict[Month, date]], dict[str, Earlier], ReadMeta]:
        filters = _FILTERS[(section is not None, status is not None)]
        args: list[object] = [after or "", limit]
        args += [value for value in (section, status) if value is not None]
        sql = (
            f"SELECT {_COLUMNS} FROM insured_persons WHERE national_id > $1{filters}"
            " ORDER BY national_id LIMIT $2"
        )
        Found = tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]

        async def read(conn: asyncpg.Connection) -> Found:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            judged = [r["national_id"] for r in rows if judged_by_rules(person_of(r))]
            if not judged:
                return rows, [], []
            day = since.first_day
            return (
                rows,
                await conn.fetch(_S39_MONTHS_SQL, judged, day),
                await conn.fetch(EARLIER_SQL, judged, day),
            )

        (rows, months, before), info = await self._router().run_read(read)
        paid: dict[str, dict[Month, date]] = {}
        for m in months:
            day = m["month"]
            paid.setdefault(m["national_id"], {})[Month(day.year, day.month)] = m["paid_on"]
        earlier = {r["national_id"]: earlier_of(r) for r in before}
        return [person_of(row) for row in rows], paid, earlier, ReadMeta(info.path, info.as_of)

    async def read_person(
        self, national_id: str, *, min_lsn: int | None, history_limit: int, since: Month
    ) -> InsuredDetail | None:
        Rows = list[asyncpg.Record]

        async def read(conn: asyncpg.Connection) -> tuple[asyncpg.Record, list[Rows]] | None:
            person = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM insured_persons WHERE national_id = $1", national_id
            )
            if person is None:
                return None
            judged = [national_id] if judged_by_rules(person_of(person)) else []
            return person, [
                await conn.fetch(_PAYMENTS_SQL, national_id, history_limit),
                await conn.fetch(_PAID_MONTHS_SQL, national_id, history_limit),
                await conn.fetch(_OPTION_CHANGES_SQL, national_id, history_limit),
                await conn.fetch(CLOSED_SQL, national_id),
                await conn.fetch(EVENTS_SQL, national_id, history_limit),
                await conn.fetch(EARLIER_SQL, judged, since.first_day) if judged else [],
            ]

        found, info = await self._router().run_read(read, min_lsn=min_lsn)
        if found is None:
            return None
        person, (payments, paid, changes, closed, events, before) = found
        return InsuredDetail(
            earlier=earlier_of(before[0]) if before else None,
            person=person_of(person),
            payments=[_payment(r) for r in payments],
            paid_months=[_paid_month(r) for r in paid],
            option_changes=[_option_change(r) for r in changes],
            meta=ReadMeta(info.path, info.as_of),
            previous=[closed_membership_of(r) for r in closed],
            events=[status_event_of(r) for r in events],
        )

    @asynccontextmanager
    async def membership_transaction(self) -> AsyncIterator[MembershipTx]:
        async with translated("primary"), self._primary().acquire() as conn, conn.transaction():
            yield MembershipTx(conn)

    @asynccontextmanager
    async def option_transaction(self) -> AsyncIterator[OptionChangeTx]:
        async with translated("primary"), self._primary().acquire() as conn, conn.transaction():
            yield OptionChangeTx(conn)

    async def current_lsn(self) -> int:
        async with translated("primary"):
            text = await self._primary().fetchval("SELECT pg_current_wal_lsn()::text")
        return parse_lsn(text) or 0
