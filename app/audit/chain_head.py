"""The chain head, moved forward only through the owner's functions (migration 0016).

Why: while the service role could UPDATE ``audit_chain``, any session with its credentials
could hold the head (``SELECT ... FOR UPDATE`` in a transaction left open) and stall every
audited call of the fleet for as long as it liked. The choice made here: the service role keeps
only SELECT on ``audit_chain`` and ``audit_log`` — it can take no row lock on the head — and a
batch goes onto the chain through ``ssogw_audit_append`` (records the writer made) or
``ssogw_audit_link`` (records business transactions committed), SECURITY DEFINER functions of
the owner. Each call is one statement that

* waits for the head's lock at most ``wait_s`` (then SQLSTATE 55P03: the batch fails with
  ``server.audit_unavailable`` at once instead of hanging),
* moves the head only from exactly where the caller saw it, with a batch that continues the
  chain (consecutive seqs, each ``prev_hash`` the hash before it), and
* otherwise answers where the head is now, so the caller hashes its batch again: optimistic,
  one round trip per batch when nobody else appended meanwhile (the head is remembered).

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
from collections.abc import Sequence
from typing import Final
from uuid import UUID

import asyncpg

from app.audit.chain import AuditRow, chain_hash
from app.audit.queries import stored_row
from app.audit.seals.sealer import ChainHead

log = logging.getLogger(__name__)

HEAD: Final = "SELECT last_seq, last_hash FROM audit_chain WHERE id"
APPEND: Final = """
SELECT advanced, last_seq, last_hash FROM ssogw_audit_append(
    $1, $2, $3::bigint[], $4::timestamptz[], $5::text[], $6::integer[], $7::text[], $8::text[],
    $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
    $16::text[], $17::text[], $18::bytea[], $19::bytea[], $20::uuid[], $21)
"""
LINK: Final = """
SELECT advanced, last_seq, last_hash FROM ssogw_audit_link(
    $1, $2, $3::uuid[], $4::bigint[], $5::bytea[], $6::bytea[], $7)
"""
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


def _columns(head: ChainHead, rows: Sequence[tuple[UUID, AuditRow]]) -> list[list[object]]:
    """The batch numbered and hashed after ``head``, as the append function's arrays."""
    seq, prev_hash = head.seq, head.hash
    columns: list[list[object]] = [[] for _ in range(18)]
    for record_id, row in rows:
        seq += 1
        row_hash = chain_hash(prev_hash, seq, row)
        values = (
            seq, row.at, row.principal_kind, row.principal_id, row.principal_name,
            row.operator, row.terminal, row.source_ip, row.protocol, row.operation,
            row.national_id, row.name_returned, row.outcome, row.request_id,
            row.detail_json(), prev_hash, row_hash, record_id,
        )  # fmt: skip
        for column, value in zip(columns, values, strict=True):
            column.append(value)
        prev_hash = row_hash
    return columns


class ChainHeadMover:
    """Appends and links onto the chain through the owner's functions (one per writer, shared
    with its linker), remembering where the head was left."""

    def __init__(self, *, wait_s: float = 1.0, hold_s: float = 10.0) -> None:
        if wait_s <= 0 or hold_s <= 0:
            raise ValueError("wait_s and hold_s must be positive")
        self._wait_ms = max(1, round(wait_s * 1000))
        self._hold_s = hold_s
        self._known: ChainHead | None = None

    async def append(self, conn: asyncpg.Connection, rows: Sequence[tuple[UUID, AuditRow]]) -> None:
        """Put ``rows`` (record id, row) on the chain, hashed after the head as it is then."""
        if not rows:
            return
        while True:
            head = await self._head(conn)
            if await self._advance(conn, APPEND, head, *_columns(head, rows)):
                return

    async def link(self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> bool:
        """Link the waiting ``rows`` (read as ``app.audit.queries`` reads records) after the
        head; False when another writer moved it first (read the waiting rows again)."""
        head = await self._head(conn)
        seq, prev_hash = head.seq, head.hash
        ids, seqs, prevs, hashes = [], [], [], []
        for row in rows:
            seq += 1
            row_hash = chain_hash(prev_hash, seq, stored_row(row))
            ids.append(row["record_id"])
            seqs.append(seq)
            prevs.append(prev_hash)
            hashes.append(row_hash)
            prev_hash = row_hash
        return await self._advance(conn, LINK, head, ids, seqs, prevs, hashes)

    async def _head(self, conn: asyncpg.Connection) -> ChainHead:
        if self._known is None:
            row = await conn.fetchrow(HEAD)
            if row is None:
                raise RuntimeError("the audit_chain head row is missing")
            self._known = ChainHead(row["last_seq"], bytes(row["last_hash"]))
        return self._known

    async def _advance(
        self, conn: asyncpg.Connection, sql: str, head: ChainHead, *args: object
    ) -> bool:
        try:
            row = await conn.fetchrow(sql, head.seq, head.hash, *args, self._wait_ms)
        except asyncpg.LockNotAvailableError:
            await self._end_holders(conn)
            raise
        # Where the head is now: after this batch, or where another writer left it.
        assert row is not None
        self._known = ChainHead(row["last_seq"], bytes(row["last_hash"]))
        return bool(row["advanced"])

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
