"""GET /metrics: the Prometheus text exposition of the gateway's registry, or of the whole
group of workers (``ssogw serve --workers N``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.observability.metrics import Metrics


def metrics_router(
    metrics: Metrics,
    refresh: Callable[[], None],
    *,
    group: Callable[[], Awaitable[bytes | None]] | None = None,
) -> APIRouter:
    """The /metrics route; ``refresh`` sets the gauges read at scrape time (pools, readiness,
    the primary, the audit queue and spool) from the objects that know them, never the
    database: a scrape never waits on it. ``group``: the exposition of the whole group of
    workers this one belongs to (None when it cannot be had: 503, rather than one worker's
    figures, which would look like the group's counters going back)."""
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def scrape() -> Response:
        if group is not None:
            body = await group()
            if body is None:
                return Response(
                    "the worker group's metrics are unavailable\n",
                    status_code=503,
                    media_type="text/plain",
                )
            return Response(body, media_type=CONTENT_TYPE_LATEST)
        refresh()
        return Response(await metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
