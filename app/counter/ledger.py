"""The payments ledger and insured-person reads, in SQL.

Inquiries read a person with their recent paid months in one round trip, through the replica
router; the same round trip says how far the standby that served it has replayed, so a standby
behind the newest write this instance knows of is not believed (``app.db.replica_router``).
Confirms and cancels run in one primary transaction: the person's row is locked first, so two
counters paying for one person are serialised, and the paid-month primary key stays the last
line of defence. The call's audit record is written in that transaction too
(``app.audit.unlinked``), so it commits with the payment or not at all. The transaction
commits with ``synchronous_commit = remote_apply`` (``app.db.sync_commit``): once a confirm is
answered, the enquiry standbys have applied it, and no instance offers those months again.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime

import asyncpg

from app.audit.records import AuditRecord
from app.audit.unlinked import add_unlinked
from app.counter.member_reads import MemberReads
from app.counter.ports import MemberSnapshot, NewPayment, PaymentRow, TransactionIdTaken
from app.counter.records import EndedMembership
from app.db.failures import translated
from app.db.read_meta import ReadMeta
from app.db.replica_router import ReplicaRouter, parse_lsn
from app.db.sync_commit import CommitPolicy, synchronous_transaction
from app.domain.months import Month
from app.domain.rates import Rate
from app.domain.standing import TERMINATED, Earlier, reason_code
from app.errors import AlreadyPaid, StoreUnavailable
from app.principals.records import Principal
from app.rates.repository import fetch_rates

#: The inquiry's one read: the person (with the source system's fields), their paid months since
#: $2, their pending option change, the memberships that ended before (newest first; one index
#: probe, nearly always empty). For a Section 39 member recorded active, the latest month paid
#: before $2 (at all, and on time: by the 15th of the next month, as
#: ``app.domain.calendar.s39_due_date``): two probes backwards from where the window's months
#: begin, which date an ending older than the window (``app.domain.standing``).
MEMBER_SQL = """
SELECT p.national_id, p.title, p.first_name, p.last_name, p.section, p.status,
       p.status_reason, p.ended_month, p.effective_date, p.s40_option, p.option_changed_on,
       p.return_code, p.period_of_payment, p.payment_method, p.last_paid_on, p.last_paid_satang,
       p.rules_from, p.s39_eligibility, cm.previous,
       COALESCE((SELECT array_agg(m.month ORDER BY m.month) FROM paid_months m
                  WHERE m.national_id = p.national_id AND m.section = p.section
                    AND m.month >= $2), '{}') AS months,
       COALESCE((SELECT array_agg(m.paid_on ORDER BY m.month) FROM paid_months m
                  WHERE m.national_id = p.national_id AND m.section = p.section
                    AND m.month >= $2), '{}') AS paid_on,
       oc.previous_option, oc.effective_month AS option_effective,
       p.section = 39 AND p.status = 'active' AS earlier_read,
       CASE WHEN p.section = 39 AND p.status = 'active' THEN (
            SELECT max(m.month) FROM paid_months m
             WHERE m.national_id = p.national_id AND m.section = 39 AND m.month < $2)
       END AS last_paid_before,
       CASE WHEN p.section = 39 AND p.status = 'active' THEN (
            SELECT m.month FROM paid_months m
             WHERE m.national_id = p.national_id AND m.section = 39 AND m.month < $2
               AND m.paid_on <= (m.month + interval '1 month 14 days')::date
             ORDER BY m.month DESC LIMIT 1)
       END AS last_on_time_before
  FROM insured_persons p
  LEFT JOIN LATERAL (
        SELECT c.previous_option, c.effective_month FROM s40_option_changes c
         WHERE c.national_id = p.national_id AND p.option_changed_on IS NOT NULL
         ORDER BY c.changed_on DESC, c.id DESC LIMIT 1) oc ON true
  LEFT JOIN LATERAL (
        SELECT json_agg(json_build_array(c.section, c.coverage_start, c.ended_month,
                                         c.end_reason, c.s40_option)
                        ORDER BY c.ended_month DESC, c.id DESC) AS previous
          FROM closed_memberships c WHERE c.national_id = p.national_id) cm ON true
 WHERE p.national_id = $1
