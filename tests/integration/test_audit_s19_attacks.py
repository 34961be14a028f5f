"""Session 19 attacks on the audit trail: surfaces that show a person's data and leave no record
naming that person (settlement results and files, a listing's cursor), a record that does not
say what was shown (an audit lookup) or names someone else (a command's operator), and a log line
holding a national ID.

Each test states a defect found on the code as it stood; it fails until the defect is fixed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import uuid
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.domain.calendar import settlement_day
from app.domain.months import Month
from app.insured.service import decode_cursor, encode_cursor
from app.main import Gateway, lifecycle
from app.main.gateway import build_gateway
from app.settings import Settings
from app.soap.router import soap_router
from tests.conftest import PartnerCredentials
from tests.integration.test_settlement_cli import ssogw
from tests.integration.test_settlement_import import AFTER_DAY, DAY, bank_bytes, business_day
from tests.integration.test_settlement_rest import api as settlement_api  # noqa: F401 (fixture)
from tests.reliability.soap_wire import confirm_body, read_answer, security
from tests.support.clock import PinnedClock
from tests.support.counter_calls import s40_person, today
from tests.support.people import add_person, end_membership, new_national_id
from tests.support.rest_api import audit_rows, bearer, new_client, replicas, rest
from tests.support.scenarios import current_month, wait_replayed
from tests.unit.soap.envelopes import envelope

pytestmark = pytest.mark.db


@pytest.fixture
def closed_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands' clock, pinned through the composition root a week after DAY (as in
    test_settlement_cli), so that DAY has closed and may be settled."""
    monkeypatch.setattr(lifecycle, "build_gateway", partial(build_gateway, clock=lambda: AFTER_DAY))


async def cli_records(gateway: Gateway, national_id: str) -> list[tuple[str, str | None]]:
    """What "who looked up this ID?" (``audit lookups``) answers about the command line: the
    operation and operator of each record naming ``national_id`` made by an operator there."""
    page = await gateway.audit_trail.lookups(national_id, limit=1000)
    return [(r.operation, r.operator) for r in page.records
            if r.protocol == "cli" and r.principal_kind == "operator"]  # fmt: skip


# --- settlement over REST: every line shows a national ID, the records name nobody ------------
async def test_a_settlement_answer_records_every_person_its_lines_show(
    gateway: Gateway, partner: PartnerCredentials, settlement_api: httpx.AsyncClient,  # noqa: F811
    client_token: str,
) -> None:  # fmt: skip
    """``POST /api/v1/settlements`` and ``GET /api/v1/settlements/{id}`` answer with a page of
    result lines, each with a person's national ID and, from the gateway's ledger, the
    months and amount that person paid (``gatewayMonths``, ``gatewayAmount``: a line only in
    the gateway is a payment the file never named). ``SettlementAccess`` leaves one record per
    call (``ImportSettlement`` / ``GetSettlement``: ``settlement``, ``lines``) and names no
    person, so "who looked up ID X?" never shows the client that read X's payments."""
    day = await business_day(gateway, partner)
    params = {"partner": day.partner, "businessDate": str(DAY)}
    rid = f"s19-{uuid.uuid4().hex[:12]}"
    imported = await settlement_api.post(
        "/api/v1/settlements", params=params, content=bank_bytes(day),
        headers=bearer(client_token) | {"Content-Type": "application/octet-stream",
                                        "X-Request-ID": rid},
    )  # fmt: skip
    assert imported.status_code == 201, imported.text
    shown = {line["nationalId"] for line in imported.json()["lines"]}
    assert shown == set(day.people.values()), "the answer shows each person's national ID"
    rid_get = f"s19-{uuid.uuid4().hex[:12]}"
    report = await settlement_api.get(
        f"/api/v1/settlements/{imported.json()['id']}",
        headers=bearer(client_token) | {"X-Request-ID": rid_get},
    )  # fmt: skip
    assert report.status_code == 200, report.text
    assert {line["nationalId"] for line in report.json()["lines"]} == shown
    for request_id, call in ((rid, "POST"), (rid_get, "GET")):
        seen = {r["national_id"] for r in await audit_rows(gateway, request_id)}
        assert shown <= seen, f"{call} showed {sorted(shown)}; its records name only {seen}"


