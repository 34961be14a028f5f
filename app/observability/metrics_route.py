"""GET /metrics: the Prometheus text exposition of the gateway's registry."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.observability.metrics import Metrics

PoolSizes = Callable[[], dict[str, tuple[int, int]]]  # pool name -> (open, in use)


def metrics_router(metrics: Metrics, pool_sizes: PoolSizes, ready: Callable[[], bool]) -> APIRouter:
    """The /metrics route; pool and readiness gauges are read at scrape time."""
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def scrape() -> Response:
        for name, (size, in_use) in pool_sizes().items():
            metrics.pool_size.labels(name).set(size)
            metrics.pool_in_use.labels(name).set(in_use)
        metrics.ready.set(1 if ready() else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
