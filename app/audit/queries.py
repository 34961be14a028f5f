"""The audit trail's queries on PostgreSQL: lookups by national ID, the chain walk of verify and
export, and the database side of sealing.

Implements ``app.audit.service.AuditQueries`` and ``app.audit.seals.sealer.SealLedger``.
Lookups read the ``(national_id, at)`` index of each monthly partition backwards and page by
keyset ``(at, seq)``. Verify and export walk ``seq`` order in chunks of ``chunk`` rows (each
its own short statement, so nothing holds a snapshot for the whole walk and only one chunk is
ever in memory). Sealing takes a transaction-level advisory lock (every instance of the fleet
waits for the same one, at most the round's wait: ``lock_timeout``, then ``SealBlocked``
naming the sessions that hold it) and only reads the head and appends to ``audit_seals``: the
service's role needs no UPDATE or DELETE there.

Lookups also see the records committed by business transactions that are still waiting for
their chain link (``audit_unlinked``, seq NULL, sorted as ``UNLINKED_SEQ``): a record is a
record once committed; verify counts them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from app.audit.chain import GENESIS_HASH, AuditRow, ChainChecker
from app.audit.records import UNLINKED_SEQ, LookupCursor, LookupRecord, VerifyResult
from app.audit.seals.checkpoint import Checkpoint, SealCheck
from app.audit.seals.sealer import COPIES_PAGE, ChainHead, MakeCheckpoints, SealBlocked
from app.db.failures import translated
from app.feed.records import PART_DIGEST_SQL, manifest_digest
from app.feed.records import START_OPERATION as FEED_START

EARLIEST: Final = datetime(1, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
_COLUMNS: Final = """at, national_id, principal_kind, principal_id, principal_name, operator,
       terminal, host(source_ip) AS source_ip, protocol, operation, name_returned, outcome,
       request_id,
       CASE WHEN detail->>'aggregated' = 'true' THEN (detail->>'calls')::int ELSE 1 END AS calls,
       CASE WHEN detail->>'aggregated' = 'true' THEN (detail->>'last_at')::timestamptz END
         AS last_at"""
# A waiting record sorts as seq UNLINKED_SEQ ($7), so it is on the page before a cursor at the
# same instant, and on the next page when the cursor is at a later one.
LOOKUPS: Final = f"""
(SELECT seq, {_COLUMNS} FROM audit_log
  WHERE national_id = $1 AND at >= $2 AND at < $3 AND (at, seq) < ($4, $5)
  ORDER BY at DESC, seq DESC LIMIT $6)
UNION ALL
(SELECT NULL::bigint, {_COLUMNS} FROM audit_unlinked
  WHERE national_id = $1 AND at >= $2 AND at < $3 AND (at, $7::bigint) < ($4, $5)
  ORDER BY at DESC LIMIT $6)
ORDER BY at DESC, seq DESC NULLS FIRST
LIMIT $6
"""
UNLINKED: Final = "SELECT count(*) FROM audit_unlinked WHERE at >= $1 AND at < $2"
# Records in the range that are not on the chain at all (a seq past the head, or below 1):
# lookups would show them, so verify must name them.
OFF_CHAIN: Final = """
SELECT seq, at FROM audit_log
WHERE at >= $1 AND at < $2 AND (seq > $3 OR seq < 1)
ORDER BY seq LIMIT 1
"""
# The feed exports whose manifest holds the ID ($7, as a number), each as its start record.
FEED_LOOKUPS: Final = """
SELECT a.seq, a.at, $1::text AS national_id, a.principal_kind, a.principal_id, a.principal_name,
       a.operator, a.terminal, host(a.source_ip) AS source_ip, a.protocol, a.operation,
       NULL::text AS name_returned, a.outcome, a.request_id,
       a.detail->>'partner' AS feed_partner, a.detail->>'export_id' AS feed_export_id
FROM audit_feed_manifest m
JOIN audit_log a ON a.at = m.at AND a.operation = $8
                AND a.detail->>'export_id' = m.export_id::text
WHERE m.national_ids @> ARRAY[$7::bigint] AND m.at >= $2 AND m.at < $3
  AND (a.at, a.seq) < ($4, $5)
