"""Connection pools: the primary (system of record) and the replicas (read-only enquiry store)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import asyncpg.pool

from app.db.failures import UNAVAILABLE
from app.db.local_pair import read_record

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PoolConfig:
    min_size: int
    max_size: int
    connect_timeout_s: float
    command_timeout_s: float


def resolve_dsns(
    *, primary_dsn: str | None, replica_dsns: list[str], data_dir: Any
) -> tuple[str, list[str]]:
    """The DSNs from settings, else from the local pair recorded under ``data_dir``."""
    if primary_dsn:
        return primary_dsn, list(replica_dsns)
    record = read_record(data_dir)
    if record is None:
        raise RuntimeError(
            f"no database configured: set SSOGW_PRIMARY_DSN or run `ssogw db up` (in {data_dir})"
        )
    return record.primary_dsn, list(replica_dsns) or [record.replica_dsn]


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb as Python objects, so the store never hand-builds JSON text.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release a connection as it is: no reset query.

    asyncpg's default reset sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release, a round trip per use of a pooled connection. Nothing here
    leaves session state behind: settings are ``SET LOCAL``, advisory locks are transaction
    locks, cursors live inside transactions, and nothing LISTENs (the listener of principal
    changes has a connection of its own); an open transaction is still rolled back by the pool
    before this is called.
    """


class PoolObserver(Protocol):
    """What a pool reports (metrics implement it)."""

    def pool_waited(self, pool: str, seconds: float) -> None: ...

    def pool_failed(self, pool: str, kind: str) -> None: ...


class ObservedPool(asyncpg.pool.Pool):  # type: ignore[misc]  # asyncpg has no stubs
    """An asyncpg pool that reports each acquire's wait and the acquires that failed.

    ``_acquire`` is asyncpg's one path for ``acquire()`` and the pool's own ``fetch*``
    shortcuts (stable since 0.18; tests/integration/test_pool_metrics.py fails if it stops
    being called). The wait includes connecting when the pool has to open a connection.
    """

    def __init__(self, *args: Any, observer: PoolObserver, pool_name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._observer = observer
        self._pool_name = pool_name

    async def _acquire(self, timeout: float | None) -> Any:
        started = time.perf_counter()
        try:
            return await super()._acquire(timeout)
        except TimeoutError:
            self._observer.pool_failed(self._pool_name, "timeout")
            raise
        except UNAVAILABLE:
            self._observer.pool_failed(self._pool_name, "unavailable")
            raise
        finally:
            self._observer.pool_waited(self._pool_name, time.perf_counter() - started)


async def _create(dsn: str, observer: PoolObserver | None, name: str, **kwargs: Any) -> Any:
    if observer is None:
        return await asyncpg.create_pool(dsn, **kwargs)
    # What asyncpg.create_pool does, with the pool class that reports to ``observer``.
    return await ObservedPool(
        dsn,
        observer=observer,
        pool_name=name,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        max_queries=50_000,
        loop=None,
        **kwargs,
    )


async def open_pool(
    dsn: str,
    config: PoolConfig,
    *,
    read_only: bool,
    name: str,
    session: dict[str, str] | None = None,
    observer: PoolObserver | None = None,
) -> asyncpg.Pool:
    """A pool for ``dsn``; replica sessions are read-only so a stray write fails loudly.
    ``session``: further settings of every session (e.g. ``synchronous_commit``).

    When the server is down at start-up the pool is created empty and connects on first use,
    so the service starts (and says so in /readyz) instead of crashing.
    """
    settings = {"application_name": f"ssogw-{name}", **(session or {})}
    if read_only:
        settings["default_transaction_read_only"] = "on"
    kwargs: dict[str, Any] = {
        "max_size": config.max_size,
        "timeout": config.connect_timeout_s,
        "command_timeout": config.command_timeout_s,
        "server_settings": settings,
        "init": _init_connection,
        "reset": _keep_session,
        "max_inactive_connection_lifetime": 300.0,
    }
    pool: asyncpg.Pool
    try:
        pool = await _create(dsn, observer, name, min_size=config.min_size, **kwargs)
    except UNAVAILABLE as exc:
        log.warning("pool %s: server unavailable at start-up (%s); connecting lazily", name, exc)
        pool = await _create(dsn, observer, name, min_size=0, **kwargs)
    return pool
