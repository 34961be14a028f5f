"""Routes reads to a fresh replica, else to the primary, and says which path served them.

A background probe measures each replica's lag against the primary: bytes (the primary's
flushed WAL position minus the replica's replay position) and seconds (how old the last
replayed transaction is, when the replica is behind). A replica that is unreachable, or lags
more than ``max_lag_s``, is skipped and reads fall back to the primary. A read that must see
a given write (read-your-writes) passes that write's LSN.

The probe's measure is one connection's: behind a service that spreads connections over
several standbys (CloudNativePG's ``-ro``), the connection that serves a read may reach another
standby than the one measured. So a read that can say so (``replayed``: its own answer carries
the server's replay position, in the same round trip) is checked on the connection that served
it: a standby behind the newest write this instance knows of (the person's own last write, this
instance's last write, the primary's position at the last probe) is not believed, and the read
goes to the next replica or to the primary. Across the fleet, payments are on the standbys
before they are acknowledged (``app.db.sync_commit``); this check bounds what a standby outside
the synchronous set can hide to the last probe interval.

Failover: a DSN may reach a node that is not what it was configured as. A "replica" that is
not in recovery is the primary now (promoted, or a DSN listing every node): it is reported up
in the role ``primary`` and never read as a replica (reads that need the primary go through the
primary pool). A primary DSN that reaches a standby (the old primary, demoted) marks the
primary down and calls ``on_primary_lost``, which drops the primary pools' connections so they
reconnect to whichever node is read-write now (``target_session_attrs=read-write``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import asyncpg

from app.db.failures import UNAVAILABLE, connection_lost, translated
from app.frozen_records import quick_init

log = logging.getLogger(__name__)
T = TypeVar("T")


def parse_lsn(text: str | None) -> int | None:
    """PostgreSQL's ``X/Y`` LSN as an integer (None stays None)."""
    if text is None:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


class ReadObserver(Protocol):
    """What the router reports (metrics implement it)."""

    def read_served(self, path: str, reads: int = 1) -> None: ...

    def replica_lag(self, replica: str, *, seconds: float, lag_bytes: int, up: bool) -> None: ...


class _NoObserver:
    def read_served(self, path: str, reads: int = 1) -> None:
        return None

    def replica_lag(self, replica: str, *, seconds: float, lag_bytes: int, up: bool) -> None:
        return None


@dataclass(slots=True)
class ReplicaState:
    """The last measurement of one replica."""

    name: str
    pool: asyncpg.Pool
    up: bool = False
    role: str = "standby"  # "primary": the node answers but is not in recovery (never read)
    lag_s: float = float("inf")
    lag_bytes: int = 0
    replay_lsn: int = 0
    as_of: datetime | None = None  # the data on this replica is at least this fresh
    error: str | None = "not probed yet"


@quick_init
@dataclass(frozen=True, slots=True)
class ReadInfo:
    """Which path served a read and how fresh its data is."""

    path: str  # "replica" or "primary"
    replica: str | None
    as_of: datetime


