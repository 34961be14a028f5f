"""Records a business transaction commits itself, and the linker that puts them on the chain.

A confirm's record must commit with its payment or not at all, so it is written in the
payment's own transaction (``add_unlinked``, on that transaction's connection) into
``audit_unlinked``: a record from the moment it commits, with its id, but without its place on
the hash chain. The linker (``AuditLinker``, the writer's) then moves such rows onto the chain:
it reads every row it can see — those committed so far, oldest first — and gives each its
canonical form exactly as ``ssogw audit verify`` will read it back; in one statement, under the
chain-head lock, the owner's function numbers and hashes those still waiting, inserts them into
``audit_log``, deletes them here and moves the head.

Every instance links every instance's rows, so rows left behind by an instance that crashed
are linked by the next linker that looks (each looks at start, whenever a record of its own
was committed, and every ``sweep_interval_s``); the head lock keeps one line across instances.
A row that cannot be linked stays where it is, committed and visible to lookups, and the
linker tries again. (The service role itself may not delete from ``audit_unlinked``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final
from uuid import uuid4

import asyncpg

from app.audit.chain import prepare
from app.audit.chain_head import ChainHeadMover
from app.audit.records import AuditRecord
from app.db.failures import translate
from app.errors import AuditUnavailable

log = logging.getLogger(__name__)

# The 15 columns' placeholders: source_ip and detail arrive as text and are cast.
_PLACES: Final = ("${}",) * 7 + ("${}::text::inet",) + ("${}",) * 6 + ("${}::text::jsonb",)


def add_sql(first: int = 1) -> str:
    """The INSERT of one record, its parameters ``add_args`` numbered from ``$first``: a
    statement may carry it beside writes of its own (a confirm's insert does, one round trip)."""
    places = ", ".join(p.format(first + i) for i, p in enumerate(_PLACES))
    return (
        "INSERT INTO audit_unlinked (record_id, at, principal_kind, principal_id,"
        " principal_name, operator, terminal, source_ip, protocol, operation, national_id,"
        f" name_returned, outcome, request_id, detail) VALUES ({places})"
    )


ADD: Final = add_sql()
ANY_WAITING: Final = "SELECT EXISTS (SELECT 1 FROM audit_unlinked)"
# In the form verify reads audit_log in (app.audit.queries), so the hash is the one it expects.
# Not a record whose key the chain already holds (a decoy appended under its id: the link
# function leaves it waiting, migration 0017), so such records never fill a batch.
# A batch costs the batch, however many records wait behind it or are chained
# (tests/integration/test_audit_backlog.py counts the rows read):
# - the queue is read in the order of its index on (at in UTC, record_id) (migration 0018):
#   the order of `at`, in a form lookups by ID cannot take for theirs; the read stops once it
#   has its batch;
# - the check is one index probe per record read, in the month's partition its time names.
#   `OFFSET 0` keeps it that: the planner may not turn such a subquery into a join, and a join
#   was what read every record of the chain on each batch (a hash anti-join: 25 ms a batch on
#   the bench pair, bench/RESULTS.md, session 10). Without a join it estimates the check to
#   keep half the records (a LATERAL's `IS NULL` it guessed at 0.5 %), so it prefers the
#   index's order to reading and sorting the whole queue.
WAITING: Final = """
SELECT u.record_id, u.at, u.principal_kind, u.principal_id, u.principal_name, u.operator,
       u.terminal, host(u.source_ip) AS source_ip, u.protocol, u.operation, u.national_id,
       u.name_returned, u.outcome, u.request_id, u.detail::text AS detail
FROM audit_unlinked u
WHERE NOT EXISTS (SELECT 1 FROM audit_log a
                   WHERE a.at = u.at AND a.record_id = u.record_id OFFSET 0)
ORDER BY u.at AT TIME ZONE 'UTC', u.record_id
LIMIT $1
"""


def add_args(record: AuditRecord) -> tuple[object, ...]:
    """The parameters of ``add_sql`` for ``record`` (a new record id); ValueError/TypeError if
    the record can never be stored."""
    row = prepare(record)
    return (
        uuid4(), row.at, row.principal_kind, row.principal_id, row.principal_name, row.operator,
        row.terminal, row.source_ip, row.protocol, row.operation, row.national_id,
        row.name_returned, row.outcome, row.request_id, row.detail_json(),
    )  # fmt: skip


def refused_record(exc: asyncpg.PostgresError) -> AuditUnavailable | None:
    """What a statement writing a record fails with when the database refused it:
    ``AuditUnavailable`` (the transaction is then failed, and with it the call's writes), or
    None for the store's own unavailability, which is left to the caller's translation."""
    if translate(exc, store="audit") is not None:
        return None
    # Only the class and SQLSTATE: a message may quote values, and values may be IDs.
    log.warning("audit record refused in its transaction: %s (sqlstate %s)",
                type(exc).__name__, exc.sqlstate)  # fmt: skip
    return AuditUnavailable(cause=exc.sqlstate)


async def add_unlinked(conn: asyncpg.Connection, record: AuditRecord) -> None:
    """Write ``record`` in the transaction open on ``conn`` (it commits with it).

    AuditUnavailable if the database refuses the record itself (the transaction is then
    failed, and with it the call's writes); an unreachable store is left to the caller.
    """
    args = add_args(record)
    try:
        await conn.execute(ADD, *args)
    except asyncpg.PostgresError as exc:
        failure = refused_record(exc)
        if failure is None:
            raise
        raise failure from exc


class AuditLinker:
    """Links the records business transactions committed onto the hash chain, in the
    background, in batches of at most ``max_batch``, on ``pool_provider()``."""

    def __init__(
        self,
        *,
        pool_provider: Callable[[], asyncpg.Pool],
        max_batch: int,
        max_wait_ms: float,
        sweep_interval_s: float = 1.0,
        commit_timeout_s: float = 5.0,
        head: ChainHeadMover | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._pool_provider = pool_provider
        self._max_batch = max_batch
        self._max_wait_s = max(0.0, max_wait_ms) / 1000.0
        self._sweep_s = sweep_interval_s
        self._commit_timeout_s = commit_timeout_s
        self._head = head or ChainHeadMover()
        self._nudged = asyncio.Event()
        self._stopping = asyncio.Event()  # set by stop(); also cuts a wait for company short
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start linking (once); the first look is at once (rows a crash left behind)."""
        if self._task is None:
            self._stopping.clear()
            self._nudged.set()
            self._task = asyncio.create_task(self._run(), name="audit-linker")

    async def stop(self) -> None:
        """Link what is committed by now (if the primary lets it), then stop."""
        if self._task is None:
            return
        self._stopping.set()
        self._nudged.set()
        try:
            await self._task
        finally:
            self._task = None

    def nudge(self) -> None:
        """A record was committed in a business transaction: link soon."""
        self._nudged.set()

    async def link(self) -> int:
        """Link every record committed so far; how many this linker linked (others may have
        linked some of them meanwhile)."""
        total = 0
        while True:
            read, linked = await self._link_batch()
            total += linked
            if read < self._max_batch:
                return total

    async def _run(self) -> None:
        first = True  # the look at start is at once
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sweep_s):
                    await self._nudged.wait()
            nudged = self._nudged.is_set()
            if nudged and not first and not self._stopping.is_set() and self._max_wait_s > 0:
                # Confirms committing meanwhile share one link statement: no call waits for
                # its link, and a link costs much the same for one record as for twenty.
                # Stopping cuts the wait short.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._max_wait_s):
                        await self._stopping.wait()
            first = False
            self._nudged.clear()
            try:
                if nudged or await self._any_waiting():
                    await self.link()
            except Exception as exc:  # the rows stay committed: try again later
                log.warning("audit records not linked yet: %s (sqlstate %s)",
                            type(exc).__name__, getattr(exc, "sqlstate", None))  # fmt: skip
                if not self._stopping.is_set():
                    await asyncio.sleep(self._sweep_s)
            if self._stopping.is_set():
                return

    async def _any_waiting(self) -> bool:
        async with asyncio.timeout(self._commit_timeout_s):
            waiting: bool = await self._pool_provider().fetchval(ANY_WAITING)
        return waiting

    async def _link_batch(self) -> tuple[int, int]:
        """One batch: (waiting records read, records this call linked)."""
        pool = self._pool_provider()
        async with asyncio.timeout(self._commit_timeout_s), pool.acquire() as conn:
            # Those another instance's linker moved meanwhile are skipped by the function.
            while True:  # again only on 0016's path, when another writer moved the head first
                rows = await conn.fetch(WAITING, self._max_batch)
                linked = await self._head.link(conn, rows)
                if linked is not None:
                    return len(rows), linked
