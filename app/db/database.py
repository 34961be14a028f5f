"""The gateway's connection to its stores: primary pool, replica pools and the read router.

Built synchronously (so the whole object graph can be wired in ``create_app``), opened and
closed by the app's lifespan.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from app.db.failures import connection_lost
from app.db.pools import PoolConfig, PoolObserver, open_pool
from app.db.replica_router import ReadObserver, ReplicaRouter


class DatabaseObserver(ReadObserver, PoolObserver, Protocol):
    """What the pools and the read router report (metrics implement it)."""


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    primary_dsn: str
    replica_dsns: tuple[str, ...]
    primary_pool: PoolConfig
    replica_pool: PoolConfig
    audit_pool: PoolConfig
    admission_pool: PoolConfig
    replica_max_lag_s: float
    replica_probe_interval_s: float
    # Before each pool's name (and so its connections' application_name, ssogw-<prefix><pool>):
    # "cli-" marks an operator command's connections apart from a serving instance's.
    pool_prefix: str = ""


class Database:
    """Pools and router; ``primary``/``router`` are valid between ``open()`` and ``close()``."""

    def __init__(self, config: DatabaseConfig, *, observer: DatabaseObserver | None = None) -> None:
        self.config = config
        self._observer = observer
        self._primary: asyncpg.Pool | None = None
        self._audit: asyncpg.Pool | None = None
        self._admission: asyncpg.Pool | None = None
        self._replicas: list[asyncpg.Pool] = []
        self._router: ReplicaRouter | None = None

    async def open(self) -> None:
        """Open every pool and start measuring replica lag."""
        cfg = self.config
        seen = self._observer
        self._primary = await open_pool(
            cfg.primary_dsn, cfg.primary_pool, read_only=False, name=f"{cfg.pool_prefix}primary",
            observer=seen,
        )  # fmt: skip
        # The audit writer has its own small pool, so a burst of confirms holding primary
        # connections can never starve the group commit they are waiting for.
        self._audit = await open_pool(
            cfg.primary_dsn, cfg.audit_pool, read_only=False, name=f"{cfg.pool_prefix}audit",
            observer=seen,
        )  # fmt: skip
        # Admission's own, for the nonce ledger's batches and the rate limits' leases: never
        # behind a burst of confirms, and committed asynchronously
        # (app/admission/replay_guard.py says what that costs; the rate buckets are unlogged).
        self._admission = await open_pool(
            cfg.primary_dsn, cfg.admission_pool, read_only=False,
            name=f"{cfg.pool_prefix}admission", session={"synchronous_commit": "off"},
            observer=seen,
        )  # fmt: skip
        # Enquiry reads run on plans made once per session, not once per call: the inquiry's
        # batch read takes 0.28 ms to plan, more than it takes to run for a few persons, and
        # with an array of IDs as its parameter PostgreSQL's own choice ("auto") plans it again
        # for every small batch (at 300 inquiries/s, 1,354 against 928 µs of PostgreSQL CPU
        # per inquiry: bench/RESULTS.md, session 12). The replicas' other reads are key
        # lookups, whose plans do not depend on the values asked for; a read whose plan does
        # (the stats sums over a span of dates) sets ``plan_cache_mode`` for its own
        # transaction. No JIT: a generic plan's guess at a LIMIT can price a listing past
        # ``jit_above_cost``, and compiling it took 4–7 ms for a read of 0.05 ms.
        self._replicas = list(
            await asyncio.gather(
                *(
                    open_pool(
                        dsn,
                        cfg.replica_pool,
                        read_only=True,
                        name=f"{cfg.pool_prefix}replica-{i}",
                        session={"plan_cache_mode": "force_generic_plan", "jit": "off"},
                        observer=seen,
                    )
                    for i, dsn in enumerate(cfg.replica_dsns)
                )
            )
        )
        self._router = ReplicaRouter(
            primary=self._primary,
            replicas=[(f"replica-{i}", pool) for i, pool in enumerate(self._replicas)],
            max_lag_s=cfg.replica_max_lag_s,
            probe_interval_s=cfg.replica_probe_interval_s,
            observer=self._observer,
            on_primary_lost=self.reconnect_primary,
        )
        await self._router.start()

    async def reconnect_primary(self) -> None:
        """Drop every connection of the primary pools (each is closed when next acquired or
        released): they reach a node that is no longer the primary, and new ones find the node
        that is (a multi-host DSN with ``target_session_attrs=read-write``, or the operator's
        ``-rw`` service)."""
        for pool in (self._primary, self._audit):
            if pool is not None:
                await pool.expire_connections()

    async def close(self) -> None:
        """Stop the probe and close every pool."""
        if self._router is not None:
            await self._router.stop()
        pools = [
            p
            for p in (self._primary, self._audit, self._admission, *self._replicas)
            if p is not None
        ]
        await asyncio.gather(
            *(asyncio.wait_for(p.close(), 5.0) for p in pools), return_exceptions=True
        )
        for pool in pools:
            pool.terminate()

    @property
    def primary(self) -> asyncpg.Pool:
        assert self._primary is not None, "Database.open() was not awaited"
        return self._primary

    @property
    def audit_pool(self) -> asyncpg.Pool:
        assert self._audit is not None, "Database.open() was not awaited"
        return self._audit

    @property
    def admission_pool(self) -> asyncpg.Pool:
        assert self._admission is not None, "Database.open() was not awaited"
        return self._admission

    async def connect_primary(self, name: str) -> asyncpg.Connection:
        """A connection of its own to the primary, outside every pool (a listener's)."""
        cfg = self.config
        conn: asyncpg.Connection = await asyncpg.connect(
            cfg.primary_dsn,
            timeout=cfg.primary_pool.connect_timeout_s,
            command_timeout=cfg.primary_pool.command_timeout_s,
            server_settings={"application_name": f"ssogw-{cfg.pool_prefix}{name}"},
        )
        return conn

    @property
    def router(self) -> ReplicaRouter:
        assert self._router is not None, "Database.open() was not awaited"
        return self._router

    def pools(self) -> dict[str, asyncpg.Pool]:
        """Every open pool by name (for metrics)."""
        named: dict[str, asyncpg.Pool] = {}
        if self._primary is not None:
            named["primary"] = self._primary
        if self._audit is not None:
            named["audit"] = self._audit
        if self._admission is not None:
            named["admission"] = self._admission
        named.update({f"replica-{i}": p for i, p in enumerate(self._replicas)})
        return named

    def pool_sizes(self) -> dict[str, tuple[int, int, int]]:
        """Open, in-use and the most connections of every pool."""
        return {
            name: (pool.get_size(), pool.get_size() - pool.get_idle_size(), pool.get_max_size())
            for name, pool in self.pools().items()
        }

    async def primary_reachable(self) -> bool:
        """Whether the primary answers a trivial query now (a pooled connection the old server
        closed is given a second try, which connects afresh)."""
        for attempt in (1, 2):
            try:
                await self.primary.fetchval("SELECT 1", timeout=1.0)
            except Exception as exc:
                if attempt == 2 or not connection_lost(exc):
                    return False
            else:
                return True
        return False
