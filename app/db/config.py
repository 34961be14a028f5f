"""The database configuration an instance (or one operator command) runs with, from settings.

The gateway connects as the service role (``SSOGW_PRIMARY_DSN``, ``SSOGW_REPLICA_DSNS``);
migrations and bulk loads as the schema's owner (``SSOGW_OWNER_DSN``). On the local pair both
come from its record.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from app.db.database import DatabaseConfig
from app.db.local_pair import SERVICE_ROLE, read_record
from app.db.pools import PoolConfig, resolve_dsns
from app.settings import Settings


def owner_dsn(settings: Settings) -> str:
    """The primary as the schema's owner: ``SSOGW_OWNER_DSN``, else the local pair's."""
    if settings.owner_dsn:
        return settings.owner_dsn
    if settings.primary_dsn:
        # Never fall back to the service's DSN: migrations need the owner, and a service
        # DSN that could migrate would be one that can rewrite the audit trail.
        raise RuntimeError(
            "SSOGW_OWNER_DSN is not set: this command runs as the schema's owner, not as the "
            "service role of SSOGW_PRIMARY_DSN (docs/operations.md, 'Database roles')"
        )
    record = read_record(Path(settings.data_dir))
    if record is None:
        raise RuntimeError(
            "no database configured: set SSOGW_OWNER_DSN or run `ssogw db up` "
            f"(in {settings.data_dir})"
        )
    return record.owner_dsn


def service_role(settings: Settings) -> str:
    """The role the gateway connects as: ``SSOGW_SERVICE_ROLE``, else the user of
    ``SSOGW_PRIMARY_DSN``, else the local pair's (``ssogw_service``)."""
    if settings.service_role:
        return settings.service_role
    if settings.primary_dsn:
        user = urlsplit(settings.primary_dsn).username
        if not user:
            raise RuntimeError("SSOGW_PRIMARY_DSN names no user: set SSOGW_SERVICE_ROLE")
        return unquote(user)
    return SERVICE_ROLE


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
        admission_pool=pool(0 if command else 1, 2),  # a command admits no partner
        replica_max_lag_s=settings.replica_max_lag_s,
        replica_probe_interval_s=settings.replica_probe_interval_s,
        pool_prefix="cli-" if command else "",
    )
