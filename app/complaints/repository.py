"""Complaint cases in SQL, on the primary.

Implements ``app.complaints.records.ComplaintStore``. A case, its opening events and its
links to the person's audit records go in in one transaction; a move is a conditional update
(``WHERE state = from``) and an event in another, so two officers cannot both move one case.
Listings page by keyset ``(created_at, id)`` over the ``(state, created_at, id)`` or partner
index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg

from app.complaints.records import (
    OPEN_STATES,
    Complaint,
    ComplaintEvent,
    ComplaintRow,
    LinkedAudit,
    LinkedPayment,
)
from app.db.failures import translated

_CASE: Final = """
SELECT c.id, c.national_id, ip.title || ip.first_name || ' ' || ip.last_name AS name,
       c.category, c.description, c.state, c.receipt_no, p.name AS partner, c.partner_txn_id,
       c.payment_id, c.paid_on, c.opened_by, c.created_at, c.updated_at
FROM complaints c
LEFT JOIN partners p ON p.id = c.partner_id
LEFT JOIN insured_persons ip ON ip.national_id = c.national_id
"""
_PAYMENT: Final = """
SELECT pay.id, pay.receipt_no, pay.partner_id, p.name AS partner, pay.partner_txn_id,
       pay.national_id, pay.section, pay.months, pay.amount_satang, pay.state,
       pay.business_date, pay.paid_at, pay.posted_at, pay.cancelled_at