class ReplicaRouter:
    """Chooses the store for each read; owns the lag probe task."""

    def __init__(
        self,
        *,
        primary: asyncpg.Pool,
        replicas: list[tuple[str, asyncpg.Pool]],
        max_lag_s: float,
        probe_interval_s: float,
        observer: ReadObserver | None = None,
        on_primary_lost: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.primary = primary
        self.replicas = [ReplicaState(name, pool) for name, pool in replicas]
        self.max_lag_s = max_lag_s
        self.probe_interval_s = probe_interval_s
        self.primary_up = False
        # The newest WAL position this instance knows to be committed on the primary: its
        # flush position at the last probe, or this instance's own later write.
        self.primary_lsn = 0
        self._observer: ReadObserver = observer or _NoObserver()
        self._on_primary_lost = on_primary_lost
        self._task: asyncio.Task[None] | None = None
        self._next = 0

    # --- probing -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Measure once now, then keep measuring in the background."""
        await self.probe()
        self._task = asyncio.create_task(self._probe_forever(), name="replica-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval_s)
            try:
                await self.probe()
            except Exception:  # the probe must never die; the next round tries again
                log.exception("replica probe failed")

    async def probe(self) -> None:
        """Measure the primary's WAL position and every replica's lag."""
        timeout = min(self.probe_interval_s * 4, 2.0)
        measured = await self._probe_primary(timeout)
        await asyncio.gather(
            *(self._probe_replica(state, timeout, measured) for state in self.replicas)
        )

    async def _probe_primary(self, timeout: float) -> int | None:
        """The primary's flushed WAL position now (None: unreachable, or not the primary)."""
        text: str | None = None
        for attempt in (1, 2):
            try:
                text = await self.primary.fetchval(
                    "SELECT CASE WHEN NOT pg_is_in_recovery()"
                    " THEN pg_current_wal_flush_lsn()::text END",
                    timeout=timeout,
                )
                break
            except UNAVAILABLE as exc:
                # A pooled connection the old server closed fails once; the second try
                # connects afresh (to the new primary, after a failover).
                if attempt == 2 or not connection_lost(exc):
                    self.primary_up = False
                    return None
        lsn = parse_lsn(text)
        if lsn is None:  # the primary's DSN reached a standby: the primary was demoted
            if self.primary_up:
                log.warning("the primary's DSN reaches a standby: reconnecting its pools")
            self.primary_up = False
            if self._on_primary_lost is not None:
                await self._on_primary_lost()
            return None
        # The newest write known: the primary may be a new one, whose position is behind what
        # the old one had reached, so this is the latest measure, not the highest.
        self.primary_lsn, self.primary_up = lsn, True
        return lsn

    def saw_write(self, lsn: int) -> None:
        """This instance committed a write at ``lsn``: no standby behind it serves its reads."""
        self.primary_lsn = max(self.primary_lsn, lsn)

    async def _probe_replica(
        self, state: ReplicaState, timeout: float, primary_lsn: int | None
    ) -> None:
        try:
            row = await state.pool.fetchrow(
                "SELECT pg_is_in_recovery() AS standby,"
                " pg_last_wal_replay_lsn()::text AS replay,"
                " pg_last_xact_replay_timestamp() AS replayed_at,"
                " now() AS now",
                timeout=timeout,
            )
        except UNAVAILABLE as exc:
            state.up, state.error, state.lag_s = False, type(exc).__name__, float("inf")
            self._observer.replica_lag(state.name, seconds=-1.0, lag_bytes=-1, up=False)
            return
        assert row is not None
        now: datetime = row["now"]
        if not row["standby"]:
            # The primary (promoted, or listed among the replicas on purpose): it answers, it
            # is as fresh as can be, and it is never read as a replica.
            state.up, state.role, state.error = True, "primary", None
            state.lag_s, state.lag_bytes, state.as_of = 0.0, 0, now
            self._observer.replica_lag(state.name, seconds=0.0, lag_bytes=0, up=True)
            return
        replay = parse_lsn(row["replay"]) or 0
        state.up, state.role, state.error, state.replay_lsn = True, "standby", None, replay
        if primary_lsn is not None:
            state.lag_bytes = max(0, primary_lsn - replay)
            if state.lag_bytes == 0:
                state.lag_s, state.as_of = 0.0, now
            else:
                replayed_at: datetime | None = row["replayed_at"]
                state.lag_s = (now - replayed_at).total_seconds() if replayed_at else float("inf")
                state.as_of = replayed_at
        else:
            # Without the primary we cannot measure; the replica is the freshest store there
            # is. Its data is as fresh as its last replayed transaction (or our last measure).
            replayed_at = row["replayed_at"]
            state.lag_s = 0.0
            state.as_of = max(filter(None, (replayed_at, state.as_of)), default=now)
        self._observer.replica_lag(
            state.name, seconds=state.lag_s, lag_bytes=state.lag_bytes, up=True
        )

    # --- routing -------------------------------------------------------------------------------
    def eligible(self, *, min_lsn: int | None = None) -> list[ReplicaState]:
        """Standbys that are up, fresh enough and (if asked) had replayed ``min_lsn`` when
        last probed."""
        return [
            state
            for state in self.replicas
            if state.up
            and state.role == "standby"
            and state.lag_s <= self.max_lag_s
            and (min_lsn is None or state.replay_lsn >= min_lsn)
        ]

    def has_fresh_read_path(self) -> bool:
        """True when some replica is fresh or the primary answers (for /readyz)."""
        return self.primary_up or bool(self.eligible())

    async def run_read(
        self,
        fn: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        min_lsn: int | None = None,
        replayed: Callable[[T], int | None] | None = None,
        reads: int = 1,
    ) -> tuple[T, ReadInfo]:
        """Run ``fn`` on a fresh replica if there is one, else (or if it fails) on the primary.

        ``replayed``: the replay position the answer of ``fn`` carries (None from a server
        that is not in recovery). The answer of a standby behind ``min_lsn`` or the newest
        write this instance knows of is then not used. Without it, the last probe decides.
        ``reads``: how many calls' reads ``fn`` makes (for the reads-served counter).
        """
        floor = max(min_lsn or 0, self.primary_lsn)
        candidates = self.eligible(min_lsn=min_lsn if replayed is None else None)
        if candidates:
            self._next = (self._next + 1) % len(candidates)
            for state in candidates[self._next :] + candidates[: self._next]:
                try:
                    async with state.pool.acquire() as conn:
                        result = await fn(conn)
                except UNAVAILABLE as exc:
                    # Went away since the last probe: mark it and try the next path.
                    state.up, state.error, state.lag_s = False, type(exc).__name__, float("inf")
                    continue
                if replayed is not None:
                    lsn = replayed(result)
                    if lsn is None:  # promoted since the last probe
                        state.role = "primary"
                        continue
                    if lsn < floor:  # this connection's standby is behind: not believed
                        continue
                self._observer.read_served("replica", reads)
                return result, ReadInfo("replica", state.name, state.as_of or datetime.now(UTC))
        return await self._read_primary(fn, reads)

    async def _read_primary(
        self, fn: Callable[[asyncpg.Connection], Awaitable[T]], reads: int = 1
    ) -> tuple[T, ReadInfo]:
        as_of = datetime.now(UTC)
        async with translated("primary"):
            try:
                async with self.primary.acquire() as conn:
                    result = await fn(conn)
            except UNAVAILABLE as exc:
                # A read may be repeated: a pooled connection the server closed (a restart, a
                # failover) fails once, and the second try connects afresh.
                if not connection_lost(exc):
                    raise
                async with self.primary.acquire() as conn:
                    result = await fn(conn)
        self._observer.read_served("primary", reads)
        return result, ReadInfo("primary", None, as_of)

    def status(self) -> list[dict[str, object]]:
        """A summary of every replica, for /readyz and `ssogw db status`."""
        return [
            {
                "replica": s.name,
                "up": s.up,
                "role": s.role,
                "lagSeconds": None if s.lag_s == float("inf") else round(s.lag_s, 3),
                "lagBytes": s.lag_bytes,
                "fresh": s in self.eligible(),
                "error": s.error,
            }
            for s in self.replicas
        ]
