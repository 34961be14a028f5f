"""The payments ledger and insured-person reads, in SQL.

Inquiries read a person with their recent paid months in one round trip, through the replica
router; the same round trip says how far the standby that served it has replayed, so a standby
behind the newest write this instance knows of is not believed (``app.db.replica_router``).
Confirms and cancels run in one primary transaction. A confirm locks the person's row first,
so two counters paying for one person are serialised, and the paid-month primary key stays the
last line of defence; a cancel locks the payment's row, then (Section 39) the person's, before
it looks for a later payment that would be left after a gap. The call's audit record is written
in that transaction too (``app.audit.unlinked``), so it commits with the payment or not at all.

A new payment costs the primary five round trips, each a statement of its own: the
transaction's begin, the person's lock with the read under it (the person, the payment the
transaction id already names, the receipt sequence), the insert of the payment, its months and
its audit record (one statement), the COMMIT, and the WAL position after it, on the same
connection. The lock is not sent with the BEGIN (a simple query takes no parameters: the ID
would be in the statement's text, which the server shows and logs). The lock and the read are
one call of a function that runs them as two statements (``CONFIRM_READ_CALL``): in one
``SELECT ... FOR UPDATE`` the paid months would come from the snapshot taken before the lock
was granted, so a second confirm for the same person would not see the first's. The transaction
commits with ``synchronous_commit = remote_apply`` (``app.db.sync_commit``): once a confirm is
answered, the enquiry standbys have applied it, and no instance offers those months again.
Where the service may not call the function (an older release's ``ssogw migrate`` revoked it,
or this release's has not run), the confirm that meets the refusal is answered retryable and
the instance locks and reads in two statements (``ConfirmReadPath``) until it may again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from app.audit.records import AuditRecord
from app.audit.unlinked import add_args, add_sql, add_unlinked, refused_record
from app.counter.member_reads import MEMBER_SQL, MemberReads, member_snapshot, month_of
from app.counter.ports import (
    ConfirmRead,
    LaterPayment,
    MemberSnapshot,
    NewPayment,
    PaymentRow,
    TransactionIdTaken,
)
from app.db.failures import translated
from app.db.read_meta import ReadMeta
from app.db.replica_router import ReplicaRouter, parse_lsn
from app.db.sync_commit import CommitPolicy, synchronous_transaction
from app.domain.months import Month
from app.domain.rates import Rate
from app.errors import AlreadyPaid, StoreUnavailable
from app.principals.records import Principal
from app.rates.repository import RATE_DIGEST_SQL, fetch_rates

log = logging.getLogger(__name__)

# A confirm waits at most this long for a primary connection, then answers the retryable
# server.store_unavailable instead of queueing for ever behind a stuck pool.
ACQUIRE_TIMEOUT_S = 5.0

_PAYMENT_FIELDS = (
    "id", "partner_txn_id", "receipt_no", "national_id", "section", "s40_option", "months",
    "amount_satang", "savings_satang", "request_hash", "state", "business_date", "paid_at",
    "posted_at", "cancelled_at",
)  # fmt: skip
_PAYMENT_COLUMNS = ", ".join(_PAYMENT_FIELDS)
# Beside the member's columns (several names are the same): each as pay_<name>.
_PAY = "pay_"
_PAYMENT_AS = ", ".join(f"pay.{name} AS {_PAY}{name}" for name in _PAYMENT_FIELDS)

#: The payment's insert: the payment, its months and the call's audit record in one statement
#: (one round trip, atomic by itself); the record's parameters follow the payment's 21. Each
#: month keeps the option it was priced at (a month before a pending option change, the option
#: held then) and the late surcharge its amount includes.
_INSERT = (
    "WITH payment AS (INSERT INTO payments ({column}, partner_txn_id, receipt_no,"
    " national_id, section, s40_option, months, amount_satang, savings_satang,"
    " request_hash, business_date, paid_at, store_id, terminal_id, shift,"
    " operator_id, posted_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $19)"
    f" RETURNING {_PAYMENT_COLUMNS}),"
    " paid AS (INSERT INTO paid_months (national_id, section, month, amount_satang,"
    " s40_option, payment_id, paid_on, surcharge_satang)"
    " SELECT $4, $5, m, a, o, payment.id, $18, s"
    " FROM payment, unnest($7::date[], $17::int[], $20::smallint[], $21::int[]) AS t(m, a, o, s)),"
    f" record AS ({add_sql(22)})"
    " SELECT * FROM payment"
)
_INSERT_SQL = {c: _INSERT.replace("{column}", c) for c in ("partner_id", "client_id")}

# A confirm's read under its person's lock: the person (``MEMBER_SQL``), the payment the
# transaction id already names (a replay; ``$5``: the owner ``$3`` is a partner, else a client:
# only that branch runs, on its own unique index), and the receipt sequence a new payment takes —
# drawn when there is a person and no payment yet, so a refused payment leaves a gap in the
# sequence, as a rolled-back one always did — and the rate table's fingerprint, so that a rate
# another instance added is never priced by a table cached before it (``app.counter.posting``).
CONFIRM_READ: Final = f"""
SELECT m.*, {_PAYMENT_AS},
       CASE WHEN m.national_id IS NOT NULL AND pay.id IS NULL THEN nextval('receipt_seq')
       END AS receipt_sequence,
       {RATE_DIGEST_SQL} AS rate_digest
  FROM (SELECT 1) AS one
  LEFT JOIN ({MEMBER_SQL}) AS m ON true
  LEFT JOIN LATERAL (SELECT {_PAYMENT_COLUMNS} FROM payments
                      WHERE $5 AND partner_id = $3 AND partner_txn_id = $4
                     UNION ALL
                     SELECT {_PAYMENT_COLUMNS} FROM payments
                      WHERE NOT $5 AND client_id = $3 AND partner_txn_id = $4) AS pay ON true
