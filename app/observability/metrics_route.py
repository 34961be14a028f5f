"""GET /metrics: the Prometheus text exposition of the gateway's registry."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.observability.metrics import Metrics


def metrics_router(metrics: Metrics, refresh: Callable[[], None]) -> APIRouter:
    """The /metrics route; ``refresh`` sets the gauges read at scrape time (pools, readiness,
    the primary, the audit queue and spool) from the objects that know them, never the
    database: a scrape never waits on it."""
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def scrape() -> Response:
        refresh()
        return Response(await metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
