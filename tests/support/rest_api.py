"""Helpers for the REST tests: clients with chosen scopes, bearer headers, problem checks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx

from app.error_catalogue import THAI
from app.main import Gateway
from tests.support.refusals import recorded

PROBLEM_FIELDS = {
    "type", "title", "status", "detail", "code", "messageTh", "retryable", "requestId"
}  # fmt: skip


async def new_client(
    gateway: Gateway, scopes: Sequence[str], *, rate_limit: float = 0
) -> tuple[str, str]:
    """(name, bearer token) of a fresh internal client with ``scopes`` (and a rate limit)."""
    name = f"c-{uuid.uuid4().hex[:12]}"
    issued = await gateway.registry.add_client(name=name, scopes=scopes)
    if rate_limit > 0:
        await gateway.db.primary.execute(
            "UPDATE api_clients SET rate_limit = $2 WHERE name = $1", name, rate_limit
        )
    return name, issued.token


async def new_token(gateway: Gateway, scopes: Sequence[str], *, rate_limit: float = 0) -> str:
    """The bearer token of a fresh internal client with ``scopes``."""
    return (await new_client(gateway, scopes, rate_limit=rate_limit))[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def replicas(gateway: Gateway) -> list[asyncpg.Pool]:
    """The replica pools of the test session (to wait for test data to be replayed)."""
    return [state.pool for state in gateway.db.router.replicas]


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``response`` is a problem+json of ``status`` and ``code``; return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status and body["code"] == code, body
    assert body["type"].endswith(code)
    assert body["messageTh"] == THAI[code], body  # for the person at the counter, in Thai
    assert body["requestId"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


async def audit_rows(gateway: Gateway, request_id: str) -> list[dict[str, Any]]:
    """The audit records of one request, oldest first (committed ones: linked or not yet; a
    refusal counted in memory once written)."""
    rows = await recorded(gateway, lambda: gateway.db.primary.fetch(
        "SELECT operation, outcome, national_id, name_returned, principal_name, protocol"
        " FROM audit_records WHERE request_id = $1 ORDER BY seq NULLS LAST",
        request_id,
    ))  # fmt: skip
    return [dict(row) for row in rows]


def rest(base_url: str, token: str | None = None) -> httpx.AsyncClient:
    """An HTTP client for the live app, with the bearer token when given."""
    headers = bearer(token) if token else {}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)


#: The headers two answers of one question must share (the rest: dates, ids, lengths, vary).
SAME_HEADERS = ("content-type", "www-authenticate", "retry-after")


def comparable_answer(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """A JSON answer's status, the headers that must not vary, and its body without the
    request id and the read's time and path (a standby behind answers from the primary):
    equal for two answers to one question."""
    body = response.json()
    for varying in ("requestId", "asOf", "servedBy"):
        body.pop(varying, None)
    headers = {name: response.headers.get(name, "") for name in SAME_HEADERS}
    return response.status_code, headers, body
