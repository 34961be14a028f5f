"""Complaint cases over REST and the command line, on the real database.

A case is linked to its payment and to the person's audit records around it; a paid-not-posted
case whose payment is confirmed resolves itself; the back office lists cases by state, partner
and age and moves them open → investigating → resolved | rejected, and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.complaints.repository import ComplaintsRepository
from app.complaints.service import ComplaintService
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.integration.test_access_report import accountability_api
from tests.integration.test_settlement_cli import ssogw
from tests.support.clock import business_clock
from tests.support.counter_calls import caller, confirm_request, s40_person, today
from tests.support.rest_api import audit_rows, new_client, problem
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


@pytest.fixture
async def back_office(gateway: Gateway) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """(client name, an HTTP client) of a fresh client with the admin scope."""
    name, token = await new_client(gateway, ["admin"])
    async with accountability_api(gateway, token) as api:
        yield name, api


async def paid(gateway: Gateway, partner: PartnerCredentials) -> tuple[str, str, str]:
    """A person who paid this month at the partner's counter: (ID, transaction id, receipt)."""
    nid = await s40_person(gateway)
    txn = f"CMP-{uuid.uuid4().hex[:12]}"
    result = await gateway.counter.confirm(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=confirm_request(nid, [str(today())], 7_000, txn=txn),
    )
    return nid, txn, result.receipt_no


async def test_a_paid_not_posted_case_whose_payment_is_confirmed_resolves_itself(
    gateway: Gateway, partner: PartnerCredentials, back_office: tuple[str, httpx.AsyncClient]
) -> None:
    client, api = back_office
    nid, txn, receipt = await paid(gateway, partner)
    response = await api.post("/api/v1/complaints", json={
        "nationalId": nid, "category": "paid-not-posted", "partner": partner.name,
        "partnerTxnId": txn, "description": "จ่ายที่เคาน์เตอร์แล้ว แต่ยอดไม่ขึ้น",
    })  # fmt: skip
    assert response.status_code == 201, response.text
    case = response.json()
    assert response.headers["location"] == f"/api/v1/complaints/{case['id']}"
    assert (case["state"], case["receiptNo"], case["partner"]) == (
        "resolved",
        receipt,
        partner.name,
    )
    assert case["name"] == "นางสมหญิง ใจดี"
    assert case["payment"]["receiptNo"] == receipt and case["payment"]["amount"] == "70.00"
    assert case["payment"]["months"] == [str(today())]
    opened, resolved = case["history"]
    assert (opened["from"], opened["to"], opened["who"], opened["via"]) == (
        None, "open", client, f"client:{client}")  # fmt: skip
    assert (resolved["from"], resolved["to"], resolved["who"]) == ("open", "resolved", "system")
    assert receipt in resolved["note"]
    assert [(a["operation"], a["outcome"], a["principalName"]) for a in case["auditRecords"]] == [
        ("ConfirmPayment", "ok", partner.name)]  # fmt: skip
    records = await audit_rows(gateway, response.headers["x-request-id"])
    assert [(r["operation"], r["outcome"], r["national_id"]) for r in records] == [
        ("OpenComplaint", "ok", nid)]  # fmt: skip


async def test_a_case_moves_open_investigating_resolved_or_rejected_and_nothing_else(
    gateway: Gateway, partner: PartnerCredentials, back_office: tuple[str, httpx.AsyncClient]
) -> None:
    client, api = back_office
    nid, _, receipt = await paid(gateway, partner)
    opened = await api.post("/api/v1/complaints", json={
        "nationalId": nid, "category": "wrong-amount", "receiptNo": receipt,
        "description": "Charged 100 baht, the slip says 70.", "openedBy": "Officer Malee",
    })  # fmt: skip
    case = opened.json()
    assert (case["state"], case["payment"]["id"], case["partner"]) == (
        "open", case["paymentId"], partner.name)  # fmt: skip
    assert case["history"][0]["who"] == "Officer Malee"
    url = f"/api/v1/complaints/{case['id']}/transition"

    skipped = await api.post(url, json={"to": "resolved", "who": "Officer Malee"})
    body = problem(skipped, 409, "client.conflict")
    assert (body["state"], body["allowed"]) == ("open", ["investigating"])
    records = await audit_rows(gateway, skipped.headers["x-request-id"])
    assert [(r["operation"], r["outcome"], r["national_id"]) for r in records] == [
        ("TransitionComplaint", "client.conflict", nid)]  # fmt: skip

    moved = await api.post(url, json={"to": "investigating", "who": "Officer Malee",
                                      "note": "Asked the partner for its log."})  # fmt: skip
    assert moved.status_code == 200 and moved.json()["state"] == "investigating"
    done = await api.post(url, json={"to": "rejected", "who": "Officer Somchai",
                                     "note": "The counter's log shows 70.00 baht."})  # fmt: skip
    assert done.json()["state"] == "rejected"
    closed = await api.post(url, json={"to": "investigating", "who": "Officer Somchai"})
    assert "it is closed" in problem(closed, 409, "client.conflict")["detail"]
    problem(await api.post(url, json={"to": "open", "who": "x"}), 422, "client.invalid_input")

    shown = (await api.get(f"/api/v1/complaints/{case['id']}")).json()
    assert [(h["from"], h["to"], h["who"], h["via"]) for h in shown["history"]] == [
        (None, "open", "Officer Malee", f"client:{client}"),
        ("open", "investigating", "Officer Malee", f"client:{client}"),
        ("investigating", "rejected", "Officer Somchai", f"client:{client}"),
    ]
    assert shown["history"][2]["note"] == "The counter's log shows 70.00 baht."
    assert shown["updatedAt"] > shown["createdAt"]


