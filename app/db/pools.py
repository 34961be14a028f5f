"""Connection pools: the primary (system of record) and the replicas (read-only enquiry store)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

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


async def open_pool(
    dsn: str,
    config: PoolConfig,
    *,
    read_only: bool,
    name: str,
    session: dict[str, str] | None = None,
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
    try:
        return await asyncpg.create_pool(dsn, min_size=config.min_size, **kwargs)
    except UNAVAILABLE as exc:
        log.warning("pool %s: server unavailable at start-up (%s); connecting lazily", name, exc)
        return await asyncpg.create_pool(dsn, min_size=0, **kwargs)
