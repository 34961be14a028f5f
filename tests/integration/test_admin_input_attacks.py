"""Hostile inputs to SSO's own REST APIs (audit trail, complaints, rates): each is answered with
a clear 4xx naming the field, never a 500 ``server.internal``, and nothing is half-written."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from app.main import Gateway
from tests.support.people import new_national_id
from tests.support.rest_api import problem, rest

pytestmark = pytest.mark.db

NID = "3100600445635"
# Valid ISO date-times within Python's range whose UTC instant is not: PostgreSQL (and
# asyncpg's encoder) cannot take them.
BEFORE_YEAR_1_UTC = "0001-01-01T00:00:00+01:00"
AFTER_YEAR_9999_UTC = "9999-12-31T23:59:59-01:00"


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with rest(live_url, client_token) as client:
        yield client


def cursor_of(text: str) -> str:
    """A cursor in the gateway's own encoding (urlsafe base64 without padding)."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# --- audit trail: from / to bounds -------------------------------------------------------------
@pytest.mark.parametrize("bound", ["from", "to"])
@pytest.mark.parametrize("moment", [BEFORE_YEAR_1_UTC, AFTER_YEAR_9999_UTC])
async def test_audit_lookups_bound_out_of_the_stores_range_is_a_client_error(
    api: httpx.AsyncClient, bound: str, moment: str
) -> None:
    response = await api.get("/api/v1/audit/lookups", params={"nationalId": NID, bound: moment})
    assert problem(response, 422, "client.invalid_input")["field"] == bound


@pytest.mark.parametrize("bound", ["from", "to"])
@pytest.mark.parametrize("moment", [BEFORE_YEAR_1_UTC, AFTER_YEAR_9999_UTC])
async def test_audit_verify_bound_out_of_the_stores_range_is_a_client_error(
    api: httpx.AsyncClient, bound: str, moment: str
) -> None:
    response = await api.get("/api/v1/audit/verify", params={bound: moment})
    assert problem(response, 422, "client.invalid_input")["field"] == bound


# --- audit trail: cursors ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    [
        "2024-01-01T00:00:00+00:00|99999999999999999999",  # seq past bigint
        "2024-01-01T00:00:00+00:00|-99999999999999999999",
        f"{BEFORE_YEAR_1_UTC}|1",  # instant before year 1 in UTC
        f"{AFTER_YEAR_9999_UTC}|1",
    ],
)
async def test_audit_lookups_cursor_out_of_range_is_a_client_error(
    api: httpx.AsyncClient, token: str
) -> None:
    response = await api.get(
        "/api/v1/audit/lookups", params={"nationalId": NID, "cursor": cursor_of(token)}
    )
    assert problem(response, 422, "client.invalid_input")["field"] == "cursor"


# --- complaints --------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [f"{BEFORE_YEAR_1_UTC}|1", f"{AFTER_YEAR_9999_UTC}|1"])
async def test_complaints_cursor_out_of_range_is_a_client_error(
    api: httpx.AsyncClient, token: str
) -> None:
    response = await api.get("/api/v1/complaints", params={"cursor": cursor_of(token)})
    assert problem(response, 422, "client.invalid_input")["field"] == "cursor"


@pytest.mark.parametrize(
    "age", ["P9999999999D", "9999999999d", "99999999999999w", "PT99999999999999999H"]
)
async def test_complaints_older_than_past_what_a_timedelta_holds_is_a_client_error(
    api: httpx.AsyncClient, age: str
) -> None:
    # Far longer than the ten years the parser allows: refused as such, not overflowed.
    response = await api.get("/api/v1/complaints", params={"olderThan": age})
    assert problem(response, 422, "client.invalid_input")["field"] == "olderThan"


@pytest.mark.parametrize("space", ["\u00a0", "\u3000", " "])
async def test_a_complaint_national_id_with_surrounding_space_is_refused_and_not_stored(
    api: httpx.AsyncClient, gateway: Gateway, space: str
) -> None:
    # Every other route refuses such an ID (length 14); strip() must not turn it into a
    # valid one here and open a case on the person.
    nid = new_national_id()
    for sent in (space + nid, nid + space):
        response = await api.post(
            "/api/v1/complaints",
            json={"nationalId": sent, "category": "other", "description": "probe"},
        )
        assert problem(response, 422, "client.invalid_national_id")["reason"] == "length"
    stored = await gateway.db.primary.fetchval(
        "SELECT count(*) FROM complaints WHERE national_id = $1", nid
    )
    assert stored == 0


# --- rates -------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["amount", "governmentAmount"])
@pytest.mark.parametrize("baht", ["21474836.48", "30000000.00", "99999999999999.99"])
async def test_a_rate_amount_past_the_columns_range_is_a_client_error_and_not_stored(
    api: httpx.AsyncClient, gateway: Gateway, field: str, baht: str
) -> None:
    # contribution_rates.amount_satang / government_satang are `integer` (at most
    # 2,147,483,647 satang); the amounts pass to_satang (15 digits of baht).
    month = "2098-07"
    body = {"section": 39, "firstMonth": month, "lastMonth": month, "amount": "1.00", field: baht}
    before = await gateway.db.primary.fetchval("SELECT count(*) FROM contribution_rates")
    response = await api.post("/api/v1/rates", json=body)
    assert response.status_code == 422, (response.status_code, response.text)
    assert response.json()["code"] in {"client.invalid_amount", "client.invalid_input"}
    assert response.json()["field"] == field
    after = await gateway.db.primary.fetchval("SELECT count(*) FROM contribution_rates")
    assert after == before
