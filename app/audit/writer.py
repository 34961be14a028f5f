"""The audit writer: group commit of audit records onto one hash chain on the primary.

Callers ``await record(rec)``; their records queue up and one background task writes them, a
batch at a time, in one statement (``app.audit.chain_head``): each record's canonical form
without its place goes to the owner's append function, which under the head's lock (so every
instance of the service appends to the same single line) numbers and hashes the records after
the head, inserts them and moves the head; it commits, and only then is every caller of the
batch woken. If the batch cannot be committed every caller in it gets ``AuditUnavailable``; the
writer goes on with the next batch — except when the primary is unreachable and a spool is
configured: the batch is then committed to the local spool (``audit_spool``) and moved onto the
chain when the primary answers again, each record once (by its id).

Records that business transactions committed themselves (a confirm's, with its payment) are
put on the same chain by the writer's linker (``app.audit.unlinked``): ``link_soon()`` wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID, uuid4

import asyncpg

from app.audit.chain import AuditRow, prepare
from app.audit.chain_head import ChainHeadMover
from app.audit.records import TOGETHER, AuditRecord
from app.audit.spool.files import AuditSpool, SpoolUnusable
from app.audit.spool.replay import SpoolReplay
from app.audit.unlinked import AuditLinker
from app.db.failures import translate
from app.errors import AuditUnavailable, StoreUnavailable

log = logging.getLogger(__name__)

#: A writer whose last batch held this many records or more sends the next at once, without
#: lingering for company (``_linger``).
LINGER_BELOW = 8

# Which of a replayed batch's records the chain already holds.
ON_CHAIN = """
SELECT l.record_id FROM audit_log l
  JOIN unnest($1::timestamptz[], $2::uuid[]) AS r(at, record_id)
    ON l.at = r.at AND l.record_id = r.record_id
