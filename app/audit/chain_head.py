"""The chain head, moved forward only through the owner's functions (migrations 0016, 0017, 0022).

Why: while the service role could UPDATE ``audit_chain``, any session with its credentials
could hold the head (``SELECT ... FOR UPDATE`` in a transaction left open) and stall every
audited call of the fleet for as long as it liked. The choice made here: the service role keeps
only SELECT on ``audit_chain`` and ``audit_log`` — it can take no row lock on the head — and a
batch goes onto the chain through ``ssogw_audit_append_records`` (records the writer made) or
``ssogw_audit_link_tails`` (records business transactions committed), SECURITY DEFINER
functions of the owner. Each call is one statement that

* waits for the head's lock at most ``wait_s`` (then SQLSTATE 55P03: the batch fails with
  ``server.audit_unavailable`` at once instead of hanging), and
* under that lock numbers the batch after the head and hashes each record from the canonical
  form the caller sends without its place (``canonical_tail``), so a batch is never refused
  because another instance appended first: one round trip per batch, however many instances
  share the chain (0016's functions made the caller hash after the head it last saw, and send
  the batch again when another had moved it; two instances sent most batches twice).

A batch is sent as one array of records (0022), not as 0017's 16 arrays of columns: asyncpg
checks each element of an array parameter with Python-level ABC checks before encoding it,
about 26 checks a record for the columns against 3 for the records.

If the service role may not call this release's functions (a previous release's ``ssogw
migrate`` ran after this release's, as in a rollback, and granted only its own), the mover says
so once and goes on through that release's: 0017's append (``ssogw_audit_append_tails``), and
if that is refused too, 0016's pair, hashing after the head as it last saw it, until the
process restarts.

A service-role session can still call a function inside a transaction it leaves open, and so
keep the lock until that transaction ends. A writer whose wait ran out therefore ends the
service role's sessions whose transaction has held a lock on ``audit_chain`` for longer than
``hold_s`` (``pg_terminate_backend``: a role may end its own sessions); the gateway's own
transactions on the head are one short statement each, cut off by the writer's commit timeout
(5 s) before that (``hold_s`` is 10 s by default). So a hold-off costs the calls of about
``hold_s`` seconds, each failing within ``wait_s``, and then audited calls proceed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Final
from uuid import UUID

import asyncpg

from app.audit.chain import AuditRow, canonical_tail, chain_hash
from app.audit.queries import stored_row
from app.audit.seals.sealer import ChainHead

log = logging.getLogger(__name__)

APPEND: Final = "SELECT last_seq FROM ssogw_audit_append_records($1::ssogw_audit_record[], $2)"
# 0017's append, which the previous release calls: the same batch as 16 arrays of columns.
APPEND_0017: Final = """
SELECT last_seq FROM ssogw_audit_append_tails(
    $1::timestamptz[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
    $14::text[], $15::uuid[], $16::bytea[], $17)
"""
LINK: Final = "SELECT linked FROM ssogw_audit_link_tails($1::uuid[], $2::bytea[], $3)"
# 0016's pair, which the previous release calls: the caller numbers and hashes after the head as
# it last saw it, and is told where the head is when another appended first. Used only when
# the service role may not call the pair above (the previous release's ``ssogw migrate`` ran
# after this one's and granted its own functions alone: a rollback).
HEAD_0016: Final = "SELECT last_seq, last_hash FROM audit_chain WHERE id"
APPEND_0016: Final = """
SELECT advanced, last_seq, last_hash FROM ssogw_audit_append(
    $1, $2, $3::bigint[], $4::timestamptz[], $5::text[], $6::integer[], $7::text[], $8::text[],
    $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
    $16::text[], $17::text[], $18::bytea[], $19::bytea[], $20::uuid[], $21)
"""
LINK_0016: Final = """
SELECT advanced, last_seq, last_hash FROM ssogw_audit_link(
    $1, $2, $3::uuid[], $4::bigint[], $5::bytea[], $6::bytea[], $7)
"""
# A function (or 0022's record type) the service role may not call, or that is not there.
_REFUSED: Final = (
    asyncpg.InsufficientPrivilegeError,
    asyncpg.UndefinedFunctionError,
    asyncpg.UndefinedObjectError,
)
# The migrations whose functions the mover can append through, this release's first.
THIS_RELEASE, PREVIOUS_RELEASE, RELEASE_BEFORE = 22, 17, 16
# The service role's other sessions whose transaction has held a lock on the head too long.
END_HOLDERS: Final = """
SELECT a.pid, pg_terminate_backend(a.pid) AS ended
  FROM pg_stat_activity a
 WHERE a.usename = current_user AND a.pid <> pg_backend_pid()
   AND a.datname = current_database()
   AND a.xact_start < clock_timestamp() - make_interval(secs => $1)
   AND EXISTS (SELECT 1 FROM pg_locks l
                WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'
                  AND l.relation = 'audit_chain'::regclass)
"""


def _stored(row: AuditRow) -> tuple[object, ...]:
    """A row's stored columns, in the order every append function takes them."""
    return (
        row.at, row.principal_kind, row.principal_id, row.principal_name, row.operator,
        row.terminal, row.source_ip, row.protocol, row.operation, row.national_id,
        row.name_returned, row.outcome, row.request_id, row.detail_json(),
    )  # fmt: skip


def _records(rows: Sequence[tuple[UUID, AuditRow]]) -> list[tuple[object, ...]]:
    """The batch as 0022's records (``ssogw_audit_record``), each with its canonical tail."""
    return [(*_stored(row), record_id, canonical_tail(row)) for record_id, row in rows]


def _columns(rows: Sequence[tuple[UUID, AuditRow]]) -> list[list[object]]:
    """The batch as 0017's arrays of columns."""
    return [list(column) for column in zip(*_records(rows), strict=True)]


def _chained(head: ChainHead, rows: Sequence[AuditRow]) -> Iterator[tuple[int, bytes, bytes]]:
    """0016's path: each row's seq, previous hash and hash after ``head``, as the caller
    numbers and hashes them."""
    seq, prev_hash = head.seq, head.hash
    for row in rows:
        seq += 1
        row_hash = chain_hash(prev_hash, seq, row)
        yield seq, prev_hash, row_hash
        prev_hash = row_hash


def _hashed_columns(head: ChainHead, rows: Sequence[tuple[UUID, AuditRow]]) -> list[list[object]]:
    """The batch numbered and hashed after ``head``, as 0016's append function's arrays."""
    placed = _chained(head, [row for _, row in rows])
    records = [
        (seq, *_stored(row), prev_hash, row_hash, record_id)
        for (record_id, row), (seq, prev_hash, row_hash) in zip(rows, placed, strict=True)
    ]
    return [list(column) for column in zip(*records, strict=True)]


class ChainHeadMover:
    """Appends and links onto the chain through the owner's functions (one per writer, shared
    with its linker)."""

    def __init__(self, *, wait_s: float = 1.0, hold_s: float = 10.0) -> None:
        if wait_s <= 0 or hold_s <= 0:
            raise ValueError("wait_s and hold_s must be positive")
        self._wait_ms = max(1, round(wait_s * 1000))
        self._hold_s = hold_s
        # Whose functions this process calls: this release's (0022's append, 0017's link) until
        # the database refuses them, then the previous release's (0017), then 0016's (HEAD_0016).
        self._release = THIS_RELEASE
        self._known: ChainHead | None = None  # the head as 0016's path last saw it

    async def append(self, conn: asyncpg.Connection, rows: Sequence[tuple[UUID, AuditRow]]) -> None:
        """Put ``rows`` (record id, row) on the chain after the head, in this order."""
        if not rows:
            return
        if self._release == THIS_RELEASE:
            try:
                await self._call(conn, APPEND, _records(rows))
                return
            except _REFUSED as exc:
                self._fall_back("ssogw_audit_append_records", PREVIOUS_RELEASE, exc)
        if self._release == PREVIOUS_RELEASE:
            try:
                await self._call(conn, APPEND_0017, *_columns(rows))
                return
            except _REFUSED as exc:
                self._fall_back("ssogw_audit_append_tails", RELEASE_BEFORE, exc)
        while True:
            head = await self._head(conn)
            if await self._advance(conn, APPEND_0016, head, *_hashed_columns(head, rows)):
                return

    async def link(self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> int | None:
        """Link the waiting ``rows`` (read as ``app.audit.queries`` reads records) after the
        head, in this order; how many this call linked (another linker may have taken some),
        or None when the rows must be read again (0016's path: another moved the head)."""
        if not rows:
            return 0
        if self._release != RELEASE_BEFORE:
            ids = [row["record_id"] for row in rows]
            tails = [canonical_tail(stored_row(row)) for row in rows]
            try:
                linked: int = await self._call(conn, LINK, ids, tails)
                return linked
            except _REFUSED as exc:
                self._fall_back("ssogw_audit_link_tails", RELEASE_BEFORE, exc)
        head = await self._head(conn)
        placed = list(_chained(head, [stored_row(row) for row in rows]))
        ids = [row["record_id"] for row in rows]
        seqs, prevs, hashes = (list(column) for column in zip(*placed, strict=True))
        if await self._advance(conn, LINK_0016, head, ids, seqs, prevs, hashes):
            return len(rows)
        return None

    def _fall_back(self, function: str, release: int, exc: Exception) -> None:
        # Only ever back: the writer and its linker share this mover, and a call sent before the
        # other's refusal moved it further back is refused after it, with nothing new to say.
        if release >= self._release:
            return
        self._release = release
        log.error(
            "the database refused %s (%s: %s): a previous release's `ssogw migrate` has run "
            "since this one's (a rollback?). Appending and linking through migration %04d's "
            "functions until this process restarts; run this release's `ssogw migrate` to "
            "grant them again.", function, type(exc).__name__, exc, release,
        )  # fmt: skip

    async def _head(self, conn: asyncpg.Connection) -> ChainHead:
        if self._known is None:
            row = await conn.fetchrow(HEAD_0016)
            if row is None:
                raise RuntimeError("the audit_chain head row is missing")
            self._known = ChainHead(row["last_seq"], bytes(row["last_hash"]))
        return self._known

    async def _advance(
        self, conn: asyncpg.Connection, sql: str, head: ChainHead, *args: object
    ) -> bool:
        row = await self._call(conn, sql, head.seq, head.hash, *args, fetch=conn.fetchrow)
        # Where the head is now: after this batch, or where another writer left it.
        self._known = ChainHead(row["last_seq"], bytes(row["last_hash"]))
        return bool(row["advanced"])

    async def _call(
        self, conn: asyncpg.Connection, sql: str, *args: object, fetch: Any = None
    ) -> Any:
        try:
            return await (fetch or conn.fetchval)(sql, *args, self._wait_ms)
        except asyncpg.LockNotAvailableError:
            await self._end_holders(conn)
            raise

    async def _end_holders(self, conn: asyncpg.Connection) -> None:
        """End the service role's sessions that have held the head longer than ``hold_s``."""
        try:
            ended = [r["pid"] for r in await conn.fetch(END_HOLDERS, self._hold_s) if r["ended"]]
        except asyncpg.PostgresError as exc:
            log.warning("could not look for sessions holding the audit chain head: %s",
                        type(exc).__name__)  # fmt: skip
            return
        if ended:
            log.error(
                "ended %d database session(s) of the service role that held the audit chain "
                "head for more than %.1f s (pid %s): someone with the gateway's credentials "
                "kept a transaction open on it", len(ended), self._hold_s,
                ", ".join(map(str, ended)),
            )  # fmt: skip