ORDER BY a.at DESC, a.seq DESC
LIMIT $6
"""
HEAD: Final = "SELECT last_seq, last_hash FROM audit_chain WHERE id"
SPAN: Final = """
SELECT min(seq) AS first, max(seq) AS last FROM audit_log
WHERE at >= $1 AND at < $2 AND seq <= $3
"""
HASH_AT: Final = "SELECT at, prev_hash, hash FROM audit_log WHERE seq = $1 ORDER BY at LIMIT 1"
CHUNK: Final = """
SELECT seq, at, principal_kind, principal_id, principal_name, operator, terminal,
       host(source_ip) AS source_ip, protocol, operation, national_id, name_returned,
       outcome, request_id, detail::text AS detail, prev_hash, hash
FROM audit_log
WHERE seq >= $1 AND seq <= $3 AND (seq, at) > ($1, $2)
ORDER BY seq, at
LIMIT $4
"""
# The parts of one feed export's manifest, each with its digest, for the start record's seal.
MANIFEST_PARTS: Final = f"""
SELECT part, cardinality(national_ids) AS persons,
       {PART_DIGEST_SQL.format("national_ids")} AS digest
FROM audit_feed_manifest WHERE at = $1 AND export_id::text = $2
ORDER BY part
"""
SEAL_LOCK: Final = 0x55_47_57_53  # one sealer at a time across the fleet (the migrator's is ...4D)
SEAL_LOCK_WAIT: Final = "SELECT set_config('lock_timeout', $1, true)"
TAKE_SEAL_LOCK: Final = "SELECT pg_advisory_xact_lock($1)"
# Who holds the seal lock (a bigint key is classid: its high half, objid: its low half).
SEAL_LOCK_HOLDERS: Final = """
SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY pid
"""
_CHECKPOINT_COLUMNS: Final = (
    "SELECT checkpoint, seq, head_hash, sealed_at, prev_digest, key_id, signature FROM audit_seals"
)
CHECKPOINTS: Final = _CHECKPOINT_COLUMNS + " ORDER BY checkpoint"
NEWEST_CHECKPOINTS: Final = (
    _CHECKPOINT_COLUMNS + " WHERE checkpoint < $1 ORDER BY checkpoint DESC LIMIT $2"
)
ADD_CHECKPOINT: Final = """
INSERT INTO audit_seals (checkpoint, seq, head_hash, sealed_at, prev_digest, key_id, signature)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


def stored_row(record: asyncpg.Record) -> AuditRow:
    """A row as read back from the database (``host(source_ip)``, ``detail::text``)."""
    detail: Any = None if record["detail"] is None else json.loads(record["detail"])
    return AuditRow(
        at=record["at"],
        principal_kind=record["principal_kind"],
        principal_id=record["principal_id"],
        principal_name=record["principal_name"],
        operator=record["operator"],
        terminal=record["terminal"],
        source_ip=record["source_ip"],
        protocol=record["protocol"],
        operation=record["operation"],
        national_id=record["national_id"],
        name_returned=record["name_returned"],
        outcome=record["outcome"],
        request_id=record["request_id"],
        detail=detail,
    )


