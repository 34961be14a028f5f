"""Dates and instants in a REST query are read as written (``app.rest.wire``): a business date
is ``YYYY-MM-DD`` text, never a number of seconds or a date and time, and an audit lookup's
bounds are RFC 3339 instants with their offset. pydantic's lax mode took ``1733443200`` and
``2024-12-06T00:00:00Z`` for a date, and a bare number of seconds for an instant."""

from __future__ import annotations

import pytest

from app.main import Gateway
from tests.support.rest_api import new_token, problem, rest

pytestmark = pytest.mark.db

_NOT_DATES = ("1733443200", "2024-12-06T00:00:00Z", "20241206")
_NOT_INSTANTS = ("1733443200", "2024-12-06T00:00:00", "2024-12-06")


@pytest.mark.parametrize("text", _NOT_DATES)
async def test_a_stats_date_is_a_date_as_written(
    live_url: str, gateway: Gateway, text: str
) -> None:
    async with rest(live_url, await new_token(gateway, ["admin"])) as api:
        for params in ({"from": text, "to": "2024-12-06"}, {"from": "2024-12-06", "to": text}):
            answer = await api.get("/api/v1/stats/payments", params=params)
            body = problem(answer, 422, "client.invalid_input")
            assert body["fields"] == ["from" if params["from"] == text else "to"], body


@pytest.mark.parametrize("text", _NOT_DATES)
async def test_a_settlement_business_date_is_a_date_as_written(
    live_url: str, gateway: Gateway, text: str
) -> None:
    async with rest(live_url, await new_token(gateway, ["admin"])) as api:
        answer = await api.post(
            "/api/v1/settlements",
            params={"partner": "nobody", "businessDate": text},
            content=b"",
            headers={"Content-Type": "application/octet-stream"},
        )
        assert problem(answer, 422, "client.invalid_input")["fields"] == ["businessDate"]


@pytest.mark.parametrize("text", _NOT_INSTANTS)
async def test_an_audit_lookups_bound_is_an_instant_with_its_offset(
    live_url: str, gateway: Gateway, text: str
) -> None:
    async with rest(live_url, await new_token(gateway, ["audit"])) as api:
        answer = await api.get(
            "/api/v1/audit/lookups", params={"nationalId": "3100600445635", "from": text}
        )
        assert problem(answer, 422, "client.invalid_input")["fields"] == ["from"]