async def test_a_case_without_a_confirmed_payment_of_the_person_stays_open(
    gateway: Gateway, partner: PartnerCredentials, back_office: tuple[str, httpx.AsyncClient]
) -> None:
    _, api = back_office
    nid, _, receipt = await paid(gateway, partner)
    someone = await s40_person(gateway)

    async def open_case(**fields: Any) -> dict[str, Any]:
        body = {"category": "paid-not-posted", "description": "Not shown.", **fields}
        response = await api.post("/api/v1/complaints", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    lost = await open_case(nationalId=nid, partner=partner.name, partnerTxnId="NO-SUCH-TXN")
    assert (lost["state"], lost["payment"], lost["receiptNo"]) == ("open", None, None)
    assert lost["history"][0]["note"] == "No payment NO-SUCH-TXN was found."
    assert [a["operation"] for a in lost["auditRecords"]] == ["ConfirmPayment"], "by ID and time"
    elsewhere = await open_case(nationalId=someone, receiptNo=receipt)
    assert elsewhere["state"] == "open" and elsewhere["payment"]["nationalId"] == nid
    assert "another national ID" in elsewhere["history"][0]["note"]
    assert elsewhere["auditRecords"] == [], "the audit records are the complainant's"


async def test_the_back_office_lists_cases_by_state_partner_and_age(
    gateway: Gateway,
    partner: PartnerCredentials,
    back_office: tuple[str, httpx.AsyncClient],
    owner_pool: asyncpg.Pool,
) -> None:
    _, api = back_office
    ids = []
    for category in ("other", "charged-twice", "wrong-amount"):
        nid, _, receipt = await paid(gateway, partner)
        opened = await api.post("/api/v1/complaints", json={
            "nationalId": nid, "category": category, "receiptNo": receipt,
            "description": f"{category} case"})  # fmt: skip
        ids.append(opened.json()["id"])
    # Backdated with the owner's rights: the gateway never changes when a case was opened.
    await owner_pool.execute(
        "UPDATE complaints SET created_at = created_at - interval '4 days' WHERE id = $1", ids[1]
    )

    async def listed(**params: str | int) -> list[int]:
        response = await api.get("/api/v1/complaints", params={"partner": partner.name, **params})
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["complaints"]]

    assert await listed() == [ids[1], ids[0], ids[2]], "oldest first"
    assert await listed(olderThan="P3D") == await listed(olderThan="72h") == [ids[1]]
    assert await listed(olderThan="P1DT12H") == await listed(olderThan="3d") == [ids[1]]
    assert await listed(olderThan="P5D") == await listed(olderThan="1w") == []
    await api.post(f"/api/v1/complaints/{ids[0]}/transition",
                   json={"to": "investigating", "who": "Officer Malee"})  # fmt: skip
    assert await listed(state="investigating") == [ids[0]]
    assert await listed(state="open") == [ids[1], ids[2]]
    first = await api.get("/api/v1/complaints", params={"partner": partner.name, "limit": 2})
    page = first.json()
    assert [c["id"] for c in page["complaints"]] == [ids[1], ids[0]] and page["nextCursor"]
    rest = await listed(cursor=page["nextCursor"], limit=2)
    assert rest == [ids[2]]
    seen = await audit_rows(gateway, first.headers["x-request-id"])
    assert sorted(r["operation"] for r in seen) == ["ListComplaints"] * 3, "two people and the call"
    bad = await api.get("/api/v1/complaints", params={"olderThan": "three days"})
    assert problem(bad, 422, "client.invalid_input")["field"] == "olderThan"
    nobody = await api.get("/api/v1/complaints", params={"partner": "no-such-partner"})
    assert problem(nobody, 422, "client.invalid_input")["field"] == "partner"