"""


class _Observes(Protocol):
    def observe(self, amount: float) -> None: ...


class _Counts(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class AuditMetrics(Protocol):
    """The three audit metrics of ``app.observability.metrics.Metrics``."""

    @property
    def audit_batch_size(self) -> _Observes: ...

    @property
    def audit_commit_seconds(self) -> _Observes: ...

    @property
    def audit_failures(self) -> _Counts: ...


@dataclass(slots=True)
class _Pending:
    record_id: UUID
    row: AuditRow
    done: asyncio.Future[None]


class AuditWriter:
    """An ``AuditSink`` that commits records in batches (group commit) on ``pool_provider()``."""

    def __init__(
        self,
        *,
        pool_provider: Callable[[], asyncpg.Pool],
        max_batch: int,
        max_wait_ms: float,
        metrics: AuditMetrics | None = None,
        commit_timeout_s: float = 5.0,
        max_queued: int | None = None,
        spool: AuditSpool | None = None,
        link_interval_s: float | None = None,
        link_wait_ms: float | None = None,
        head_wait_s: float = 1.0,
        head_hold_s: float = 10.0,
    ) -> None:
        """``link_interval_s``: link records committed by business transactions (this often at
        least, and whenever ``link_soon()`` is called); None: leave them to other instances.
        ``link_wait_ms``: how long the linker, woken by ``link_soon()``, waits for more such
        records to link together (``max_wait_ms`` unless given). ``head_wait_s``: how long a
        batch waits for the chain head's lock before it fails; ``head_hold_s``: a session of
        the service role holding the head longer is ended."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._pool_provider = pool_provider
        self._max_batch = max_batch
        self._max_wait_s = max(0.0, max_wait_ms) / 1000.0
        self._metrics = metrics
        self._commit_timeout_s = commit_timeout_s
        # While the database is slow or gone, callers beyond this many fail at once instead of
        # piling up behind batches that will time out.
        self._max_queued = max_queued if max_queued is not None else 20 * max_batch
        self._queue: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_batch = 0  # records in the batch sent last
        self._spool = spool
        self._replay = (
            None
            if spool is None
            else SpoolReplay(
                spool,
                append=lambda rows: self._write(rows, replay=True),
                max_batch=max_batch,
                timeout_s=commit_timeout_s,
            )
        )
        self._head = ChainHeadMover(wait_s=head_wait_s, hold_s=head_hold_s)
        self._linker = (
            None
            if link_interval_s is None
            else AuditLinker(
                pool_provider=pool_provider,
                max_batch=max_batch,
                max_wait_ms=max_wait_ms if link_wait_ms is None else link_wait_ms,
                sweep_interval_s=link_interval_s,
                commit_timeout_s=commit_timeout_s,
                head=self._head,
            )
        )

    async def claim_spool(self) -> None:
        """Make the spool directory this instance's (SpoolUnusable if it cannot be written or
        another running instance holds it)."""
        if self._spool is not None:
            try:
                await asyncio.to_thread(self._spool.claim)
            except SpoolUnusable as exc:
                log.critical("%s: this instance does not start", exc)  # one line, before uvicorn's
                raise

    async def start(self) -> None:
        """Claim the spool, start the background writer and the linker (once)."""
        if self._task is None:
            await self.claim_spool()
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="audit-writer")
            if self._linker is not None:
                await self._linker.start()

    async def stop(self) -> None:
        """Refuse new records, commit everything queued, stop the writer and the linker, and
        let go of the spool."""
        try:
            if self._task is not None:
                self._stopping = True
                self._arrived.set()
                self._full.set()
                try:
                    await self._task
                finally:
                    self._task = None
            if self._linker is not None:
                await self._linker.stop()
        finally:
            if self._spool is not None:
                self._spool.release()

    def queued(self) -> int:
        """Records waiting for their group commit now."""
        return len(self._queue)

    def spool_writable(self) -> bool:
        """Whether records could be committed to the spool now (False without a spool)."""
        return self._spool is not None and self._spool.writable()

    def spooled_bytes(self) -> int:
        """Bytes in this instance's spool waiting for the primary (0 without a spool)."""
        return self._spool.pending_bytes() if self._spool is not None else 0

    def link_soon(self) -> None:
        """A record was committed inside a business transaction: wake the linker."""
        if self._linker is not None:
            self._linker.nudge()

    @property
    def together(self) -> int:
        """A listing's records at once: ``TOGETHER``, or a quarter of the queue if that is less
        (a small ``SSOGW_AUDIT_MAX_BATCH``), so other callers' records still find room."""
        return max(1, min(TOGETHER, self._max_queued // 4))

    async def record(self, record: AuditRecord) -> None:
        """Commit ``record`` with whatever else is queued; AuditUnavailable if it cannot be.

        A record that can never be stored (naive time, malformed address, non-JSON detail)
        raises ValueError or TypeError here, before it could fail anyone else's batch.
        """
        if self._task is None or self._stopping:
            raise AuditUnavailable("the audit writer is not running", reason="not_running")
        if len(self._queue) >= self._max_queued:
            raise AuditUnavailable("the audit writer is falling behind", reason="queue_full")
        row = prepare(record)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(uuid4(), row, done))
        self._arrived.set()
        if len(self._queue) >= self._max_batch:
            self._full.set()
        # A cancelled caller's record is still written: the call it describes may have happened.
        await done

    # --- the background task -----------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._stopping:
                        return
                    self._arrived.clear()
                    if self._replay is not None and self._replay.waiting():
                        # Idle with spooled records: try the primary again every second.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(1.0):
                                await self._arrived.wait()
                        await self._replay.replay()
                        continue
                    await self._arrived.wait()
                    await self._linger()
                batch = [
                    self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))
                ]
                self._last_batch = len(batch)
                committed = bool(batch) and await self._commit(batch)
                if committed and self._replay is not None and self._replay.waiting():
                    await self._replay.replay()  # the primary is back: catch up
        finally:
            leftover = list(self._queue)
            self._queue.clear()
            self._fail(leftover, AuditUnavailable("the audit writer stopped", reason="stopped"))

    async def _linger(self) -> None:
        # The writer was idle: wait a moment so callers arriving together share one commit.
        # Records that queued up during a commit go out at once; they have waited already.
        # Not after a batch of LINGER_BELOW or more: under load, calls come in waves and the
        # wave's first record is better sent alone at once, the rest queuing behind its commit,
        # than held while the whole wave waits (measured: bench/RESULTS.md, session 8).
        if (
            self._max_wait_s <= 0
            or self._stopping
            or len(self._queue) >= self._max_batch
            or self._last_batch >= LINGER_BELOW
        ):
            return
        self._full.clear()
        try:
            async with asyncio.timeout(self._max_wait_s):
                await self._full.wait()
        except TimeoutError:
            pass

    async def _commit(self, batch: list[_Pending]) -> bool:
        """Commit ``batch``; True when it went onto the primary's chain."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._commit_timeout_s):
                rows = [(p.record_id, p.row) for p in batch]
                try:
                    await self._write(rows)
                except asyncpg.LockNotAvailableError:
                    # The head was held past its wait (SSOGW_AUDIT_HEAD_WAIT_S): once more
                    # before the calls fail. A batch on a primary that lost its synchronous
                    # standby in a failover's split-brain second holds it so; by the second
                    # wait that node is gone and the batch goes to the spool instead.
                    await self._write(rows)
        except BaseException as exc:  # every failure, cancellation included, fails the batch
            if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
                # The pool reaches a demoted primary: its next connections find the new one.
                await self._pool_provider().expire_connections()
            if isinstance(exc, Exception) and await self._spooled(batch, exc):
                return False
            self._batch_failed(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return False
        if self._metrics is not None:
            self._metrics.audit_batch_size.observe(len(batch))
            self._metrics.audit_commit_seconds.observe(time.perf_counter() - started)
        for pending in batch:
            if not pending.done.done():
                pending.done.set_result(None)
        return True

    async def _write(self, rows: list[tuple[UUID, AuditRow]], *, replay: bool = False) -> None:
        """Append ``rows`` (record id, row) to the chain; ``replay``: skip those it holds."""
        pool = self._pool_provider()
        async with pool.acquire(timeout=self._commit_timeout_s) as conn:
            if replay:
                # Only this instance replays its spool (it holds the spool's lock), so what the
                # chain holds of it cannot change between this look and the append.
                ats, ids = [row.at for _, row in rows], [record_id for record_id, _ in rows]
                held = {r["record_id"] for r in await conn.fetch(ON_CHAIN, ats, ids)}
                fresh: dict[UUID, AuditRow] = {}
                for record_id, row in rows:
                    if record_id not in held:
                        fresh.setdefault(record_id, row)
                rows = list(fresh.items())
            await self._head.append(conn, rows)

    async def _spooled(self, batch: list[_Pending], exc: Exception) -> bool:
        """Commit ``batch`` to the local spool if the primary is unreachable; True if done."""
        if self._spool is None or not isinstance(translate(exc, store="audit"), StoreUnavailable):
            return False
        try:
            await asyncio.to_thread(self._spool.append, [(p.record_id, p.row) for p in batch])
        except OSError:
            log.exception("audit spool not writable")
            return False
        log.warning("primary unreachable: %d audit records committed to the spool", len(batch))
        for pending in batch:
            if not pending.done.done():
                pending.done.set_result(None)
        return True

    def _batch_failed(self, batch: list[_Pending], exc: BaseException) -> None:
        if self._metrics is not None:
            self._metrics.audit_failures.inc()
        mapped = translate(exc, store="audit") if isinstance(exc, Exception) else None
        cause = mapped.code if mapped is not None else type(exc).__name__
        # Only the class and SQLSTATE: a message may quote values, and values may be IDs.
        log.warning(
            "audit batch of %d records not committed: %s (sqlstate %s)",
            len(batch), type(exc).__name__, getattr(exc, "sqlstate", None),
        )  # fmt: skip
        self._fail(batch, AuditUnavailable(cause=cause, batch_size=len(batch)), cause=exc)

    @staticmethod
    def _fail(
        batch: list[_Pending], error: AuditUnavailable, *, cause: BaseException | None = None
    ) -> None:
        for pending in batch:
            if not pending.done.done():
                failure = AuditUnavailable(error.message, **error.details)
                failure.__cause__ = cause
                pending.done.set_exception(failure)
