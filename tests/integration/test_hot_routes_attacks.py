"""Attacks on the hot REST inquiry: odd requests it must answer exactly as the framework's route
(tests/integration/test_hot_routes.py holds the ordinary ones)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.main import Gateway
from tests.support.people import add_person
from tests.support.rest_api import comparable_answer, replicas
from tests.support.scenarios import current_month, wait_replayed

pytestmark = pytest.mark.db


@pytest.fixture
async def api(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        yield client


@pytest.fixture
async def member(gateway: Gateway) -> str:
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=40, option=2, coverage_start=current_month().minus(24))
        await wait_replayed(conn, replicas(gateway))
    return nid


async def _both(
    api: httpx.AsyncClient, nid: str, headers: Any, content: bytes | None = None
) -> tuple[Any, Any]:
    # The same request the hot way and (one more query parameter) the long way.
    path = f"/api/v1/insured/{nid}/contributions"
    hot = await api.request("GET", path, headers=headers, content=content)
    long_way = await api.request("GET", path + "?via=router", headers=headers, content=content)
    return comparable_answer(hot), comparable_answer(long_way)


@pytest.mark.parametrize(
    "shape",
    ["Bearer  {t}", "bearer {t}", "Bearer \t{t}", "Bearer {t} x", "Basic {t}", "Bearer"],
)
async def test_authorization_shapes(
    api: httpx.AsyncClient, member: str, client_token: str, shape: str
) -> None:
    hot, long_way = await _both(api, member, {"Authorization": shape.format(t=client_token)})
    assert hot == long_way


async def test_duplicate_authorization(
    api: httpx.AsyncClient, member: str, client_token: str
) -> None:
    for values in (
        [f"Bearer {client_token}", "Bearer nope"],
        ["Bearer nope", f"Bearer {client_token}"],
    ):
        headers = [("Authorization", v) for v in values]
        hot, long_way = await _both(api, member, headers)
        assert hot == long_way, values


async def test_a_get_declaring_a_large_body(
    api: httpx.AsyncClient, member: str, client_token: str
) -> None:
    headers = {"Authorization": f"Bearer {client_token}"}
    hot, long_way = await _both(api, member, headers, content=b"x" * (300 * 1024))
    assert hot == long_way


@pytest.mark.parametrize(
    "nid",
    [
        "%E0%B9%93100600445635",  # a Thai digit
        "3100600445635%20",
        "%203100600445635",
        "3100600445635%00",
        "3100600445635%0A",
        "31006%2500445635",
        "%C3%28",  # not UTF-8
        "x" * 64,
        "%E0%B8%81" * 64,  # 64 Thai letters
        "%ED%A0%80",  # a surrogate's bytes
    ],
)
async def test_odd_ids(api: httpx.AsyncClient, client_token: str, nid: str) -> None:
    hot, long_way = await _both(api, nid, {"Authorization": f"Bearer {client_token}"})
    assert hot == long_way


async def test_the_request_id_of_the_answer_is_the_one_in_its_body(
    api: httpx.AsyncClient, member: str, client_token: str
) -> None:
    for query in ("", "?via=router"):
        headers = [
            ("Authorization", f"Bearer {client_token}"),
            ("X-Request-ID", "not sane!"),
            ("X-Request-ID", "sane-one"),
        ]
        r = await api.get(f"/api/v1/insured/{member}/contributions{query}", headers=headers)
        assert r.status_code == 200
        # The middleware takes the last X-Request-ID line (when sane); the body (and the audit
        # trail) say the same id as the header.
        r2 = await api.get(f"/api/v1/insured/{member}/contributions{query}", headers=headers[1:])
        assert r2.status_code == 401
        assert r2.json()["requestId"] == r2.headers["x-request-id"], query


def _requests(text: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ssogw_requests_total" and labels.items() <= sample.labels.items()
    )


async def test_a_call_refused_before_its_operation_is_known_is_labelled_with_its_route(
    api: httpx.AsyncClient, member: str
) -> None:
    # The metrics' operation label falls back to the route's path template: a hot call has
    # the same label as the route would have given it, never "unmatched".
    soap = {"protocol": "soap", "operation": "POST /soap/v1"}
    rest = {"protocol": "rest", "operation": "GET /api/v1/insured/{nationalId}/contributions"}
    before = (await api.get("/metrics")).text
    bad = await api.post("/soap/v1", content=b"not xml", headers={"Content-Type": "text/xml"})
    assert bad.status_code in (400, 500)
    big = await api.request(
        "GET", f"/api/v1/insured/{member}/contributions", content=b"x" * (300 * 1024)
    )
    assert big.status_code == 413
    after = (await api.get("/metrics")).text
    assert _requests(after, **soap) - _requests(before, **soap) == 1
    assert _requests(after, **rest) - _requests(before, **rest) == 1


async def test_the_hot_answer_is_the_routes_byte_for_byte(
    api: httpx.AsyncClient, gateway: Gateway, client_token: str
) -> None:
    async with gateway.db.primary.acquire() as conn:
        people = [
            await add_person(conn, section=40, option=3, coverage_start=current_month().minus(3)),
            await add_person(conn, section=39, coverage_start=current_month().minus(30)),
        ]
        await wait_replayed(conn, replicas(gateway))
    auth = {"Authorization": f"Bearer {client_token}"}
    for nid in people:
        path = f"/api/v1/insured/{nid}/contributions"
        hot, long_way = await api.get(path, headers=auth), await api.get(path + "?x", headers=auth)
        assert hot.status_code == long_way.status_code == 200
        as_of = re.compile(rb'"asOf":"[^"]*"')
        assert as_of.sub(b"", hot.content) == as_of.sub(b"", long_way.content)
        assert hot.headers["content-length"] == long_way.headers["content-length"]