# --- settlement on the command line: no record at all -------------------------------------------
@pytest.mark.usefixtures("closed_day")
async def test_the_settlement_commands_record_every_person_they_print(
    gateway: Gateway, partner: PartnerCredentials, settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """`ssogw settlement import` and `ssogw settlement report` print every result line: the
    national ID, the months and the amount the gateway's ledger holds for that person. Neither
    writes any audit record (``app.cli.settlement`` calls ``SettlementService`` directly, with
    no requester and no sink), where `refunds list`, `complaints list`, `audit report` and
    `feed export` each record the operator and every person they show."""
    day = await business_day(gateway, partner)
    source = tmp_path / "settlement.txt"
    source.write_bytes(bank_bytes(day))
    where = ("--partner", day.partner, "--business-date", str(DAY))
    assert await ssogw(monkeypatch, settings, "settlement", "import", str(source), *where,
                       "--json", "--quiet") == 0  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    assert {line["nationalId"] for line in document["lines"]} == set(day.people.values())
    assert await ssogw(monkeypatch, settings, "settlement", "report", str(document["id"])) == 0
    printed = capsys.readouterr().out
    missing = {}
    for label, nid in day.people.items():
        assert nid in printed, f"the report prints {label}'s national ID"
        records = await cli_records(gateway, nid)
        if len(records) < 2:  # one for the import's answer, one for the report
            missing[label] = records
    assert not missing, f"printed twice, recorded (protocol cli) only as: {missing}"


@pytest.mark.usefixtures("closed_day")
async def test_the_settlement_export_records_every_person_it_writes(
    gateway: Gateway, partner: PartnerCredentials, settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """`ssogw settlement export` writes a file of the partner's day from the ledger: for each
    confirmed payment the national ID, the person's title and name (joined from
    ``insured_persons``), the months and the amount. The file leaves the gateway (it goes to
    the partner) and no audit record is written, not even one for the export; the partner
    feed, which sends persons to a partner too, commits a manifest of every person before its
    first byte."""
    day = await business_day(gateway, partner)
    target = tmp_path / "gateway.csv"
    assert await ssogw(monkeypatch, settings, "settlement", "export", "--partner", day.partner,
                       "--business-date", str(DAY), "--output", str(target), "--format", "csv",
                       "--json") == 0  # fmt: skip
    capsys.readouterr()
    written = await asyncio.to_thread(target.read_text, encoding="utf-8")
    somsak = day.people["somsak"]
    assert somsak in written and "สมศักดิ์" in written, "the file holds the person's ID and name"
    unrecorded = [label for label, nid in day.people.items()
                  if nid in written and not await cli_records(gateway, nid)]  # fmt: skip
    assert not unrecorded, f"the export wrote {unrecorded} with no record naming them"


# --- an audit lookup shows the names others saw; its own record keeps none ----------------------
async def test_an_audit_lookup_records_the_name_it_showed(
    gateway: Gateway, live_url: str, client_token: str
) -> None:
    """``GET /api/v1/audit/lookups`` answers with every record of the ID, each with
    ``nameReturned``: the person's name. The lookup's own ``AuditLookups`` record keeps
    ``name_returned`` empty (``AuditAccess.lookups`` calls ``audit.ok(records_returned=...)``
    without it), so asked "what name did the auditor see?" the trail says none, where the
    access report of the same person records the name it showed."""
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=40, option=1, coverage_start=current_month())
        await wait_replayed(conn, replicas(gateway))
    _, token = await new_client(gateway, ["counter", "audit"])
    async with rest(live_url, token) as api:
        assert (await api.get(f"/api/v1/insured/{nid}/contributions")).status_code == 200
        lookup = await api.get("/api/v1/audit/lookups", params={"nationalId": nid})
    assert lookup.status_code == 200, lookup.text
    names = {r["nameReturned"] for r in lookup.json()["records"]}
    assert names == {"นางสมหญิง ใจดี"}, "the answer shows the person's name"
    own = await audit_rows(gateway, lookup.headers["x-request-id"])
    assert [(r["operation"], r["national_id"]) for r in own] == [("AuditLookups", nid)]
    assert own[0]["name_returned"] in names, (
        f"the lookup showed the name {names}; its record says {own[0]['name_returned']!r}"
    )


# --- the command line's operator is whatever the environment says ------------------------------
@pytest.mark.usefixtures("cli_time")
async def test_a_command_records_the_os_account_that_ran_it_not_an_environment_variable(
    gateway: Gateway, settings: Settings, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The command line's records name "the operator (the OS user)" (``app.cli.session``), but
    ``operator()`` takes ``getpass.getuser()``, which reads ``LOGNAME``, ``USER``, ``LNAME``
    and ``USERNAME`` before the account: `LOGNAME=somchai ssogw refunds list` shows every
    person owed a refund and records each lookup as somchai's. "Who looked up this ID?" then
    names a colleague who ran nothing."""
    first, ended = Month(2047, 1), Month(2047, 3)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=39, coverage_start=first,
                               paid=list(Month.range(first, Month(2047, 4))))  # fmt: skip
        await end_membership(conn, nid, ended)
    account = pwd.getpwuid(os.getuid()).pw_name
    colleague = f"not-{account}"
    monkeypatch.setenv("LOGNAME", colleague)
    code = await ssogw(monkeypatch, settings, "refunds", "list", "--from", "2047-01",
                       "--to", "2047-04", "--json")  # fmt: skip
    assert code == 0
    assert nid in [r["nationalId"] for r in json.loads(capsys.readouterr().out)["refunds"]]
    operators = {who for _, who in await cli_records(gateway, nid)}
    assert operators == {account}, f"run by the account {account!r}; the records name {operators}"


# --- a page of insured persons: its cursor names a person the page left out --------------------
async def test_a_listing_cursor_names_no_person_the_page_did_not_record(
    gateway: Gateway, client_token: str
) -> None:
    """``GET /api/v1/insured?section=39&status=active`` reads the *recorded* status, then leaves
    out a person the rules have ended since (derived ``terminated``); the page records only the
    persons it shows. But ``nextCursor`` is made from the last row *read*
    (``InsuredAdmin.list_persons``: ``encode_cursor(rows[-1].national_id)``), and a cursor is
    base64 of ``n:<national ID>``: the answer hands out the national ID of the person it left
    out (and that they are on record as an active Section 39 member), with no record naming
    them."""
    hidden = new_national_id()
    later = new_national_id(hidden[0])
    while later <= hidden:
        later = new_national_id(hidden[0])
    async with gateway.db.primary.acquire() as conn:
        # On record as active, but no month paid for a year: the rules have ended the cover.
        await add_person(conn, section=39, national_id=hidden,
                         coverage_start=current_month().minus(12))  # fmt: skip
        await add_person(conn, section=39, national_id=later, coverage_start=current_month(),
                         replicas=replicas(gateway))  # fmt: skip
    just_before = encode_cursor(f"{int(hidden) - 1:013d}")
    rid = f"s19-{uuid.uuid4().hex[:12]}"
    page = await gateway.api.insured.list_persons(
        caller=Caller(Protocol.REST, "127.0.0.1", rid), credentials=BearerToken(client_token),
        section=39, status="active", limit=1, cursor=just_before,
    )  # fmt: skip
    assert hidden not in [p.national_id for p in page.persons], "the page leaves them out"
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor) == hidden, "the cursor is their national ID"
    seen = {r["national_id"] for r in await audit_rows(gateway, rid)}
    assert hidden in seen, f"the answer's cursor gives {hidden}; its records name only {seen}"


# --- logs: a SOAP call that fails on a database error logs the person's ID ---------------------
async def test_a_failed_soap_call_logs_no_national_id(
    gateway: Gateway, partner: PartnerCredentials, owner_pool: asyncpg.Pool, clock: PinnedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """DOMAIN.md: national IDs never appear in ordinary log lines. The REST adapter masks
    anything shaped like an ID in the traceback of an unexpected failure (``app.rest.problem``:
    ``mask``; "a message may quote values, and values may be IDs"), but the SOAP endpoint logs
    it raw (``SoapEndpoint.answer``: ``logger.exception("SOAP call failed")``). A database
    error's text quotes the row: here a confirm whose insert PostgreSQL refuses (a check the
    owner added, as any constraint or trigger refusing a row does) logs "Failing row contains
    (…, <national ID>, …)"."""
    nid = await s40_person(gateway)
    constraint = f"s19_refuse_{uuid.uuid4().hex[:8]}"
    await owner_pool.execute(
        f"ALTER TABLE payments ADD CONSTRAINT {constraint} CHECK (national_id <> '{nid}')"
    )
    try:
        now = clock()
        body = confirm_body(txn=f"S19-{uuid.uuid4().hex[:12]}", national_id=nid, section=40,
                            months=[str(today())], amount="70.00",
                            business_date=settlement_day(now), paid_at=now)  # fmt: skip
        app = FastAPI()
        app.include_router(soap_router(counter=gateway.counter))
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40001))
        with caplog.at_level(logging.ERROR):
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                response = await http.post(
                    "/soap/v1",
                    content=envelope(body, header=security(partner.username, partner.password)),
                    headers={"content-type": "text/xml", "soapaction": '""'},
                )
        answer = read_answer(response)
        assert answer.code == "server.internal", answer
    finally:
        await owner_pool.execute(f"ALTER TABLE payments DROP CONSTRAINT {constraint}")
    assert "SOAP call failed" in caplog.text, "the failure was logged"
    assert nid not in caplog.text, "the log line holds the person's national ID"