"""
#: The lock and the read in one round trip (migration 0023): the read is a statement of its own
#: in the function, whose snapshot follows the lock. Its row ends with ``locked`` (whether the
#: lock found the person). The function holds a copy of ``CONFIRM_READ``, which
#: ``test_confirm_read_function.py`` holds alike (a new read is a new function: 0023 says why).
CONFIRM_READ_CALL: Final = "SELECT * FROM ssogw_confirm_read($1, $2, $3, $4, $5)"
# The read of the releases before 0023, after the lock as a statement of its own, for when the
# function is refused (an error with no context: one raised inside it is its read's own, which
# this read would meet alike); its row says whether the service may call the function again.
_TWO_STATEMENT_READ = f"""SELECT r.*, coalesce(has_function_privilege(to_regprocedure(
    'ssogw_confirm_read(text, date, integer, text, boolean)'), 'EXECUTE'), false) AS may_call
  FROM ({CONFIRM_READ}) AS r"""
_REFUSED = (asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedFunctionError)


@dataclass(slots=True)
class ConfirmReadPath:
    """How an instance's confirms lock and read: by ``ssogw_confirm_read``, but after it was
    refused, in two statements until one of those reads finds that the service may call it."""

    by_function: bool = True


def _payment(row: asyncpg.Record | None, prefix: str = "") -> PaymentRow | None:
    if row is None or row[f"{prefix}id"] is None:
        return None

    return PaymentRow(
        id=row[f"{prefix}id"],
        partner_txn_id=row[f"{prefix}partner_txn_id"],
        receipt_no=row[f"{prefix}receipt_no"],
        national_id=row[f"{prefix}national_id"],
        section=row[f"{prefix}section"],
        option=row[f"{prefix}s40_option"],
        months=tuple(month_of(m) for m in row[f"{prefix}months"]),
        amount_satang=row[f"{prefix}amount_satang"],
        savings_satang=row[f"{prefix}savings_satang"],
        request_hash=bytes(row[f"{prefix}request_hash"]),
        state=row[f"{prefix}state"],
        business_date=row[f"{prefix}business_date"],
        paid_at=row[f"{prefix}paid_at"],
        posted_at=row[f"{prefix}posted_at"],
        cancelled_at=row[f"{prefix}cancelled_at"],
    )


def _owner(principal: Principal) -> tuple[str, int]:
    column = "partner_id" if principal.kind == "partner" else "client_id"
    return column, principal.id


# The person's lock after the BEGIN: the ID bound, never in the text (the server logs that).
_LOCK = "SELECT 1 FROM insured_persons WHERE national_id = $1 FOR UPDATE"


# A confirmed payment of the person, in the section, for a month after the given one: a cancel
# that would leave it paid after a gap waits for it to be cancelled first.
_LATER = (
    "SELECT receipt_no, partner_id, client_id FROM payments WHERE national_id = $1 AND section = $2"
    " AND state = 'confirmed' AND id <> $3"
    " AND (SELECT max(m) FROM unnest(months) AS m) > $4"
    " ORDER BY posted_at DESC, id DESC LIMIT 1"
)

_PAYMENT_TABLES = ("payments", "paid_months")


def _payments_own(exc: asyncpg.PostgresError) -> bool:
    """Whether a failure of the payment's insert is the payment's own, not its record's. The
    record's refusals do not all name its table (a trigger raising, the INSERT right taken
    away); the payment's tables have no trigger, and their own failures name them (a
    constraint in ``table_name``, a missing right in the message): any other is the record's."""
    table = getattr(exc, "table_name", None)
    if table:
        return bool(table in _PAYMENT_TABLES)
    message = str(getattr(exc, "message", "") or "")
    return any(f"table {name}" in message for name in _PAYMENT_TABLES)