class AuditQueries:
    """Audit lookups and chain verification over a pool (primary, or a replica for reads)."""

    def __init__(self, *, pool_provider: Callable[[], asyncpg.Pool], chunk: int = 5000) -> None:
        self._pool_provider = pool_provider
        self._chunk = chunk

    async def lookups(
        self,
        *,
        national_id: str,
        from_: datetime | None,
        to: datetime | None,
        limit: int,
        after: LookupCursor | None,
    ) -> list[LookupRecord]:
        """Records of ``national_id`` with ``from_ <= at < to``, newest first, after ``after``."""
        cursor_at, cursor_seq = (after.at, after.seq) if after else (LATEST, UNLINKED_SEQ)
        span = (national_id, from_ or EARLIEST, to or LATEST, cursor_at, cursor_seq, limit)
        async with translated("audit"):
            rows = await self._pool_provider().fetch(LOOKUPS, *span, UNLINKED_SEQ)
            feeds = await self._pool_provider().fetch(
                FEED_LOOKUPS, *span, int(national_id), FEED_START
            )
        found = [LookupRecord(**dict(row)) for row in (*rows, *feeds)]
        found.sort(key=lambda r: (r.at, UNLINKED_SEQ if r.seq is None else r.seq), reverse=True)
        return found[:limit]

    async def verify(
        self, *, from_: datetime | None, to: datetime | None, seals: SealCheck | None = None
    ) -> VerifyResult:
        """Recompute every hash and link of the records in the range, in ``seq`` order, and
        hold them to the ``seals`` (checkpoints that verified) over the range and the head."""
        async with translated("audit"), self._pool_provider().acquire() as conn:
            return await self._verify(conn, from_, to, seals)

    async def _verify(
        self,
        conn: asyncpg.Connection,
        from_: datetime | None,
        to: datetime | None,
        seals: SealCheck | None,
    ) -> VerifyResult:
        head = await _head(conn)
        unlinked: int = await conn.fetchval(UNLINKED, from_ or EARLIEST, to or LATEST)
        stray = await conn.fetchrow(OFF_CHAIN, from_ or EARLIEST, to or LATEST, head.seq)
        first, last = 1, head.seq
        if from_ is not None or to is not None:
            span = await conn.fetchrow(SPAN, from_ or EARLIEST, to or LATEST, head.seq)
            if span is None or span["first"] is None:
                empty = ChainChecker(first_seq=1, anchor=None, seals=seals)  # nothing to seal
                _stray(empty, stray)
                empty.expect_sealed(head.seq)
                return replace(
                    empty.result(first_seq=None, last_seq=None, head_seq=head.seq),
                    unlinked=unlinked,
                )
            first = 1 if from_ is None else span["first"]
            last = head.seq if to is None else span["last"]
        checker = ChainChecker(
            first_seq=first, anchor=await self._anchor(conn, first), seals=seals,
            require_seal=seals is not None,
        )  # fmt: skip
        if checker.prev_hash is None:
            checker.missing(first - 1, first - 1)
        feeds: list[tuple[int, AuditRow]] = []
        async for rows in self._chunks(conn, first, last):
            for seq, row, prev_hash, stored_hash in rows:
                checker.feed(seq, row, prev_hash=prev_hash, stored_hash=stored_hash)
                if row.operation == FEED_START and "manifest_sha256" in (row.detail or {}):
                    feeds.append((seq, row))
        await _check_manifests(conn, checker, feeds)
        checker.expect_end(last)
        await self._check_successor(conn, checker, last, head.seq, head.hash)
        _stray(checker, stray)
        checker.expect_sealed(head.seq)
        return replace(
            checker.result(first_seq=first, last_seq=last, head_seq=head.seq), unlinked=unlinked
        )

    async def _chunks(
        self, conn: asyncpg.Connection, first: int, last: int
    ) -> AsyncIterator[list[tuple[int, AuditRow, bytes, bytes]]]:
        cursor: tuple[int, datetime] = (first - 1, LATEST)
        while True:
            rows = await conn.fetch(CHUNK, cursor[0], cursor[1], last, self._chunk)
            yield [(r["seq"], stored_row(r), bytes(r["prev_hash"]), bytes(r["hash"])) for r in rows]
            if len(rows) < self._chunk:
                return
            cursor = (rows[-1]["seq"], rows[-1]["at"])

    async def head(self) -> ChainHead:
        """The chain's head as the head row names it."""
        async with translated("audit"), self._pool_provider().acquire() as conn:
            return await _head(conn)

    async def records(
        self, *, last: int
    ) -> AsyncIterator[list[tuple[int, AuditRow, bytes, bytes]]]:
        """The stored rows up to seq ``last`` in ``seq`` order, a chunk at a time, each row as
        ``(seq, row, prev_hash, hash)``."""
        async with translated("audit"), self._pool_provider().acquire() as conn:
            async for rows in self._chunks(conn, 1, last):
                yield rows

    async def checkpoint_copies(self) -> list[Checkpoint]:
        """The database's copies of the checkpoints (``audit_seals``), by number."""
        async with translated("audit"):
            rows = await self._pool_provider().fetch(CHECKPOINTS)
        return [_checkpoint(row) for row in rows]

    async def seal(self, make: MakeCheckpoints, *, wait_s: float) -> None:
        """Under the fleet's seal lock, in one transaction: ``make`` the checkpoints from the
        head and the copies, and copy them in. SealBlocked when the lock, or a row to add, is
        held by another session for longer than ``wait_s``."""
        async with self._pool_provider().acquire() as conn, conn.transaction():
            await conn.execute(SEAL_LOCK_WAIT, f"{max(1, round(wait_s * 1000))}ms")
            try:
                await conn.execute(TAKE_SEAL_LOCK, SEAL_LOCK)
            except asyncpg.LockNotAvailableError:
                holders = await self._pool_provider().fetch(SEAL_LOCK_HOLDERS, SEAL_LOCK)
                pids = ", ".join(str(r["pid"]) for r in holders) or "none by now"
                raise SealBlocked(
                    f"the seal lock was held by another session for more than {wait_s:g} s "
                    f"(pid {pids}; pg_locks, advisory key {SEAL_LOCK})"
                ) from None
            made = await make(_Round(conn, await _head(conn)))
            try:
                for cp in made:
                    await conn.execute(
                        ADD_CHECKPOINT, cp.number, cp.seq, cp.head_hash, cp.sealed_at,
                        cp.prev_digest, cp.key_id, cp.signature,
                    )  # fmt: skip
            except asyncpg.LockNotAvailableError:
                raise SealBlocked(
                    f"another session's uncommitted row of audit_seals held checkpoint "
                    f"{made[-1].number} for more than {wait_s:g} s (its file is kept)"
                ) from None

    @staticmethod
    async def _anchor(conn: asyncpg.Connection, first: int) -> bytes | None:
        """The hash the record at ``first`` must chain to (None if its predecessor is gone)."""
        if first <= 1:
            return GENESIS_HASH
        before = await conn.fetchrow(HASH_AT, first - 1)
        return None if before is None else bytes(before["hash"])

    @staticmethod
    async def _check_successor(
        conn: asyncpg.Connection, checker: ChainChecker, last: int, head_seq: int, head_hash: bytes
    ) -> None:
        """A range must also hold to what follows it: the next record, or the chain's head."""
        if last >= head_seq:
            if checker.prev_hash is not None and checker.prev_hash != head_hash:
                checker.fail(last, None, "the chain head does not match the last record's hash")
            return
        after = await conn.fetchrow(HASH_AT, last + 1)
        if after is None:
            checker.missing(last + 1, last + 1)
        elif bytes(after["prev_hash"]) != checker.prev_hash:
            reason = "prev_hash does not match the previous record's hash"
            checker.fail(last + 1, after["at"], reason)


