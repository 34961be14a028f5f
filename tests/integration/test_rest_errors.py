"""Every REST failure is application/problem+json with the vocabulary's code and status."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from app.errors import RateLimited, StoreUnavailable
from app.main import Gateway
from app.rest.problem import ProblemRoute
from tests.support.rest_api import new_token, problem, rest

pytestmark = pytest.mark.db


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with rest(live_url, client_token) as client:
        yield client


async def test_an_unknown_path_is_a_problem_not_found(api: httpx.AsyncClient) -> None:
    body = problem(await api.get("/api/v1/no/such/thing"), 404, "client.not_found")
    assert body["path"] == "/api/v1/no/such/thing"


async def test_a_wrong_method_is_405_with_allow(api: httpx.AsyncClient) -> None:
    response = await api.delete("/api/v1/payments")
    body = problem(response, 405, "client.method_not_allowed")
    assert response.headers["allow"] == "POST" and body["allowed"] == ["POST"]
    both = await api.delete("/api/v1/insured")
    assert both.headers["allow"] == "GET, POST"


async def test_unreadable_json_names_the_body(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/payments", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    body = problem(response, 422, "client.invalid_input")
    assert body["field"] == "body"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_not_sent_as_json_says_what_to_send(
    api: httpx.AsyncClient, content_type: str | None
) -> None:
    """A JSON text sent as another type (or as none) is not read as JSON: the answer says to
    send it with Content-Type application/json, not that "body" should be a dictionary."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await api.post(
        "/api/v1/payments", content=b'{"partnerTxnId": "t1"}', headers=headers
    )
    body = problem(response, 422, "client.invalid_input")
    assert (body["field"], body["reason"]) == ("body", "not_json")
    assert "Content-Type application/json" in body["detail"]


async def test_missing_fields_are_named(api: httpx.AsyncClient) -> None:
    body = problem(await api.post("/api/v1/payments", json={}), 422, "client.invalid_input")
    assert {"partnerTxnId", "nationalId", "months", "amount"} <= set(body["fields"])
    assert all({"field", "message"} == set(e) for e in body["errors"])


async def test_a_body_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/insured",
        content=b'{"title": "' + b"x" * 300_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    problem(response, 413, "client.payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"title": "'
        for _ in range(40):
            yield b"x" * 10_000

    chunked = await api.post(
        "/api/v1/insured", content=chunks(), headers={"Content-Type": "application/json"}
    )
    problem(chunked, 413, "client.payload_too_large")


async def test_rate_limited_calls_get_429_with_retry_after(live_url: str, gateway: Gateway) -> None:
    token = await new_token(gateway, ["admin"], rate_limit=1)
    async with rest(live_url, token) as api:
        statuses = [(await api.get("/api/v1/rates")) for _ in range(3)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    body = problem(limited[0], 429, "client.rate_limited")
    assert int(limited[0].headers["retry-after"]) >= 1 and body["retryAfterS"] > 0


def failing_app() -> FastAPI:
    """A small app whose routes fail the ways the gateway's cannot be made to on demand."""
    router = APIRouter(route_class=ProblemRoute)

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("exploded near 3100600445635")

    @router.get("/down")
    async def down() -> None:
        raise StoreUnavailable("the primary database is unavailable", store="primary")

    @router.get("/slow-down")
    async def slow_down() -> None:
        raise RateLimited(retry_after_s=2.2)

    app = FastAPI()
    app.include_router(router)
    return app


async def test_an_unexpected_error_is_a_500_problem_and_a_masked_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = httpx.ASGITransport(app=failing_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with caplog.at_level(logging.ERROR, logger="app.rest.problem"):
            response = await client.get("/boom", headers={"X-Request-ID": "req-boom"})
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "server.internal" and body["requestId"] == "req-boom"
        assert "exploded" not in response.text and "Traceback" not in response.text
        logged = caplog.text
        assert "req-boom" in logged and "RuntimeError" in logged
        assert "3100600445635" not in logged

        down = await client.get("/down")
        assert down.status_code == 503 and down.json()["code"] == "server.store_unavailable"
        assert down.headers["retry-after"] == "1" and down.json()["store"] == "primary"
        slow = await client.get("/slow-down")
        assert slow.status_code == 429 and slow.headers["retry-after"] == "3"