FROM payments pay LEFT JOIN partners p ON p.id = pay.partner_id
"""
_EVENTS: Final = """
SELECT at, from_state, to_state, actor AS who, via, note FROM complaint_events
WHERE complaint_id = $1 ORDER BY seq
"""
_LINKS: Final = """
SELECT a.seq, a.at, a.protocol, a.operation, a.outcome, a.principal_kind, a.principal_name
FROM complaint_audit_links l JOIN audit_log a ON a.at = l.audit_at AND a.seq = l.audit_seq
WHERE l.complaint_id = $1 ORDER BY a.at, a.seq
"""
_INSERT: Final = """
INSERT INTO complaints (national_id, category, description, state, receipt_no, partner_id,
                        partner_txn_id, payment_id, paid_on, opened_by, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id
"""
_EVENT: Final = """
INSERT INTO complaint_events (complaint_id, seq, at, from_state, to_state, actor, via, note)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""
_LINK: Final = """
INSERT INTO complaint_audit_links (complaint_id, audit_at, audit_seq)
SELECT $1, at, seq FROM audit_log
WHERE national_id = $2 AND at >= $3 AND at < $4 ORDER BY at, seq LIMIT $5
"""
_MOVE: Final = "UPDATE complaints SET state = $3, updated_at = $4 WHERE id = $1 AND state = $2"
_NEXT_SEQ: Final = "SELECT COALESCE(max(seq), 0) + 1 FROM complaint_events WHERE complaint_id = $1"
_OPEN_COUNTS: Final = """
SELECT category,
       width_bucket(extract(epoch FROM $1::timestamptz - created_at)::float8, $2::float8[])
           AS bucket,
       count(*)::int AS count
FROM complaints WHERE state = ANY($3::text[]) GROUP BY 1, 2
"""


def _payment(row: asyncpg.Record) -> LinkedPayment:
    values = dict(row)
    values["months"] = tuple(f"{d.year:04d}-{d.month:02d}" for d in row["months"])
    return LinkedPayment(**values)


class ComplaintsRepository:
    """The ComplaintStore of the service layer."""

    def __init__(self, *, pool_provider: Callable[[], asyncpg.Pool]) -> None:
        self._pool_provider = pool_provider

    async def partner_id(self, name: str) -> int | None:
        async with translated("primary"):
            found: int | None = await self._pool_provider().fetchval(
                "SELECT id FROM partners WHERE name = $1", name
            )
        return found

    async def find_payment(
        self, *, receipt_no: str | None, partner_id: int | None, partner_txn_id: str | None
    ) -> LinkedPayment | None:
        """The payment with this receipt, else the partner's payment with this transaction id."""
        async with translated("primary"):
            pool = self._pool_provider()
            row = None
            if receipt_no is not None:
                row = await pool.fetchrow(_PAYMENT + " WHERE pay.receipt_no = $1", receipt_no)
            if row is None and partner_id is not None and partner_txn_id is not None:
                row = await pool.fetchrow(
                    _PAYMENT + " WHERE pay.partner_id = $1 AND pay.partner_txn_id = $2",
                    partner_id,
                    partner_txn_id,
                )
        return None if row is None else _payment(row)

    async def create(
        self, row: ComplaintRow, events: Sequence[ComplaintEvent], *,
        window: tuple[datetime, datetime], link_limit: int,
    ) -> int:  # fmt: skip
        """Store the case, its events and links to the person's audit records in ``window``."""
        async with (
            translated("primary"),
            self._pool_provider().acquire() as conn,
            conn.transaction(),
        ):
            complaint_id: int = await conn.fetchval(
                _INSERT, row.national_id, row.category, row.description, row.state,
                row.receipt_no, row.partner_id, row.partner_txn_id, row.payment_id,
                row.paid_on, row.opened_by, row.created_at,
            )  # fmt: skip
            await conn.executemany(
                _EVENT,
                [(complaint_id, seq, e.at, e.from_state, e.to_state, e.who, e.via, e.note)
                 for seq, e in enumerate(events, start=1)],
            )  # fmt: skip
            await conn.execute(_LINK, complaint_id, row.national_id, *window, link_limit)
        return complaint_id

    async def get(self, complaint_id: int) -> Complaint | None:
        """The case with its payment, linked audit records and history."""
        async with translated("primary"), self._pool_provider().acquire() as conn:
            row = await conn.fetchrow(_CASE + " WHERE c.id = $1", complaint_id)
            if row is None:
                return None
            payment = None
            if row["payment_id"] is not None:
                found = await conn.fetchrow(_PAYMENT + " WHERE pay.id = $1", row["payment_id"])
                payment = None if found is None else _payment(found)
            events = await conn.fetch(_EVENTS, complaint_id)
            links = await conn.fetch(_LINKS, complaint_id)
        return Complaint(
            **dict(row),
            payment=payment,
            audit_records=tuple(LinkedAudit(**dict(r)) for r in links),
            history=tuple(ComplaintEvent(**dict(e)) for e in events),
        )

    async def find(
        self, *, state: str | None, partner_id: int | None, created_before: datetime | None,
        after: tuple[datetime, int] | None, limit: int,
    ) -> list[Complaint]:  # fmt: skip
        """Cases oldest first after ``after``, filtered; without payment, links or history."""
        conditions: list[str] = []
        args: list[Any] = []
        for condition, value in (
            ("c.state = ${}", state),
            ("c.partner_id = ${}", partner_id),
            ("c.created_at < ${}", created_before),
        ):
            if value is not None:
                args.append(value)
                conditions.append(condition.format(len(args)))
        if after is not None:
            args.extend(after)
            conditions.append(f"(c.created_at, c.id) > (${len(args) - 1}, ${len(args)})")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        args.append(limit)
        sql = f"{_CASE}{where} ORDER BY c.created_at, c.id LIMIT ${len(args)}"
        async with translated("primary"):
            rows = await self._pool_provider().fetch(sql, *args)
        return [Complaint(**dict(row)) for row in rows]

    async def transition(self, complaint_id: int, event: ComplaintEvent) -> bool:
        """Move the case from ``event.from_state``; False when it is no longer in that state."""
        async with (
            translated("primary"),
            self._pool_provider().acquire() as conn,
            conn.transaction(),
        ):
            status = await conn.execute(
                _MOVE, complaint_id, event.from_state, event.to_state, event.at
            )
            if status != "UPDATE 1":
                return False
            seq = await conn.fetchval(_NEXT_SEQ, complaint_id)
            await conn.execute(
                _EVENT, complaint_id, seq, event.at, event.from_state, event.to_state,
                event.who, event.via, event.note,
            )  # fmt: skip
        return True

    async def open_counts(
        self, *, now: datetime, bounds: Sequence[timedelta]
    ) -> list[tuple[str, int, int]]:
        """Cases not closed as (category, bucket index by age against ``bounds``, count)."""
        seconds = [bound.total_seconds() for bound in bounds]
        async with translated("primary"):
            rows = await self._pool_provider().fetch(_OPEN_COUNTS, now, seconds, list(OPEN_STATES))
        return [(r["category"], r["bucket"], r["count"]) for r in rows]
