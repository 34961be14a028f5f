"""The app's edge stands in front of the framework: every HTTP request meets it first, and what
it does not take the framework serves as before, still measured, logged and given its id."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.main import create_app
from app.main.edge import EdgedApp
from app.settings import Settings


def _app() -> FastAPI:
    return create_app(Settings(primary_dsn="postgresql://x@127.0.0.1:1/x"))


def _client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_every_http_request_meets_the_edge_first_and_goes_on_to_the_framework() -> None:
    app = EdgedApp()

    @app.get("/thing")
    async def thing() -> dict[str, str]:
        return {"served": "by the framework"}

    seen: list[str] = []
    framework = app.framework()

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await framework(scope, receive, send)

    app.set_edge(edge)
    async with _client(app) as client:
        answer = await client.get("/thing")
        missing = await client.get("/nothing")
    assert answer.json() == {"served": "by the framework"}
    assert missing.status_code == 404  # the framework's routing, as without an edge
    assert seen == ["/thing", "/nothing"]


async def test_the_lifespan_goes_to_the_framework_not_the_edge() -> None:
    started: list[bool] = []
    app = EdgedApp()
    app.router.on_startup.append(lambda: started.append(True))

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("an HTTP-only edge never sees the lifespan")

    app.set_edge(edge)
    async with app.router.lifespan_context(app):
        pass
    assert started == [True]


async def test_a_request_the_framework_serves_is_measured_and_carries_its_id() -> None:
    app = _app()
    metrics = app.state.gateway.metrics
    async with _client(app) as client:
        answer = await client.get("/api/v1/no-such-thing", headers={"X-Request-ID": "abc-1"})
    assert answer.status_code == 404
    assert answer.headers["x-request-id"] == "abc-1"
    count = metrics.requests.labels("rest", "GET /api/v1/{path:path}", "http_404", "anonymous")
    assert count.value == 1  # the API's catch-all route


async def test_a_defect_no_route_caught_is_answered_500_measured_logged_and_with_its_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _app()

    @app.get("/api/v1/defect")
    async def defect() -> Any:
        raise RuntimeError("a defect")

    app.router.routes.insert(0, app.router.routes.pop())  # before the API's catch-all
    caplog.set_level(logging.INFO, logger="ssogw.access")
    async with _client(app) as client:
        answer = await client.get("/api/v1/defect", headers={"X-Request-ID": "def-1"})
    assert answer.status_code == 500  # ServerErrorMiddleware's answer, inside the edge now
    assert answer.headers["x-request-id"] == "def-1"
    lines = [r for r in caplog.records if r.name == "ssogw.access"]
    assert [(r.status, r.outcome) for r in lines] == [(500, "http_500")]  # type: ignore[attr-defined]
    count = app.state.gateway.metrics.requests
    assert count.labels("rest", "GET /api/v1/defect", "http_500", "anonymous").value == 1
