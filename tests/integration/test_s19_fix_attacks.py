"""Attacks on the session 19 fixes (668dbc1, 33cdb45): persons shown and recorded by settlement
answers, the names an audit lookup's record keeps, and the rate added whose answer failed.

Each test states a defect found on the code as it stood; it fails until the defect is fixed.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, time
from typing import Any

import asyncpg
import httpx
import pytest
from _pytest.monkeypatch import MonkeyPatch
from fastapi import APIRouter, FastAPI

from app.audit.records import Requester
from app.cli.session import operator
from app.domain.calendar import BANGKOK
from app.domain.months import Month
from app.errors import StoreUnavailable
from app.main import Gateway
from app.rates.routes import add_rates_routes
from app.rest.problem import ProblemRoute
from app.settlement.bank_file import SettlementLine
from tests.conftest import PartnerCredentials
from tests.integration.test_settlement_import import DAY, MAY, bank_bytes, business_day, pay
from tests.integration.test_settlement_import import service as settlement_service
from tests.integration.test_settlement_rest import api as settlement_api  # noqa: F401 (fixture)
from tests.support.people import add_person
from tests.support.rest_api import audit_rows, bearer, new_client

pytestmark = pytest.mark.db


# --- settlement: a person_differs line shows the ledger person's payment under another ID -------
async def test_a_person_differs_line_records_the_person_whose_payment_it_shows(
    gateway: Gateway, partner: PartnerCredentials, settlement_api: httpx.AsyncClient,  # noqa: F811
    client_token: str,
) -> None:  # fmt: skip
    """A file line whose transaction id is a ledger payment of person X, but which names person
    Y, is ``person_differs``: the answer shows Y's ID with X's payment beside it
    (``gatewayMonths``, ``gatewayAmount``, ``paymentId``, all read from X's ledger row).
    ``SettlementReport.people()`` takes only ``line.national_id`` (the file's: Y), and
    ``MatchLine`` does not even keep the ledger's ID: X's payment is shown and "who looked up
    X?" never names the client that saw it."""
    day = await business_day(gateway, partner)
    async with gateway.db.primary.acquire() as conn:
        owner = await add_person(conn, section=40, coverage_start=Month(2030, 1),
                                 first_name="ปรีชา", last_name="มั่นคง")  # fmt: skip
        await pay(conn, day.partner_id, "TX-PERSON", owner, 40, (MAY,), 7_000)
    named = day.people["wichai"]  # the file names someone else for X's transaction
    at = datetime.combine(DAY, time(10, 31), tzinfo=BANGKOK)
    lines = [*day.lines, SettlementLine(0, "TX-PERSON", named, 40, (MAY,), 7_000, at)]
    rid = f"s19f-{uuid.uuid4().hex[:12]}"
    imported = await settlement_api.post(
        "/api/v1/settlements", params={"partner": day.partner, "businessDate": str(DAY)},
        content=bank_bytes(day, lines),
        headers=bearer(client_token) | {"Content-Type": "application/octet-stream",
                                        "X-Request-ID": rid},
    )  # fmt: skip
    assert imported.status_code == 201, imported.text
    (line,) = [x for x in imported.json()["lines"] if x["partnerTxnId"] == "TX-PERSON"]
    assert line["outcome"] == "person_differs" and line["nationalId"] == named
    assert line["gatewayMonths"] == [str(MAY)] and line["gatewayAmount"] == "70.00", (
        "the line shows the ledger person's payment"
    )
    assert line["paymentId"] is not None
    seen = {r["national_id"] for r in await audit_rows(gateway, rid)}
    assert owner in seen, (
        f"the answer showed the payment of {owner} (under {named}); its records name only {seen}"
    )


# --- an audit lookup's record: the names it keeps double with every lookup --------------------
async def test_an_audit_lookups_record_keeps_each_name_once(gateway: Gateway) -> None:
    """``names_shown`` joins the distinct ``name_returned`` of the page with ``"; "``, and the
    page of a lookup holds the earlier lookups' own records, whose ``name_returned`` is such a
    joined text. Once a person has been shown under two names (a name changed, two forms of
    it), each lookup's record holds the previous ones' texts joined again: the text doubles
    with every lookup (2**n names after n lookups: a few dozen lookups of one ID and each
    record is megabytes, then the audit write, and the lookup, fails)."""
    nid = await _fresh_person(gateway)
    client = Requester(protocol="rest", principal_kind="client", request_id=uuid.uuid4().hex,
                       principal_name="s19f-app")  # fmt: skip
    at = datetime.now(UTC)
    for name in ("นางสมหญิง ใจดี", "นางสมหญิง ใจงาม"):  # before and after a change of name
        await gateway.audit.record(client.record(at=at, operation="GetContributions",
                                                 outcome="ok", national_id=nid,
                                                 name_returned=name))  # fmt: skip
    names: list[str | None] = []
    for _ in range(6):
        requester = operator()
        await gateway.audit_trail.lookups(nid, limit=100, requester=requester)
        rows = await audit_rows(gateway, requester.request_id)
        names.append(rows[0]["name_returned"])
    last = (names[-1] or "").split("; ")
    assert sorted(last) == ["นางสมหญิง ใจงาม", "นางสมหญิง ใจดี"], (
        f"after 6 lookups the record's name holds {len(last)} names"
        f" ({len(names[-1] or '')} characters); the lengths grew as"
        f" {[len(n or '') for n in names]}"
    )


async def _fresh_person(gateway: Gateway) -> str:
    async with gateway.db.primary.acquire() as conn:
        return await add_person(conn, section=40, coverage_start=Month(2030, 1))


# --- a rate added whose first overpayment cannot be read: retryable, and a retry adds it again --
async def test_a_rate_added_whose_overpayments_cannot_be_read_is_not_answered_retryable(
    gateway: Gateway, owner_pool: asyncpg.Pool, monkeypatch: MonkeyPatch
) -> None:
    """33cdb45 answers ``server.rate_added_unlisted`` (not retryable, naming the rate) when the
    persons of the first overpayments cannot be *recorded*. But ``first_overpayment`` reads
    them first, from the primary (``paid_months``, the rate table): when that read fails (the
    primary restarts, a failover, a connection cut: ``server.store_unavailable``), the error
    passes through as it is, 503 and retryable, though the rate line has committed. A client
    that retries adds the rate line a second time, the very defect 33cdb45 fixed."""
    month = Month(2003, 6)
    async with gateway.db.primary.acquire() as conn:
        await add_person(conn, section=40, option=3, coverage_start=month, paid=[month],
                         paid_amount_satang=30_000)  # fmt: skip
    _, token = await new_client(gateway, ["admin"])
    store = gateway.api.rates._store

    async def unreachable(**_: Any) -> AsyncGenerator[list[Any], None]:
        raise StoreUnavailable()
        yield []  # pragma: no cover (an async generator)

    monkeypatch.setattr(store, "paid_months", unreachable)
    app = FastAPI()
    router = APIRouter(prefix="/api/v1", route_class=ProblemRoute)
    add_rates_routes(router, gateway.api.rates)
    app.include_router(router)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    base = "http://gateway.test"
    note = f"test: s19f cut {uuid.uuid4().hex[:8]}"
    try:
        async with httpx.AsyncClient(transport=transport, base_url=base,
                                     headers=bearer(token)) as api:  # fmt: skip
            response = await api.post("/api/v1/rates/retroactive", json={
                "section": 40, "option": 3, "firstMonth": str(month), "lastMonth": str(month),
                "amount": "180.00", "governmentAmount": "0.00", "note": note})  # fmt: skip
        monkeypatch.undo()
        rate_id = await owner_pool.fetchval(
            "SELECT id FROM contribution_rates WHERE note = $1", note
        )
        assert rate_id is not None, f"the rate was committed: {response.status_code}"
        problem = response.json()
        assert problem.get("retryable") is False, (
            f"the rate {rate_id} was added, and the answer is {response.status_code}"
            f" {problem.get('code')} retryable={problem.get('retryable')}: a retry adds it again"
        )
        assert problem.get("rateId") == rate_id, problem
    finally:
        monkeypatch.undo()
        await owner_pool.execute("DELETE FROM contribution_rates WHERE note = $1", note)
        gateway.rates.invalidate()


# --- settlement: the largest page the API offers takes the audit writer's whole queue ---------
async def test_the_largest_settlement_page_is_answered_while_another_record_waits(
    gateway: Gateway, partner: PartnerCredentials, settlement_api: httpx.AsyncClient,  # noqa: F811
    client_token: str, monkeypatch: MonkeyPatch,
) -> None:  # fmt: skip
    """``GET /api/v1/settlements/{id}?limit=10000`` (``MAX_LINES``) now records each person of
    the page at once (``CallAudit.people_seen``: one ``sink.record`` each, gathered). The audit
    writer refuses a record when ``max_queued`` (20 x ``audit_max_batch`` = 10,000 by default)
    are waiting: a page of 10,000 persons fits only into an empty queue. With a single other
    caller's record waiting behind the commit in progress (any partner's inquiry, in
    production), the largest page the API offers is refused (``server.audit_unavailable``,
    503, "retry"), and so is every retry while traffic lasts. Here the commit in progress ends
    once the page's first records wait behind it."""
    day = await business_day(gateway, partner)
    at = datetime.combine(DAY, time(10, 31), tzinfo=BANGKOK)
    many = [SettlementLine(0, f"TX-BIG-{i:05d}", f"9{i:012d}", 40, (MAY,), 7_000, at)
            for i in range(10_000)]  # fmt: skip
    stored = await settlement_service(gateway).import_file(
        io.BytesIO(bank_bytes(day, many)), partner=day.partner, business_date=DAY
    )
    writer = gateway.audit
    real_write = writer._write
    release = asyncio.Event()

    async def slow_write(rows: Any, **kwargs: Any) -> None:  # a commit taking its time
        await release.wait()
        await real_write(rows, **kwargs)

    monkeypatch.setattr(writer, "_write", slow_write)
    client = Requester(protocol="rest", principal_kind="client", request_id=uuid.uuid4().hex,
                       principal_name="s19f-app")  # fmt: skip
    nid = await _fresh_person(gateway)

    def other_call() -> asyncio.Task[None]:
        return asyncio.ensure_future(gateway.audit.record(client.record(
            at=datetime.now(UTC), operation="InquireContribution", outcome="ok",
            national_id=nid)))  # fmt: skip

    first = other_call()  # taken into the batch being committed
    for _ in range(100):
        await asyncio.sleep(0.01)
        if writer.queued() == 0:
            break
    second = other_call()  # waits behind it
    await asyncio.sleep(0.01)
    try:
        asked = asyncio.ensure_future(settlement_api.get(
            f"/api/v1/settlements/{stored.record.id}", params={"limit": 10_000},
            headers=bearer(client_token),
        ))  # fmt: skip
        for _ in range(1000):  # the page's first records wait behind the slow commit
            await asyncio.sleep(0.01)
            if writer.queued() > 1 or asked.done():
                break
        release.set()  # the commit ends; the page's records follow it, a group at a time
        page = await asked
    finally:
        release.set()
        await asyncio.gather(first, second, return_exceptions=True)
        monkeypatch.undo()
    assert page.status_code == 200, (
        f"a page of {10_000} persons with one other record waiting:"
        f" {page.status_code} {page.json().get('code')} {page.json().get('reason')}"
    )
    assert len(page.json()["lines"]) == 10_000