async def test_complaint_input_and_access_are_checked(
    gateway: Gateway, back_office: tuple[str, httpx.AsyncClient]
) -> None:
    _, api = back_office
    nid = await s40_person(gateway)
    base = {"nationalId": nid, "description": "x"}
    cases = [
        ({**base, "category": "lost"}, "category"),
        ({**base, "category": "paid-not-posted", "partnerTxnId": "T1"}, "partner"),
        ({**base, "category": "paid-not-posted"}, "receiptNo"),
        ({**base, "category": "other", "description": "  "}, "description"),
        ({**base, "nationalId": "3100600445636", "category": "other"}, None),
        ({**base, "category": "other", "paidOn": "9999-12-31"}, "paidOn"),
    ]
    for body, field in cases:
        response = await api.post("/api/v1/complaints", json=body)
        assert response.status_code == 422, (body, response.text)
        if field is not None:
            assert response.json()["field"] == field, (body, response.json())
    other = await api.post("/api/v1/complaints", json={**base, "category": "other"})
    assert other.status_code == 201 and other.json()["state"] == "open"
    problem(await api.get("/api/v1/complaints/999999999"), 404, "client.not_found")
    for cursor in ("x", "OTk5OS0wMS0wMVQwMDowMDowMCswMDowMHw5OTk5OTk5OTk5OTk5OTk5OTk5OQ"):
        bad = await api.get("/api/v1/complaints", params={"cursor": cursor})
        assert problem(bad, 422, "client.invalid_input")["field"] == "cursor"
    _, auditor = await new_client(gateway, ["audit", "counter"])
    async with accountability_api(gateway, auditor) as refused:
        response = await refused.get("/api/v1/complaints")
    assert problem(response, 403, "client.scope_not_allowed")["scope"] == "admin"


async def test_open_cases_are_counted_by_category_and_age(
    gateway: Gateway, back_office: tuple[str, httpx.AsyncClient], owner_pool: asyncpg.Pool
) -> None:
    _, api = back_office
    service = ComplaintService(
        store=ComplaintsRepository(pool_provider=lambda: gateway.db.primary), clock=business_clock()
    )
    before = await service.open_complaints_by_category_and_age()
    assert len(before) == 4 * 5 and set(before.values()) >= {0}
    nid = await s40_person(gateway)
    fresh = await api.post("/api/v1/complaints", json={
        "nationalId": nid, "category": "other", "description": "A question."})  # fmt: skip
    aged = await api.post("/api/v1/complaints", json={
        "nationalId": nid, "category": "wrong-amount", "receiptNo": "R-UNKNOWN",
        "description": "Wrong amount."})  # fmt: skip
    await owner_pool.execute(
        "UPDATE complaints SET created_at = $2 WHERE id = $1",
        aged.json()["id"],
        business_clock()() - timedelta(days=4),
    )
    closed = await api.post("/api/v1/complaints", json={
        "nationalId": nid, "category": "other", "description": "Closed one."})  # fmt: skip
    url = f"/api/v1/complaints/{closed.json()['id']}/transition"
    await api.post(url, json={"to": "investigating", "who": "Officer Malee"})
    await api.post(url, json={"to": "resolved", "who": "Officer Malee"})
    after = await service.open_complaints_by_category_and_age()
    changed = {key: after[key] - before[key] for key in after if after[key] != before[key]}
    assert fresh.status_code == 201
    assert changed == {("other", "<1d"): 1, ("wrong-amount", "3-7d"): 1}
    # What the metrics get: the same counts, refreshed in the background.
    published: asyncio.Queue[Mapping[tuple[str, str], int]] = asyncio.Queue()
    task = asyncio.create_task(service.publish_open_counts(published.put_nowait, interval_s=0.01))
    try:
        assert await asyncio.wait_for(published.get(), 10) == after
        assert await asyncio.wait_for(published.get(), 10) == after
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.usefixtures("cli_time")  # drives ssogw: wall-clock business time
async def test_the_command_line_lists_cases_and_records_who_it_showed(
    gateway: Gateway, partner: PartnerCredentials, back_office: tuple[str, httpx.AsyncClient],
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _, api = back_office
    nid, txn, _ = await paid(gateway, partner)
    await api.post("/api/v1/complaints", json={
        "nationalId": nid, "category": "charged-twice", "partner": partner.name,
        "partnerTxnId": txn, "description": "Charged twice."})  # fmt: skip
    code = await ssogw(monkeypatch, settings, "complaints", "list", "--partner", partner.name,
                       "--state", "open", "--older-than", "PT0H", "--json")  # fmt: skip
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert [(c["nationalId"], c["category"]) for c in document["complaints"]] == [
        (nid, "charged-twice")]  # fmt: skip
    rows = await gateway.db.primary.fetch(
        "SELECT protocol, principal_kind FROM audit_log"
        " WHERE national_id = $1 AND operation = 'ListComplaints'",
        nid,
    )
    assert [(r["protocol"], r["principal_kind"]) for r in rows] == [("cli", "operator")]
    code = await ssogw(monkeypatch, settings, "complaints", "list", "--partner", partner.name)
    assert code == 0 and "charged-twice" in capsys.readouterr().out
