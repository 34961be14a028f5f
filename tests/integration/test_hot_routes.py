"""The REST inquiry's hot route answers exactly what the framework's route answers.

A plain inquiry (``app.main.hot_routes``) is served without FastAPI's routing; the same request
with one more query parameter, which the route ignores, goes the long way. Both are asked the
same thing, for success and for each refusal, and must answer the same status, headers that
matter and body (but for the request id and the read's time).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.main import Gateway
from tests.support.people import add_person, new_national_id
from tests.support.rest_api import bearer, comparable_answer, replicas
from tests.support.scenarios import current_month, wait_replayed

pytestmark = pytest.mark.db


@pytest.fixture
async def api(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        yield client


async def _both(
    api: httpx.AsyncClient, path: str, query: str, headers: dict[str, str]
) -> tuple[Any, Any]:
    hot = await api.get(f"{path}{query}", headers=headers)
    long_query = f"{query}&via=router" if query else "?via=router"
    long_way = await api.get(f"{path}{long_query}", headers=headers)
    return comparable_answer(hot), comparable_answer(long_way)


async def test_the_hot_inquiry_answers_as_the_route(
    api: httpx.AsyncClient, gateway: Gateway, client_token: str
) -> None:
    async with gateway.db.primary.acquire() as conn:
        s40 = await add_person(conn, section=40, option=2, coverage_start=current_month().minus(24))
        s39 = await add_person(conn, section=39, coverage_start=current_month().minus(24))
        await wait_replayed(conn, replicas(gateway))
    token = bearer(client_token)
    unknown = new_national_id()  # the WSDL's example ID may be anyone's by now
    cases = [
        (s40, "", token, 200),
        (s40, "?section=40", token, 200),
        (s39, "?section=39", token, 200),
        (s39, "?section=40", token, 422),  # insured under the other section
        (unknown, "", token, 404),  # well-formed, not registered
        ("3100600445636", "", token, 422),  # a wrong check digit
        ("31006OO445635", "", token, 422),  # not digits
        (s40, "", {}, 401),
        (s40, "", {"Authorization": "Bearer ssogw_nope_nope"}, 401),
    ]
    for nid, query, headers, status in cases:
        hot, long_way = await _both(api, f"/api/v1/insured/{nid}/contributions", query, headers)
        assert hot == long_way, (nid, query)
        assert hot[0] == status, (nid, query, hot)
