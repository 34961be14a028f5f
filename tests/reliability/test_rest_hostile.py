"""Hostile input against the REST API of a real gateway process: each input of the ``[[rest]]``
part of ``corpus/index.toml`` gets a 4xx application/problem+json with its code, never a 5xx,
HTML or a stack trace. (Schemathesis over the whole API is the REST suite's.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from app.principals.registry import Registry
from tests.reliability.conftest import NewPeople
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import CLIENT_LIMITS, GatewayProcess
from tests.reliability.hostile_inputs import (
    ANSWER_WITHIN_S,
    HostileCase,
    body_of,
    chunks,
    fill,
    load_cases,
    params,
    placeholder_values,
)
from tests.reliability.soap_wire import Partner

pytestmark = [pytest.mark.reliability, pytest.mark.serial]

REST_CASES = load_cases("rest")


@pytest.fixture(scope="module")
def http(shared_gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_gateway.base_url, timeout=30, limits=CLIENT_LIMITS) as client:
        paths = client.get("/openapi.json").json().get("paths", {})
        if not any(path.startswith("/api/v1/") for path in paths):
            pytest.skip("create_app serves no /api/v1 routes yet: no REST API to attack")
        yield client


@pytest.fixture(scope="module")
async def counter_token(registry: Registry) -> str:
    issued = await registry.add_client(name=f"rel-{uuid.uuid4().hex[:10]}", scopes=["counter"])
    return issued.token


@pytest.fixture(scope="module")
async def rest_people(new_people: NewPeople) -> Iterator[str]:
    return iter(await new_people(len(REST_CASES)))


@pytest.mark.parametrize("case", params(REST_CASES))
def test_rest_hostile_input_gets_its_problem(
    http: httpx.Client,
    case: HostileCase,
    counter_token: str,
    rest_people: Iterator[str],
) -> None:
    # The placeholders of a REST body need no WS-Security partner; a blank one is enough.
    values = placeholder_values(Partner("", "", ""), rest_people)
    body = body_of(case, values)
    headers = {k: fill(v.encode(), values).decode() for k, v in case.headers.items()}
    if case.auth:
        headers["Authorization"] = f"Bearer {counter_token}"
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    content = chunks(body) if case.transfer == "chunked" else body
    path = fill(case.path.encode(), values).decode()
    started = time.perf_counter()
    response = http.request(case.method, path, content=content or None, headers=headers)
    elapsed = time.perf_counter() - started
    media = response.headers.get("content-type", "")
    code = response.json().get("code") if media.startswith("application/problem+json") else None
    FIGURES.hostile_answer(case.name, "rest", f"{response.status_code} {code or media}")
    assert elapsed < ANSWER_WITHIN_S, f"{case.name} took {elapsed:.2f} s"
    expected = case.expect["status"]
    assert response.status_code in (expected if isinstance(expected, list) else [expected]), (
        response.status_code,
        response.text[:300],
    )
    assert 400 <= response.status_code < 500
    assert media.startswith("application/problem+json"), (media, response.text[:300])
    problem = response.json()
    assert problem["requestId"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    if "code" in case.expect:
        assert problem["code"] == case.expect["code"], problem
    else:
        assert problem["code"].startswith("client."), problem
