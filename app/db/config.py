"""The database configuration an instance (or one operator command) runs with, from settings."""

from __future__ import annotations

from pathlib import Path

from app.db.database import DatabaseConfig
from app.db.pools import PoolConfig, resolve_dsns
from app.settings import Settings


def database_config(settings: Settings, *, command: bool = False) -> DatabaseConfig:
    """Pool and routing configuration from settings (DSNs from settings or the local pair)."""
    primary, replicas = resolve_dsns(
        primary_dsn=settings.primary_dsn,
        replica_dsns=settings.replica_dsns,
        data_dir=Path(settings.data_dir),
    )
    timeout = max(settings.command_timeout_s, 300.0) if command else settings.command_timeout_s

    def pool(min_size: int, max_size: int) -> PoolConfig:
        return PoolConfig(min_size, max_size, settings.connect_timeout_s, timeout)

    # One operator command (``command``): the primary only, small pools, long statements.
    return DatabaseConfig(
        primary_dsn=primary,
        replica_dsns=() if command else tuple(replicas),
        primary_pool=pool(1, 2)
        if command
        else pool(settings.primary_pool_min, settings.primary_pool_max),
        replica_pool=pool(settings.replica_pool_min, settings.replica_pool_max),
        audit_pool=pool(1, 2),
        replica_max_lag_s=settings.replica_max_lag_s,
        replica_probe_interval_s=settings.replica_probe_interval_s,
        pool_prefix="cli-" if command else "",
    )
