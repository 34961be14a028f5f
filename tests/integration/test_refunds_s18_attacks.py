"""Session 18 attacks on the refund listing, the payment statistics and the complaint cases.

Each test states a defect found on the code as it stood; it fails until the defect is fixed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.counter.records import CancelRequest
from app.domain.months import Month
from app.main import Gateway
from app.rates.service import RateRequest
from app.settings import Settings
from app.stats.repository import StatsRepository
from tests.conftest import PartnerCredentials
from tests.integration.test_access_report import accountability_api
from tests.integration.test_complaints import paid
from tests.integration.test_settlement_cli import ssogw
from tests.support.counter_calls import caller, confirm_request, s40_person, today
from tests.support.people import add_person, end_membership, payment_business_day, wait_replayed
from tests.support.rest_api import audit_rows, new_client, replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


# --- refunds: the listing shows national IDs and names, and leaves no audit record -----------
@pytest.mark.usefixtures("cli_time")  # drives ssogw: wall-clock business time
async def test_the_refund_listing_records_every_person_it_shows(
    gateway: Gateway, settings: Settings, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """DOMAIN.md: every call that touches a national ID is recorded. `ssogw refunds list`
    prints national IDs with names and amounts, but writes no audit record at all (the
    complaint listing, the access report and the feed record each person they show), so
    "who looked up ID X?" never names the officer who listed X's refund."""
    first, ended = Month(2045, 1), Month(2045, 3)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=39, coverage_start=first,
                               paid=list(Month.range(first, Month(2045, 4))))  # fmt: skip
        await end_membership(conn, nid, ended)
    code = await ssogw(monkeypatch, settings, "refunds", "list", "--from", "2045-01",
                       "--to", "2045-04", "--json")  # fmt: skip
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert nid in [r["nationalId"] for r in document["refunds"]], "the listing shows the person"
    rows = await gateway.db.primary.fetch(
        "SELECT operation, protocol, principal_kind FROM audit_log WHERE national_id = $1"
        " AND protocol = 'cli'",
        nid,
    )
    assert rows, "the refund listing showed the person's ID, name and refund: no audit record"


# --- statistics: a read right after this instance's own cancel ---------------------------------
async def test_stats_right_after_a_cancel_do_not_count_the_cancelled_payment(
    gateway: Gateway, partner: PartnerCredentials, replica_superuser: asyncpg.Connection
) -> None:
    """The statistics read a standby through the router without saying how far it has
    replayed (``run_read`` without ``replayed``/``min_lsn``), so right after this instance
    cancelled a payment (``saw_write``), a standby that has not replayed the cancel still
    answers, and the cancelled payment is counted, while every other read of this instance
    (inquiry, insured person) refuses a standby behind its own write."""
    token = lambda: digest_token(partner.username, partner.password)  # noqa: E731
    nid = await s40_person(gateway)
    txn = f"S18-{uuid.uuid4().hex[:12]}"
    await gateway.counter.confirm(
        caller=caller(), credentials=token(),
        request=confirm_request(nid, [str(today())], 7_000, txn=txn),
    )  # fmt: skip
    day = await payment_business_day(gateway.db.primary, txn)
    async with gateway.db.primary.acquire() as conn:
        await wait_replayed(conn, replicas(gateway))
    await gateway.db.router.probe()
    store = StatsRepository(router=lambda: gateway.db.router)

    async def mine() -> tuple[int, str]:
        groups, meta = await store.payment_groups(
            first=day - timedelta(days=1), last=day + timedelta(days=1), group_by="partner"
        )
        counted = [g.count for g in groups if g.key == partner.name and g.kind == "partner"]
        return sum(counted), meta.path

    assert (await mine())[0] == 1
    await replica_superuser.execute("SELECT pg_wal_replay_pause()")
    try:
        await gateway.counter.cancel(
            caller=caller(), credentials=token(), request=CancelRequest(txn, "wrong person")
        )
        state = await gateway.db.primary.fetchval(
            "SELECT state FROM payments WHERE partner_txn_id = $1", txn
        )
        assert state == "cancelled"
        count, path = await mine()
        assert count == 0, f"the cancelled payment is still counted (read on the {path})"
    finally:
        await replica_superuser.execute("SELECT pg_wal_replay_resume()")


