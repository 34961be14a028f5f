"""/livez (the process is up) and /readyz (the instance can answer inquiries: a fresh read path
and a writable audit path; the primary's own state is a metric, not readiness)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

Readiness = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


def health_router(readiness: Readiness, *, worker: int | None = None) -> APIRouter:
    """Routes for the load balancer and Kubernetes probes; ``worker``: this process's index
    in a group of workers (``ssogw serve --workers N``), which /livez names."""
    router = APIRouter(tags=["operations"])
    alive = {"status": "ok"} if worker is None else {"status": "ok", "worker": str(worker)}

    @router.get("/livez", summary="The process is up (no dependency is checked)")
    async def livez() -> dict[str, str]:
        return alive

    @router.get(
        "/readyz",
        summary="Ready for inquiries: a fresh read path and a writable audit path",
        responses={503: {"description": "Not ready; the body says why"}},
    )
    async def readyz() -> JSONResponse:
        ready, detail = await readiness()
        return JSONResponse(
            {"status": "ready" if ready else "not ready", **detail},
            status_code=200 if ready else 503,
        )

    return router
