"""`POST /api/v1/settlements` and `GET /api/v1/settlements/{id}` over HTTP, scope ``admin``."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.audit.admin_gate import AdminGate
from app.main import Gateway
from app.settings import Settings
from app.settlement.access import SettlementAccess
from app.settlement.repository import SettlementRepository
from app.settlement.routes import settlements_router
from app.settlement.service import SettlementService
from tests.conftest import PartnerCredentials
from tests.integration.test_settlement_import import AFTER_DAY, DAY, bank_bytes, business_day
from tests.support.clock import business_clock

pytestmark = pytest.mark.db


@pytest.fixture
async def api(gateway: Gateway, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The settlement routes on the session's gateway, over ASGI from a loopback address."""
    gate = AdminGate(admission=gateway.admission, audit=gateway.audit,
                     prefixes=settings.prefixes(), clock=business_clock())  # fmt: skip
    service = SettlementService(
        store=SettlementRepository(lambda: gateway.db.primary), clock=lambda: AFTER_DAY
    )
    app = FastAPI()
    app.include_router(settlements_router(SettlementAccess(gate=gate, service=service)))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_upload_as_the_raw_body_then_read_the_stored_result(
    gateway: Gateway, partner: PartnerCredentials, api: httpx.AsyncClient, client_token: str
) -> None:
    day = await business_day(gateway, partner)
    params = {"partner": day.partner, "businessDate": str(DAY)}
    headers = bearer(client_token) | {"Content-Type": "application/octet-stream"}
    first = await api.post("/api/v1/settlements", params=params, content=bank_bytes(day),
                           headers=headers)  # fmt: skip
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["counts"]["matched"] == 2 and body["mismatches"] == 5
    assert [line["outcome"] for line in body["lines"]][:2] == ["only_in_file", "only_in_file"]
    assert body["lines"][4] | {"nationalId": "-"} == {
        "outcome": "amount_differs", "lineNo": 4, "partnerTxnId": "TX-AMOUNT",
        "nationalId": "-", "section": 40, "fileMonths": ["2031-05", "2031-06"],
        "fileAmount": "150.00", "gatewayMonths": ["2031-05", "2031-06"],
        "gatewayAmount": "140.00", "paymentId": body["lines"][4]["paymentId"],
        "note": "differs: amount",
    }  # fmt: skip

    again = await api.post("/api/v1/settlements", params=params, content=bank_bytes(day),
                           headers=headers)  # fmt: skip
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["id"] == body["id"]

    page = await api.get(f"/api/v1/settlements/{body['id']}", params={"limit": 3},
                         headers=bearer(client_token))  # fmt: skip
    assert page.status_code == 200
    assert [line["partnerTxnId"] for line in page.json()["lines"]] == [
        "TX-CANCELLED", "TX-FILE-ONLY", "TX-GATEWAY"]  # fmt: skip
    rest = await api.get(f"/api/v1/settlements/{body['id']}",
                         params={"cursor": page.json()["nextCursor"]},
                         headers=bearer(client_token))  # fmt: skip
    assert [line["outcome"] for line in rest.json()["lines"]] == [
        "months_differ", "amount_differs", "matched", "matched"]  # fmt: skip

    audit = await gateway.db.primary.fetch(
        "SELECT operation, outcome FROM audit_log WHERE principal_kind = 'client'"
        " AND operation IN ('ImportSettlement', 'GetSettlement') AND detail->>'settlement' = $1",
        str(body["id"]),
    )
    assert sorted((r["operation"], r["outcome"]) for r in audit) == [
        ("GetSettlement", "ok"), ("GetSettlement", "ok"), ("ImportSettlement", "ok"),
        ("ImportSettlement", "ok")]  # fmt: skip


async def test_a_bad_trailer_is_a_problem_naming_the_line(
    gateway: Gateway, partner: PartnerCredentials, api: httpx.AsyncClient, client_token: str
) -> None:
    day = await business_day(gateway, partner)
    records = bank_bytes(day).split(b"\r\n")
    records[-2] = records[-2][:22] + b"000000009" + records[-2][31:]
    answer = await api.post(
        "/api/v1/settlements", params={"partner": day.partner, "businessDate": str(DAY)},
        content=b"\r\n".join(records), headers=bearer(client_token),
    )  # fmt: skip
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["code"] == "client.invalid_settlement_file"
    assert (problem["line"], problem["trailerCount"], problem["detailCount"]) == (8, 9, 6)


async def test_only_admin_clients_may_import(
    gateway: Gateway, partner: PartnerCredentials, api: httpx.AsyncClient
) -> None:
    day = await business_day(gateway, partner)
    params = {"partner": day.partner, "businessDate": str(DAY)}
    anonymous = await api.post("/api/v1/settlements", params=params, content=bank_bytes(day))
    assert anonymous.status_code == 401
    counter = await gateway.registry.add_client(
        name=f"c-{uuid.uuid4().hex[:10]}", scopes=["counter"]
    )
    refused = await api.post("/api/v1/settlements", params=params, content=bank_bytes(day),
                             headers=bearer(counter.token))  # fmt: skip
    assert refused.status_code == 403 and refused.json()["code"] == "client.scope_not_allowed"
    assert (
        await gateway.db.primary.fetchval(
            "SELECT count(*) FROM settlement_imports WHERE partner_id = $1", day.partner_id
        )
        == 0
    )
    missing = await api.get("/api/v1/settlements/999999999", headers=bearer(counter.token))
    assert missing.status_code == 403


async def test_a_multipart_upload(
    gateway: Gateway, partner: PartnerCredentials, api: httpx.AsyncClient, client_token: str
) -> None:
    day = await business_day(gateway, partner)
    answer = await api.post(
        "/api/v1/settlements", params={"partner": day.partner, "businessDate": str(DAY)},
        files={"file": ("cvs-20310512.txt", bank_bytes(day), "application/octet-stream")},
        headers=bearer(client_token),
    )  # fmt: skip
    if importlib.util.find_spec("python_multipart") is None:
        assert answer.status_code == 422
        assert answer.json()["reason"] == "multipart_unavailable"
    else:
        assert answer.status_code == 201, answer.text
        assert answer.json()["fileName"] == "cvs-20310512.txt"