# --- complaints: another person's payment is shown without a record naming them ----------------
@pytest.fixture
async def back_office(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    _, token = await new_client(gateway, ["admin"])
    async with accountability_api(gateway, token) as api:
        yield api


async def test_a_case_showing_another_persons_payment_records_that_person(
    gateway: Gateway, partner: PartnerCredentials, back_office: httpx.AsyncClient
) -> None:
    """A case opened for ID A with the receipt of a payment posted to ID B is linked to B's
    payment, and every answer (open, show) gives B's national ID, months and amount
    (``payment.nationalId``). The audit record of those calls names A alone, so B's record
    never says that an officer saw their payment ("who looked up ID B?" misses it)."""
    api = back_office
    payer, _, receipt = await paid(gateway, partner)
    complainant = await s40_person(gateway)
    opened = await api.post("/api/v1/complaints", json={
        "nationalId": complainant, "category": "paid-not-posted",
        "receiptNo": receipt, "description": "Posted to someone else?"})  # fmt: skip
    assert opened.status_code == 201, opened.text
    case = opened.json()
    assert case["payment"]["nationalId"] == payer, "B's ID is shown"
    shown = await api.get(f"/api/v1/complaints/{case['id']}")
    assert shown.json()["payment"]["nationalId"] == payer
    for response in (opened, shown):
        records = await audit_rows(gateway, response.headers["x-request-id"])
        seen = {r["national_id"] for r in records}
        assert payer in seen, (
            f"{response.request.method} showed {payer}'s payment; records name only {seen}"
        )


@pytest.mark.usefixtures("cli_time")
async def test_the_refund_listing_counts_a_person_owed_in_two_sections_once(
    gateway: Gateway, settings: Settings, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """One person owed for a Section 40 month (paid after that membership ended) and for
    Section 39 months (paid after the next one ended) is one person: the JSON's ``persons``
    and the text's "N persons" count entries per person *and section*, so the summary an
    officer signs says two people are owed."""
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=39, coverage_start=Month(2046, 2),
                               paid=list(Month.range(Month(2046, 2), Month(2046, 4))))  # fmt: skip
        await end_membership(conn, nid, Month(2046, 3))
        await conn.execute(
            "INSERT INTO closed_memberships (national_id, section, s40_option, coverage_start,"
            " ended_month, end_reason, closed_on) VALUES"
            " ($1, 40, 1, '2045-01-01', '2046-01-01', 'section33_employment', '2046-02-01')",
            nid,
        )
        await conn.execute(
            "INSERT INTO paid_months (national_id, section, month, amount_satang, s40_option,"
            " paid_on) VALUES ($1, 40, '2046-01-01', 7000, 1, '2046-01-05')",
            nid,
        )
    code = await ssogw(monkeypatch, settings, "refunds", "list", "--from", "2046-01",
                       "--to", "2046-04", "--json")  # fmt: skip
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    mine = [r for r in document["refunds"] if r["nationalId"] == nid]
    assert sorted(r["section"] for r in mine) == [39, 40]
    others = {r["nationalId"] for r in document["refunds"] if r["nationalId"] != nid}
    assert document["persons"] == len(others) + 1, (
        f"persons={document['persons']} for {len(others) + 1} distinct national IDs"
    )


# --- the answer to a retroactive cut lists national IDs, recorded for none of them -------------
async def test_a_retroactive_cut_records_every_person_its_answer_lists(
    gateway: Gateway, owner_pool: asyncpg.Pool
) -> None:
    """``POST /api/v1/rates/retroactive`` answers with every overpayment the cut creates:
    national ID, month, paid, due, refund, for up to millions of persons. The call leaves one
    audit record (``AddRetroactiveRate``, naming no one): none of the persons listed has a
    record saying a client saw their ID and payment, where every other listing of persons
    (complaints, feed, access report) records each person shown."""
    month = Month(2001, 1)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=40, option=3, coverage_start=month, paid=[month],
                               paid_amount_satang=30_000)  # fmt: skip
    issued = await gateway.registry.add_client(name=f"c-{uuid.uuid4().hex[:10]}",
                                               scopes=["admin"])  # fmt: skip
    request_id = uuid.uuid4().hex
    change = await gateway.api.rates.add_rate(
        caller=Caller(Protocol.REST, "127.0.0.1", request_id),
        credentials=BearerToken(issued.token),
        request=RateRequest(40, 3, str(month), str(month), 18_000, 0, "test: s18 cut"),
        retroactive=True,
    )
    try:
        listed = [o.national_id async for o in change.overpayments]
        assert nid in listed, "the answer lists the person's national ID"
        records = await audit_rows(gateway, request_id)
        seen = {r["national_id"] for r in records}
        assert nid in seen, f"the answer listed {nid}; its records name only {seen}"
    finally:
        await owner_pool.execute("DELETE FROM contribution_rates WHERE id = $1", change.record.id)
        gateway.rates.invalidate()
