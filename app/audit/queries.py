"""The audit trail's queries on PostgreSQL: lookups by national ID, and the chain walk of verify.

Implements ``app.audit.service.AuditQueries``. Lookups read the ``(national_id, at)``
index of each monthly partition backwards and page by keyset ``(at, seq)``; they also see the
records committed by business transactions that are still waiting for their chain link
(``audit_unlinked``, seq NULL, sorted as ``UNLINKED_SEQ``): a record is a record once
committed. Verify walks ``seq`` order in chunks of ``chunk`` rows (each its own short
statement, so nothing holds a snapshot for the whole walk and only one chunk is ever in
memory), and counts the records still waiting for their link.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from app.audit.chain import GENESIS_HASH, AuditRow, ChainChecker
from app.audit.records import (
    UNLINKED_SEQ,
    BrokenRecord,
    LookupCursor,
    LookupRecord,
    VerifyResult,
)
from app.db.failures import translated

EARLIEST: Final = datetime(1, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
_COLUMNS: Final = """at, national_id, principal_kind, principal_id, principal_name, operator,
       terminal, host(source_ip) AS source_ip, protocol, operation, name_returned, outcome,
       request_id"""
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
        async with translated("audit"):
            rows = await self._pool_provider().fetch(
                LOOKUPS, national_id, from_ or EARLIEST, to or LATEST, cursor_at, cursor_seq,
                limit, UNLINKED_SEQ,
            )  # fmt: skip
        return [LookupRecord(**dict(row)) for row in rows]

    async def verify(self, *, from_: datetime | None, to: datetime | None) -> VerifyResult:
        """Recompute every hash and link of the records in the range, in ``seq`` order."""
        async with translated("audit"), self._pool_provider().acquire() as conn:
            return await self._verify(conn, from_, to)

    async def _verify(
        self, conn: asyncpg.Connection, from_: datetime | None, to: datetime | None
    ) -> VerifyResult:
        head = await conn.fetchrow(HEAD)
        if head is None:
            raise RuntimeError("the audit_chain head row is missing")
        unlinked: int = await conn.fetchval(UNLINKED, from_ or EARLIEST, to or LATEST)
        head_seq: int = head["last_seq"]
        first, last = 1, head_seq
        if from_ is not None or to is not None:
            span = await conn.fetchrow(SPAN, from_ or EARLIEST, to or LATEST, head_seq)
            if span is None or span["first"] is None:
                return VerifyResult(checked=0, ok=True, first_broken=None, unlinked=unlinked)
            first = 1 if from_ is None else span["first"]
            last = head_seq if to is None else span["last"]
        checker = ChainChecker(first_seq=first, anchor=await self._anchor(conn, first))
        if checker.prev_hash is None:
            checker.missing(first - 1, first - 1)
        cursor: tuple[int, datetime] = (first - 1, LATEST)
        while True:
            rows = await conn.fetch(CHUNK, cursor[0], cursor[1], last, self._chunk)
            for row in rows:
                checker.feed(
                    row["seq"], stored_row(row), prev_hash=bytes(row["prev_hash"]),
                    stored_hash=bytes(row["hash"]),
                )  # fmt: skip
            if len(rows) < self._chunk:
                break
            cursor = (rows[-1]["seq"], rows[-1]["at"])
        checker.expect_end(last)
        await self._check_successor(conn, checker, last, head_seq, bytes(head["last_hash"]))
        broken = checker.first_break
        return VerifyResult(
            checked=checker.checked,
            ok=broken is None,
            first_broken=None
            if broken is None
            else BrokenRecord(broken.seq, broken.at, broken.reason),
            broken=checker.broken,
            first_seq=first,
            last_seq=last,
            unlinked=unlinked,
        )

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
