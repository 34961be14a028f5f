"""Attacks on 1e0a841 (records of the persons a refund listing, a rate's overpayments and a
complaint's payment show): what the insured person's own access report then says.

Each test states a defect found on the code as it stood; it fails until the defect is fixed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from _pytest.monkeypatch import MonkeyPatch
from fastapi import APIRouter, FastAPI

from app.audit.records import AuditRecord
from app.domain.months import Month
from app.errors import AuditUnavailable
from app.main import Gateway
from app.rates.routes import add_rates_routes
from app.rest.problem import ProblemRoute
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.integration.test_access_report import accountability_api
from tests.integration.test_complaints import paid
from tests.integration.test_settlement_cli import ssogw
from tests.support.clock import business_clock
from tests.support.counter_calls import s40_person
from tests.support.people import add_person, end_membership
from tests.support.rest_api import bearer, new_client

pytestmark = pytest.mark.db


async def test_the_payers_access_report_says_what_a_case_showed_of_them(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    """A case for A that shows B's payment now leaves a record naming B (OpenComplaint,
    GetComplaint, ``listed``), but B's access report renders it with the complainant's
    wording: "disclosed: name, complaint case, receipt". The answer never showed B's name
    and no complaint of B's; it showed B's national ID, months paid and amount paid, which
    the report does not say ("what did they see", DESIGN.md: Audit trail)."""
    _, token = await new_client(gateway, ["admin", "audit"])
    payer, _, receipt = await paid(gateway, partner)
    complainant = await s40_person(gateway)
    start = business_clock()() - timedelta(minutes=5)
    async with accountability_api(gateway, token) as api:
        opened = await api.post("/api/v1/complaints", json={
            "nationalId": complainant, "category": "paid-not-posted",
            "receiptNo": receipt, "description": "Posted to someone else?"})  # fmt: skip
        assert opened.status_code == 201, opened.text
        assert opened.json()["payment"]["nationalId"] == payer
        shown = await api.get(f"/api/v1/complaints/{opened.json()['id']}")
        assert shown.status_code == 200
        end = business_clock()() + timedelta(minutes=5)
        window = {"from": start.isoformat(), "to": end.isoformat()}
        report = await api.get(f"/api/v1/insured/{payer}/access-report", params=window)
    assert report.status_code == 200, report.text
    entries = [a for a in report.json()["accesses"] if a["operation"] == "ComplaintPaymentShown"]
    assert len(entries) == 2, [a["operation"] for a in report.json()["accesses"]]  # open, get
    for a in entries:
        disclosed = set(a["disclosedEn"])
        assert {"months paid", "amount paid"} <= disclosed and "name" not in disclosed, (
            f"{a['operation']} showed {payer}'s payment (ID, months, amount), not their name;"
            f" their report says it disclosed {sorted(disclosed)}"
        )


@pytest.mark.usefixtures("cli_time")  # drives ssogw: wall-clock business time
async def test_a_refund_listing_reads_in_plain_words_in_the_persons_report(
    gateway: Gateway, settings: Settings, monkeypatch: MonkeyPatch,
) -> None:  # fmt: skip
    """`ssogw refunds list` now records each person as ``ListRefunds``, an operation the
    access report has no words for: the insured person reads the raw code ``ListRefunds`` as
    the Thai operation, and "data of this operation" as what was disclosed, where the listing
    showed their name, section, months and amounts to refund."""
    first, ended = Month(2047, 1), Month(2047, 3)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=39, coverage_start=first,
                               paid=list(Month.range(first, Month(2047, 4))))  # fmt: skip
        await end_membership(conn, nid, ended)
    start = datetime.now(UTC) - timedelta(minutes=5)
    code = await ssogw(monkeypatch, settings, "refunds", "list", "--from", "2047-01",
                       "--to", "2047-04", "--json")  # fmt: skip
    assert code == 0
    _, token = await new_client(gateway, ["audit"])
    async with accountability_api(gateway, token) as api:
        report = await api.get(f"/api/v1/insured/{nid}/access-report", params={
            "from": start.isoformat(), "to": datetime.now(UTC).isoformat()})  # fmt: skip
    assert report.status_code == 200, report.text
    entries = [a for a in report.json()["accesses"] if a["operation"] == "ListRefunds"]
    assert entries, [a["operation"] for a in report.json()["accesses"]]
    listing = entries[0]
    assert listing["operationTh"] != "ListRefunds", "the Thai report shows the raw code"
    assert "name" in listing["disclosedEn"], listing["disclosedEn"]


async def test_a_cut_whose_persons_cannot_be_recorded_does_not_answer_201_with_half_a_document(
    gateway: Gateway, owner_pool: asyncpg.Pool, monkeypatch: MonkeyPatch
) -> None:
    """The persons of a cut's overpayments are recorded while the answer streams, after the
    status line: when their records cannot be committed (the audit store refuses for a moment:
    a full queue, a commit timeout), the client gets ``201 Created`` and a body that stops at
    ``"overpayments":[``, not JSON, and the trail holds ``AddRetroactiveRate ok`` alone,
    nothing saying the call failed. For a cut whose overpayments fit one chunk (most cuts),
    nothing had been sent but headers: the failure can be an error naming the added rate, if
    the first chunk is recorded before the response starts. Not ``server.audit_unavailable``,
    which says the call was not carried out and may be retried: a retry adds the line again
    (``server.rate_added_unlisted``, not retryable)."""
    month = Month(2003, 5)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=40, option=3, coverage_start=month, paid=[month],
                               paid_amount_satang=30_000)  # fmt: skip
    _, token = await new_client(gateway, ["admin"])
    writer = gateway.audit
    real = writer.record

    async def refusing(record: AuditRecord) -> None:
        if record.detail and record.detail.get("listed"):
            raise AuditUnavailable("the audit writer is falling behind", reason="queue_full")
        await real(record)

    monkeypatch.setattr(writer, "record", refusing)
    # The rate routes as the API mounts them: ProblemRoute answers a failure as a problem.
    app = FastAPI()
    router = APIRouter(prefix="/api/v1", route_class=ProblemRoute)
    add_rates_routes(router, gateway.api.rates)
    app.include_router(router)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    base = "http://gateway.test"
    async with httpx.AsyncClient(transport=transport, base_url=base, headers=bearer(token)) as api:
        response = await api.post("/api/v1/rates/retroactive", json={
            "section": 40, "option": 3, "firstMonth": str(month), "lastMonth": str(month),
            "amount": "180.00", "governmentAmount": "0.00",
            "note": "test: audit18 cut"})  # fmt: skip
    monkeypatch.undo()
    try:
        rate_id = await owner_pool.fetchval(
            "SELECT id FROM contribution_rates WHERE note = 'test: audit18 cut'"
            " ORDER BY id DESC LIMIT 1"
        )
        assert rate_id is not None, (
            f"the rate was committed: {response.status_code} {response.text}"
        )
        assert nid not in response.text, "no unrecorded person was shown"
        if response.status_code == 201:
            try:
                json.loads(response.text)
            except ValueError:
                pytest.fail(
                    "201 Created with a body that is not JSON: "
                    f"{response.text[-60:]!r}; the persons' records were never committed"
                )
        else:  # the answer says the rate was added, and must not be added again
            assert response.status_code == 500, response.text
            problem = response.json()
            assert problem["code"] == "server.rate_added_unlisted"
            assert problem["retryable"] is False, "a retry would add the rate line again"
            assert problem["rateId"] == rate_id, problem
    finally:
        await owner_pool.execute("DELETE FROM contribution_rates WHERE note = 'test: audit18 cut'")
        gateway.rates.invalidate()