async def _check_manifests(
    conn: asyncpg.Connection, checker: ChainChecker, feeds: list[tuple[int, AuditRow]]
) -> None:
    """Hold each feed export's manifest of persons to the digest its start record sealed."""
    for seq, row in feeds:
        detail = row.detail
        export_id = str(detail.get("export_id"))
        parts = [
            (r["part"], r["persons"], bytes(r["digest"]))
            for r in await conn.fetch(MANIFEST_PARTS, row.at, export_id)
        ]
        if manifest_digest(export_id, parts) != detail["manifest_sha256"]:
            persons = sum(size for _, size, _ in parts)
            checker.fail(seq, row.at, (
                f"feed export {export_id} to partner {detail.get('partner')}: its manifest of "
                f"persons ({len(parts)} part(s), {persons} ID(s) now; {detail.get('persons')} "
                "when sent) does not match the digest its start record sealed: manifest rows "
                "were edited, added or removed"
            ))  # fmt: skip


def _stray(checker: ChainChecker, stray: asyncpg.Record | None) -> None:
    if stray is not None:
        checker.fail(
            stray["seq"], stray["at"], "a record off the chain (not between 1 and its head)"
        )


async def _head(conn: asyncpg.Connection) -> ChainHead:
    head = await conn.fetchrow(HEAD)
    if head is None:
        raise RuntimeError("the audit_chain head row is missing")
    return ChainHead(head["last_seq"], bytes(head["last_hash"]))


class _Round:
    """A seal round's view of the database, inside its transaction."""

    def __init__(self, conn: asyncpg.Connection, head: ChainHead) -> None:
        self._conn = conn
        self.head = head

    async def copies(self, *, before: int | None) -> list[Checkpoint]:
        """The copies numbered below ``before`` (all when None), newest first, a page."""
        below = 2**63 - 1 if before is None else before
        return [_checkpoint(r) for r in await self._conn.fetch(NEWEST_CHECKPOINTS, below,
                                                                   COPIES_PAGE)]  # fmt: skip


def _checkpoint(row: asyncpg.Record) -> Checkpoint:
    return Checkpoint(
        number=row["checkpoint"],
        seq=row["seq"],
        head_hash=bytes(row["head_hash"]),
        sealed_at=row["sealed_at"],
        prev_digest=bytes(row["prev_digest"]),
        key_id=row["key_id"],
        signature=bytes(row["signature"]),
    )
