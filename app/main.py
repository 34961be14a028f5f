"""create_app(settings): the one place that wires pools, stores, services and adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from app.observability.health import health_router
from app.observability.metrics import Metrics
from app.settings import Settings
from app.store.database import Database, DatabaseConfig
from app.store.pools import PoolConfig, resolve_dsns


def database_config(settings: Settings) -> DatabaseConfig:
    """Pool and routing configuration from settings (DSNs from settings or the local pair)."""
    primary, replicas = resolve_dsns(
        primary_dsn=settings.primary_dsn,
        replica_dsns=settings.replica_dsns,
        data_dir=Path(settings.data_dir),
    )

    def pool(min_size: int, max_size: int) -> PoolConfig:
        return PoolConfig(
            min_size, max_size, settings.connect_timeout_s, settings.command_timeout_s
        )

    return DatabaseConfig(
        primary_dsn=primary,
        replica_dsns=tuple(replicas),
        primary_pool=pool(settings.primary_pool_min, settings.primary_pool_max),
        replica_pool=pool(settings.replica_pool_min, settings.replica_pool_max),
        audit_pool=pool(1, 2),
        replica_max_lag_s=settings.replica_max_lag_s,
        replica_probe_interval_s=settings.replica_probe_interval_s,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway as an ASGI app; settings default to the environment and the local pair."""
    settings = settings or Settings()
    metrics = Metrics(CollectorRegistry())
    db = Database(database_config(settings), observer=metrics)
    state: dict[str, Any] = {"draining": False}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await db.open()
        try:
            yield
        finally:
            await db.close()

    async def readiness() -> tuple[bool, dict[str, Any]]:
        if state["draining"]:
            return False, {"reason": "draining"}
        primary = await db.primary_reachable()
        read_path = db.router.has_fresh_read_path()
        ready = primary and read_path
        metrics.ready.set(1 if ready else 0)
        return ready, {"primary": primary, "replicas": db.router.status()}

    app = FastAPI(
        title="SSO Contribution Gateway",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.db = db
    app.include_router(health_router(readiness))
    return app