class LedgerTx:
    """One open primary transaction (LedgerTransaction of the service layer)."""

    def __init__(self, conn: asyncpg.Connection, path: ConfirmReadPath | None = None) -> None:
        self._conn = conn
        self._path = path or ConfirmReadPath()
        self.wrote = False  # a payment inserted or cancelled: the LSN is read after COMMIT
        self.committed_lsn: int | None = None

    async def lock_person(self, national_id: str) -> bool:
        """Lock the person's row (concurrent confirms for one person queue here); False when
        there is no such person."""
        return await self._conn.fetchval(_LOCK, national_id) is not None

    async def lock_and_read(
        self, national_id: str, principal: Principal, partner_txn_id: str, *, since: Month
    ) -> ConfirmRead:
        column, owner = _owner(principal)
        args = (national_id, since.first_day, owner, partner_txn_id, column == "partner_id")
        if self._path.by_function:
            row = await self._call_read(args)
            locked = row is not None and row["locked"]
        else:
            locked = await self.lock_person(national_id)
            row = await self._conn.fetchrow(_TWO_STATEMENT_READ, *args)
            if row is not None and row["may_call"]:
                self._path.by_function = True
                log.info("confirms read through ssogw_confirm_read again (one round trip)")
        payment = _payment(row, _PAY)
        # A person the lock did not find (created since) is not read as one: nothing locked it.
        member = member_snapshot(row) if row is not None and locked else None
        sequence = row["receipt_sequence"] if row is not None else None
        digest = row["rate_digest"] if row is not None else ""
        return ConfirmRead(
            member=member, payment=payment, receipt_sequence=sequence, rate_digest=digest
        )

    async def _call_read(self, args: tuple[object, ...]) -> asyncpg.Record | None:
        try:
            return await self._conn.fetchrow(CONFIRM_READ_CALL, *args)
        except _REFUSED as exc:  # the transaction is aborted: this confirm cannot go on
            if exc.context:  # raised inside the function: not the call's refusal
                raise
            self._path.by_function = False
            log.warning("the service may not call ssogw_confirm_read (%s): confirms lock and"
                        " read in two statements until it may; run this release's `ssogw"
                        " migrate`", type(exc).__name__)  # fmt: skip
            raise StoreUnavailable(
                "The database refused the confirm's read; send the same request again.",
                store="primary",
                reason="confirm_read_refused",
            ) from exc

    async def load_rates(self) -> list[Rate]:
        return await fetch_rates(self._conn)

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

    async def insert_payment(self, new: NewPayment, record: AuditRecord) -> PaymentRow:
        column, owner = _owner(new.principal)
        # A unique violation (or a refused record) fails the statement and with it the
        # transaction, which the caller then leaves: nothing after it runs on this transaction.
        try:
            row = await self._conn.fetchrow(
                _INSERT_SQL[column],
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
                list(new.month_options),
                list(new.month_surcharges),
                *add_args(record),
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
        except asyncpg.PostgresError as exc:
            if _payments_own(exc):
                raise
            failure = refused_record(exc)
            if failure is None:
                raise
            raise failure from exc
        payment = _payment(row)
        assert payment is not None
        self.wrote = True
        return payment

    async def add_audit_record(self, record: AuditRecord) -> None:
        await add_unlinked(self._conn, record)

    async def later_payment(self, payment: PaymentRow, principal: Principal) -> LaterPayment | None:
        last = max(m.first_day for m in payment.months)
        row = await self._conn.fetchrow(
            _LATER, payment.national_id, payment.section, payment.id, last
        )
        if row is None:
            return None
        column, owner = _owner(principal)
        own = row[column] == owner
        return LaterPayment(own_receipt_no=str(row["receipt_no"]) if own else None)

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
        self.wrote = True
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
        self._read_path = ConfirmReadPath()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[LedgerTx]:
        """A primary transaction committed as payments are (``app.db.sync_commit``). Once it
        has committed a payment or a cancel, ``committed_lsn`` is the primary's WAL
        position, read on the same connection."""
        pool = self._primary()
        try:
            async with translated("primary"), pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                tx = LedgerTx(conn, self._read_path)
                async with synchronous_transaction(conn, self._commit):
                    yield tx
                if tx.wrote:
                    tx.committed_lsn = await self._current_lsn(conn)
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

    async def _current_lsn(self, conn: asyncpg.Connection) -> int:
        lsn = parse_lsn(await conn.fetchval("SELECT pg_current_wal_lsn()::text")) or 0
        self._router().saw_write(lsn)  # no standby behind it serves this instance's reads
        return lsn

    async def read_member(
        self, national_id: str, *, since: Month, min_lsn: int | None
    ) -> tuple[MemberSnapshot | None, ReadMeta]:
        # With the reads of the other inquiries in progress (member_reads.py).
        row, info = await self._members.read(national_id, since=since.first_day, min_lsn=min_lsn)
        return member_snapshot(row), ReadMeta(info.path, info.as_of, row["rate_digest"])

    async def load_rates(self) -> list[Rate]:
        return await fetch_rates(self._primary())
