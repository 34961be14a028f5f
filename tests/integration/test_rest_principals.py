"""Partners and internal clients over REST: secrets shown once; disable and rotate bite at once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from app.main import Gateway
from tests.support.people import new_national_id
from tests.support.rest_api import audit_rows, bearer, new_token, problem, rest

pytestmark = pytest.mark.db


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with rest(live_url, client_token) as client:
        yield client


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def test_partner_lifecycle(api: httpx.AsyncClient, gateway: Gateway) -> None:
    partner = name("p")
    created = await api.post(
        "/api/v1/partners",
        json={
            "name": partner,
            "cidrs": ["203.0.113.0/24"],
            "rateLimit": 20,
            "operations": ["InquireContribution", "GetPaymentStatus"],
        },
    )
    assert created.status_code == 201, created.text
    issued = created.json()
    assert issued["username"] == partner and len(issued["password"]) >= 20
    assert created.headers["cache-control"] == "no-store"
    assert issued["partner"]["operations"] == ["GetPaymentStatus", "InquireContribution"]
    listed = await api.get("/api/v1/partners")
    mine = [p for p in listed.json()["partners"] if p["name"] == partner]
    assert mine and mine[0]["status"] == "active"
    assert issued["password"] not in listed.text, "a secret is shown once, never listed"

    disabled = await api.post(f"/api/v1/partners/{partner}/disable")
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    enabled = await api.post(f"/api/v1/partners/{partner}/enable")
    assert enabled.json()["status"] == "active"
    rotated = await api.post(f"/api/v1/partners/{partner}/rotate")
    assert rotated.status_code == 200 and rotated.json()["password"] != issued["password"]
    assert rotated.json()["partner"]["rotatedAt"] is not None

    problem(
        await api.post("/api/v1/partners", json={"name": partner, "cidrs": ["10.0.0.0/8"]}),
        409,
        "client.already_exists",
    )
    problem(await api.post(f"/api/v1/partners/{name('none')}/disable"), 404, "client.not_found")
    bad = await api.post("/api/v1/partners", json={"name": name("p"), "cidrs": ["not a cidr"]})
    assert problem(bad, 422, "client.invalid_input")["field"] == "cidr"
    records = await audit_rows(gateway, created.headers["x-request-id"])
    assert [(r["operation"], r["outcome"]) for r in records] == [("AddPartner", "ok")]


async def test_client_token_works_until_rotated_or_disabled(
    api: httpx.AsyncClient, live_url: str
) -> None:
    client = name("c")
    created = await api.post("/api/v1/clients", json={"name": client, "scopes": ["counter"]})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert created.json()["client"]["scopes"] == ["counter"]
    assert token not in (await api.get("/api/v1/clients")).text

    inquiry = f"/api/v1/insured/{new_national_id()}/contributions"
    async with rest(live_url) as anonymous:
        # Admitted (the person is unknown), but not for admin work.
        problem(await anonymous.get(inquiry, headers=bearer(token)), 404, "client.person_not_found")
        problem(
            await anonymous.get("/api/v1/clients", headers=bearer(token)),
            403,
            "client.scope_not_allowed",
        )

        rotated = await api.post(f"/api/v1/clients/{client}/rotate")
        assert rotated.status_code == 200
        new = rotated.json()["token"]
        assert new != token
        problem(await anonymous.get(inquiry, headers=bearer(token)), 401, "client.unauthenticated")
        problem(await anonymous.get(inquiry, headers=bearer(new)), 404, "client.person_not_found")

        disabled = await api.post(f"/api/v1/clients/{client}/disable")
        assert disabled.json()["status"] == "disabled"
        problem(await anonymous.get(inquiry, headers=bearer(new)), 401, "client.unauthenticated")
        await api.post(f"/api/v1/clients/{client}/enable")
        problem(await anonymous.get(inquiry, headers=bearer(new)), 404, "client.person_not_found")


async def test_client_input_is_checked(api: httpx.AsyncClient) -> None:
    body = problem(
        await api.post("/api/v1/clients", json={"name": name("c"), "scopes": ["root"]}),
        422,
        "client.invalid_input",
    )
    assert body["field"] == "scopes" and body["allowed"] == ["admin", "audit", "counter"]
    problem(
        await api.post("/api/v1/clients", json={"name": "", "scopes": ["admin"]}),
        422,
        "client.invalid_input",
    )
    problem(await api.post(f"/api/v1/clients/{name('none')}/rotate"), 404, "client.not_found")


async def test_principals_need_the_admin_scope(live_url: str, gateway: Gateway) -> None:
    async with rest(live_url, await new_token(gateway, ["audit"])) as api:
        problem(await api.get("/api/v1/partners"), 403, "client.scope_not_allowed")
        problem(
            await api.post("/api/v1/clients", json={"name": name("c"), "scopes": ["admin"]}),
            403,
            "client.scope_not_allowed",
        )
