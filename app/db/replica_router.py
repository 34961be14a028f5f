"""Routes reads to a fresh replica, else to the primary, and says which path served them.

A background probe measures each replica's lag against the primary: bytes (the primary's
current WAL position minus the replica's replay position) and seconds (how old the last
replayed transaction is, when the replica is behind). A replica that is unreachable, or lags
more than ``max_lag_s``, is skipped and reads fall back to the primary. A read that must see
a given write (read-your-writes) passes that write's LSN; only a replica that has replayed it
qualifies.
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

from app.db.failures import UNAVAILABLE, translated

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

    def read_served(self, path: str) -> None: ...

    def replica_lag(self, replica: str, *, seconds: float, lag_bytes: int, up: bool) -> None: ...


class _NoObserver:
    def read_served(self, path: str) -> None:
        return None

    def replica_lag(self, replica: str, *, seconds: float, lag_bytes: int, up: bool) -> None:
        return None


@dataclass(slots=True)
class ReplicaState:
    """The last measurement of one replica."""

    name: str
    pool: asyncpg.Pool
    up: bool = False
    lag_s: float = float("inf")
    lag_bytes: int = 0
    replay_lsn: int = 0
    as_of: datetime | None = None  # the data on this replica is at least this fresh
    error: str | None = "not probed yet"


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
    ) -> None:
        self.primary = primary
        self.replicas = [ReplicaState(name, pool) for name, pool in replicas]
        self.max_lag_s = max_lag_s
        self.probe_interval_s = probe_interval_s
        self.primary_up = False
        self.primary_lsn = 0
        self._observer: ReadObserver = observer or _NoObserver()
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
        try:
            text = await self.primary.fetchval("SELECT pg_current_wal_lsn()::text", timeout=timeout)
            self.primary_lsn = parse_lsn(text) or 0
            self.primary_up = True
        except UNAVAILABLE:
            self.primary_up = False
        await asyncio.gather(*(self._probe_replica(state, timeout) for state in self.replicas))

    async def _probe_replica(self, state: ReplicaState, timeout: float) -> None:
        try:
            row = await state.pool.fetchrow(
                "SELECT pg_last_wal_replay_lsn()::text AS replay,"
                " pg_last_wal_receive_lsn()::text AS receive,"
                " pg_last_xact_replay_timestamp() AS replayed_at,"
                " now() AS now",
                timeout=timeout,
            )
        except UNAVAILABLE as exc:
            state.up, state.error, state.lag_s = False, type(exc).__name__, float("inf")
            self._observer.replica_lag(state.name, seconds=-1.0, lag_bytes=-1, up=False)
            return
        assert row is not None
        replay = parse_lsn(row["replay"])
        if replay is None:  # not a standby at all: a misconfigured DSN
            state.up, state.error = False, "not in recovery"
            self._observer.replica_lag(state.name, seconds=-1.0, lag_bytes=-1, up=False)
            return
        now: datetime = row["now"]
        state.up, state.error, state.replay_lsn = True, None, replay
        if self.primary_up:
            state.lag_bytes = max(0, self.primary_lsn - replay)
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
        """Replicas that are up, fresh enough and (if asked) have replayed ``min_lsn``."""
        return [
            state
            for state in self.replicas
            if state.up
            and state.lag_s <= self.max_lag_s
            and (min_lsn is None or state.replay_lsn >= min_lsn)
        ]

    def has_fresh_read_path(self) -> bool:
        """True when some replica is fresh or the primary answers (for /readyz)."""
        return self.primary_up or bool(self.eligible())

    async def run_read(
        self, fn: Callable[[asyncpg.Connection], Awaitable[T]], *, min_lsn: int | None = None
    ) -> tuple[T, ReadInfo]:
        """Run ``fn`` on a fresh replica if there is one, else (or if it fails) on the primary."""
        candidates = self.eligible(min_lsn=min_lsn)
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
                self._observer.read_served("replica")
                return result, ReadInfo("replica", state.name, state.as_of or datetime.now(UTC))
        as_of = datetime.now(UTC)
        async with translated("primary"), self.primary.acquire() as conn:
            result = await fn(conn)
        self._observer.read_served("primary")
        return result, ReadInfo("primary", None, as_of)

    def status(self) -> list[dict[str, object]]:
        """A summary of every replica, for /readyz and `ssogw db status`."""
        return [
            {
                "replica": s.name,
                "up": s.up,
                "lagSeconds": None if s.lag_s == float("inf") else round(s.lag_s, 3),
                "lagBytes": s.lag_bytes,
                "fresh": s in self.eligible(),
                "error": s.error,
            }
            for s in self.replicas
        ]
