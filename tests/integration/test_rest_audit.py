"""The audit trail over REST: who looked up an ID, as JSON or CSV, a page at a time; verify."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from app.domain.calendar import thai_datetime
from app.main import Gateway
from tests.support.clock import business_clock
from tests.support.people import add_person
from tests.support.rest_api import audit_rows, new_token, problem, replicas, rest
from tests.support.scenarios import current_month, wait_replayed

pytestmark = pytest.mark.db


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with rest(live_url, client_token) as client:
        yield client


async def looked_up(gateway: Gateway, api: httpx.AsyncClient, times: int) -> str:
    """A fresh person inquired about ``times`` times; returns the ID."""
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=40, option=1, coverage_start=current_month())
        await wait_replayed(conn, replicas(gateway))
    for _ in range(times):
        response = await api.get(f"/api/v1/insured/{nid}/contributions")
        assert response.status_code == 200
    return nid


async def test_lookups_as_json_name_who_saw_what(api: httpx.AsyncClient, gateway: Gateway) -> None:
    nid = await looked_up(gateway, api, 2)
    response = await api.get("/api/v1/audit/lookups", params={"nationalId": nid})
    assert response.status_code == 200, response.text
    records = response.json()["records"]
    assert [r["operation"] for r in records] == ["InquireContribution"] * 2
    assert all(r["nameReturned"] == "นางสมหญิง ใจดี" and r["protocol"] == "rest" for r in records)
    assert records[0]["at"] >= records[1]["at"], "newest first"
    assert response.json()["nextCursor"] is None
    # The lookup itself is on the record.
    own = await audit_rows(gateway, response.headers["x-request-id"])
    assert [(r["operation"], r["national_id"], r["outcome"]) for r in own] == [
        ("AuditLookups", nid, "ok")
    ]


async def test_lookups_page_with_a_cursor_as_json_and_csv(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    nid = await looked_up(gateway, api, 3)
    # Only the inquiries: each lookup below is recorded too, after this instant.
    before = business_clock()().isoformat()
    params: dict[str, str | int] = {"nationalId": nid, "limit": 2, "to": before}
    first = (await api.get("/api/v1/audit/lookups", params=params)).json()
    assert len(first["records"]) == 2 and first["nextCursor"]
    second = (
        await api.get("/api/v1/audit/lookups", params={**params, "cursor": first["nextCursor"]})
    ).json()
    seqs = [r["seq"] for r in first["records"] + second["records"]]
    assert len(seqs) == len(set(seqs)) >= 3

    as_csv = await api.get("/api/v1/audit/lookups", params=params, headers={"Accept": "text/csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [int(r["seq"]) for r in rows] == [r["seq"] for r in first["records"]]
    assert rows[0]["nationalId"] == nid and rows[0]["nameReturned"] == "นางสมหญิง ใจดี"
    at = datetime.fromisoformat(rows[0]["at"].replace("Z", "+00:00"))
    assert rows[0]["atTh"] == thai_datetime(at)  # for officers: Bangkok time, Buddhist Era
    assert as_csv.headers["x-next-cursor"] == first["nextCursor"]
    assert 'rel="next"' in as_csv.headers["link"]
    # JSON wins when the client prefers it or does not say.
    preferred = await api.get(
        "/api/v1/audit/lookups",
        params=params,
        headers={"Accept": "application/json, text/csv;q=0.5"},
    )
    assert preferred.headers["content-type"].startswith("application/json")


async def test_lookup_input_is_checked(api: httpx.AsyncClient) -> None:
    bad = await api.get("/api/v1/audit/lookups", params={"nationalId": "12345"})
    assert problem(bad, 422, "client.invalid_national_id")["reason"] == "length"
    naive = await api.get(
        "/api/v1/audit/lookups", params={"nationalId": "3100600445635", "from": "2024-01-01T00:00"}
    )
    assert problem(naive, 422, "client.invalid_input")["field"] == "from"
    problem(
        await api.get(
            "/api/v1/audit/lookups", params={"nationalId": "3100600445635", "cursor": "x"}
        ),
        422,
        "client.invalid_input",
    )


async def test_verify_finds_the_chain_whole(api: httpx.AsyncClient, gateway: Gateway) -> None:
    await looked_up(gateway, api, 1)
    await gateway.sealer.seal()  # as every instance does at its cadence
    response = await api.get("/api/v1/audit/verify")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True and body["checked"] > 0 and body["firstBroken"] is None
    assert body["checkpoints"] >= 1 and 1 <= body["sealedSeq"] <= body["headSeq"]
    ranged = await api.get(
        "/api/v1/audit/verify",
        params={"from": "2000-01-01T00:00:00+00:00", "to": "2100-01-01T00:00:00+00:00"},
    )
    assert ranged.status_code == 200 and ranged.json()["ok"] is True
    backwards = await api.get(
        "/api/v1/audit/verify",
        params={"from": "2100-01-01T00:00:00+00:00", "to": "2000-01-01T00:00:00+00:00"},
    )
    problem(backwards, 422, "client.invalid_input")


async def test_the_audit_trail_needs_the_audit_scope(live_url: str, gateway: Gateway) -> None:
    nid = "3100600445635"
    async with rest(live_url, await new_token(gateway, ["admin", "counter"])) as api:
        refused = await api.get("/api/v1/audit/lookups", params={"nationalId": nid})
        assert problem(refused, 403, "client.scope_not_allowed")["scope"] == "audit"
        problem(await api.get("/api/v1/audit/verify"), 403, "client.scope_not_allowed")
    records = await audit_rows(gateway, refused.headers["x-request-id"])
    assert [(r["operation"], r["outcome"], r["national_id"]) for r in records] == [
        ("AuditLookups", "client.scope_not_allowed", nid)
    ]