"""

# A confirm waits at most this long for a primary connection, then answers the retryable
# server.store_unavailable instead of queueing for ever behind a stuck pool.
ACQUIRE_TIMEOUT_S = 5.0

_PAYMENT_COLUMNS = (
    "id, partner_txn_id, receipt_no, national_id, section, s40_option, months, amount_satang,"
    " savings_satang, request_hash, state, business_date, paid_at, posted_at, cancelled_at"
)


def _month(day: date) -> Month:
    return Month.from_index(day.year * 12 + day.month - 1)


def ended_memberships(text: str | None) -> tuple[EndedMembership, ...]:
    """The memberships of ``MEMBER_SQL``'s ``previous`` column (JSON), newest first."""
    if not text:
        return ()
    return tuple(
        EndedMembership(
            section=section,
            coverage_start=date.fromisoformat(start),
            ended_month=ended[:7],
            end_reason=reason_code(TERMINATED, reason),  # a code, never an officer's words
            option=option,
        )
        for section, start, ended, reason, option in json.loads(text)
    )


def earlier_of(row: asyncpg.Record) -> Earlier | None:
    """The months paid before the window, when the row read them (else None)."""
    if not row["earlier_read"]:
        return None
    last, on_time = row["last_paid_before"], row["last_on_time_before"]
    return Earlier(_month(last) if last else None, _month(on_time) if on_time else None)


def _member(row: asyncpg.Record | None) -> MemberSnapshot | None:
    if row is None or row["national_id"] is None:
        return None
    return MemberSnapshot(
        national_id=row["national_id"],
        title=row["title"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        section=row["section"],
        status=row["status"],
        status_reason=row["status_reason"],
        ended_month=_month(row["ended_month"]) if row["ended_month"] else None,
        coverage_start=_month(row["effective_date"]),
        option=row["s40_option"],
        option_changed_on=row["option_changed_on"],
        previous_option=row["previous_option"],
        option_effective=_month(row["option_effective"]) if row["option_effective"] else None,
        paid={_month(m): d for m, d in zip(row["months"], row["paid_on"], strict=True)},
        effective_date=row["effective_date"],
        return_code=row["return_code"],
        period_of_payment=row["period_of_payment"],
        payment_method=row["payment_method"],
        last_paid_on=row["last_paid_on"],
        last_paid_satang=row["last_paid_satang"],
        rules_from=_month(row["rules_from"]) if row["rules_from"] else None,
        s39_eligibility=row["s39_eligibility"],
        previous=ended_memberships(row["previous"]),
        earlier=earlier_of(row),
    )


def _payment(row: asyncpg.Record | None) -> PaymentRow | None:
    if row is None:
        return None
    return PaymentRow(
        id=row["id"],
        partner_txn_id=row["partner_txn_id"],
        receipt_no=row["receipt_no"],
        national_id=row["national_id"],
        section=row["section"],
        option=row["s40_option"],
        months=tuple(_month(m) for m in row["months"]),
        amount_satang=row["amount_satang"],
        savings_satang=row["savings_satang"],
        request_hash=bytes(row["request_hash"]),
        state=row["state"],
        business_date=row["business_date"],
        paid_at=row["paid_at"],
        posted_at=row["posted_at"],
        cancelled_at=row["cancelled_at"],
    )


def _owner(principal: Principal) -> tuple[str, int]:
    column = "partner_id" if principal.kind == "partner" else "client_id"
    return column, principal.id


class LedgerTx:
    """One open primary transaction (LedgerTransaction of the service layer)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock_member(self, national_id: str, *, since: Month) -> MemberSnapshot | None:
        # Lock the person first: concurrent confirms for one person queue here.
        exists = await self._conn.fetchval(
            "SELECT 1 FROM insured_persons WHERE national_id = $1 FOR UPDATE", national_id
        )
        if exists is None:
            return None
        return _member(await self._conn.fetchrow(MEMBER_SQL, national_id, since.first_day))

    async def find_payment(
        self, principal: Principal, partner_txn_id: str, *, for_update: bool = False
    ) -> PaymentRow | None:
        column, owner = _owner(principal)
        lock = " FOR UPDATE" if for_update else ""
        return _payment(
            await self._conn.fetchrow(
                f"SELECT {_PAYMENT_COLUMNS} FROM payments"
                f" WHERE {column} = $1 AND partner_txn_id = $2{lock}",
                owner,
                partner_txn_id,
            )
        )

    async def next_receipt_sequence(self) -> int:
        value: int = await self._conn.fetchval("SELECT nextval('receipt_seq')")
        return value

    async def insert_payment(self, new: NewPayment) -> PaymentRow:
        column, owner = _owner(new.principal)
        # The payment and its months in one statement (one round trip, atomic by itself). A
        # unique violation fails the statement and with it the transaction, which the caller
        # then leaves: nothing after it runs on this transaction.
        try:
            row = await self._conn.fetchrow(
                f"WITH payment AS (INSERT INTO payments ({column}, partner_txn_id, receipt_no,"
                " national_id, section, s40_option, months, amount_satang, savings_satang,"
                " request_hash, business_date, paid_at, store_id, terminal_id, shift,"
                " operator_id, posted_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
                " $19)"
                f" RETURNING {_PAYMENT_COLUMNS}),"
                " paid AS (INSERT INTO paid_months (national_id, section, month, amount_satang,"
                " s40_option, payment_id, paid_on)"
                " SELECT $4, $5, m, a, $6, payment.id, $18"
                " FROM payment, unnest($7::date[], $17::int[]) AS t(m, a))"
                " SELECT * FROM payment",
                owner,
                new.partner_txn_id,
                new.receipt_no,
                new.national_id,
                new.section,
                new.option,
                [m.first_day for m in new.months],
                new.amount_satang,
                new.savings_satang,
                new.request_hash,
                new.business_date,
                new.paid_at,
                new.store_id,
                new.terminal_id,
                new.shift,
                new.operator_id,
                list(new.month_amounts),
                new.paid_on,
                new.posted_at,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name in ("payments_partner_txn", "payments_client_txn"):
                raise TransactionIdTaken(new.partner_txn_id) from exc
            if exc.constraint_name == "paid_months_pkey":
                raise AlreadyPaid(
                    "One or more of these months were paid by another transaction.",
                    months=[str(m) for m in new.months],
                ) from exc
            raise
        payment = _payment(row)
        assert payment is not None
        return payment

    async def add_audit_record(self, record: AuditRecord) -> None:
        await add_unlinked(self._conn, record)

    async def cancel_payment(self, payment_id: int, *, reason: str, at: datetime) -> PaymentRow:
        await self._conn.execute("DELETE FROM paid_months WHERE payment_id = $1", payment_id)
        row = await self._conn.fetchrow(
            "UPDATE payments SET state = 'cancelled', cancelled_at = $2, cancel_reason = $3"
            f" WHERE id = $1 RETURNING {_PAYMENT_COLUMNS}",
            payment_id,
            at,
            reason,
        )
        payment = _payment(row)
        assert payment is not None
        return payment


class PgLedger:
    """The Ledger, MemberReader and RateSource of the service layer, on PostgreSQL."""

    def __init__(
        self,
        *,
        primary: Callable[[], asyncpg.Pool],
        router: Callable[[], ReplicaRouter],
        commit: CommitPolicy | None = None,
    ) -> None:
        self._primary = primary
        self._router = router
        self._commit = commit or CommitPolicy()
        self._members = MemberReads(router, MEMBER_SQL)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[LedgerTx]:
        pool = self._primary()
        try:
            async with (
                translated("primary"),
                pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn,
                synchronous_transaction(conn, self._commit),
            ):
                yield LedgerTx(conn)
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, asyncpg.ReadOnlySQLTransactionError):
                # The pool's connections reach a demoted primary: drop them all, so the next
                # confirm connects afresh (to the node that is read-write now).
                await pool.expire_connections()
            raise

    async def find_payment(self, principal: Principal, partner_txn_id: str) -> PaymentRow | None:
        async with (
            translated("primary"),
            self._primary().acquire(timeout=ACQUIRE_TIMEOUT_S) as conn,
        ):
            return await LedgerTx(conn).find_payment(principal, partner_txn_id)

    async def current_lsn(self) -> int:
        async with translated("primary"):
            text = await self._primary().fetchval("SELECT pg_current_wal_lsn()::text")
        lsn = parse_lsn(text) or 0
        self._router().saw_write(lsn)  # no standby behind it serves this instance's reads
        return lsn

    async def read_member(
        self, national_id: str, *, since: Month, min_lsn: int | None
    ) -> tuple[MemberSnapshot | None, ReadMeta]:
        # With the reads of the other inquiries in progress (member_reads.py).
        row, info = await self._members.read(national_id, since=since.first_day, min_lsn=min_lsn)
        return _member(row), ReadMeta(info.path, info.as_of)

    async def load_rates(self) -> list[Rate]:
        return await fetch_rates(self._primary())
