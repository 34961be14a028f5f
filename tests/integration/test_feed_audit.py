"""A partner feed is on the audit trail before its first byte leaves, person by person.

An export commits the national IDs of its snapshot (its manifest) and its start record before
any chunk is handed over, so an export killed mid-stream still names everyone it sent or may
have sent; `audit lookups` (command line and REST) and the access report show each of them
"included in the feed sent to P".
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.audit.admin_gate import AdminGate
from app.feed.access import FeedAccess
from app.feed.repository import FeedRepository
from app.feed.service import LAYOUT_ID, FeedService
from app.main import Gateway
from app.settings import Settings
from tests.integration.test_partner_feed import feed_api, manifest_ids, new_partner
from tests.integration.test_settlement_cli import ssogw
from tests.support.clock import business_clock
from tests.support.people import add_person
from tests.support.rest_api import new_client, rest
from tests.support.scenarios import current_month

pytestmark = pytest.mark.db


async def audit_of(gateway: Gateway, request_id: str) -> list[dict[str, Any]]:
    rows = await gateway.db.primary.fetch(
        "SELECT operation, outcome, detail FROM audit_log WHERE request_id = $1 ORDER BY seq",
        request_id,
    )
    return [dict(r) for r in rows]


async def test_an_export_cut_after_its_first_chunk_is_on_the_record_with_every_person(
    gateway: Gateway,
) -> None:
    partner = await new_partner(gateway)
    async with gateway.db.primary.acquire() as conn:
        people = [
            await add_person(conn, section=40, option=1, coverage_start=current_month())
            for _ in range(3)
        ]
    client, admin = await new_client(gateway, ["admin"])
    gate = AdminGate(admission=gateway.admission, audit=gateway.audit,
                     prefixes=gateway.settings.prefixes(), events=gateway.metrics,
                     clock=business_clock())  # fmt: skip
    service = FeedService(
        store=FeedRepository(pool_provider=lambda: gateway.db.primary), sink=gateway.audit,
        clock=business_clock(),
    )  # fmt: skip
    feeds = FeedAccess(gate=gate, service=service, buffer=1)  # the export waits for its reader
    request_id = uuid.uuid4().hex
    download = await feeds.download(
        caller=Caller(protocol=Protocol.REST, source_ip="127.0.0.1", request_id=request_id),
        credentials=BearerToken(admin), partner=partner,
    )  # fmt: skip
    chunks: Any = download.chunks
    first = await anext(chunks)
    assert first.startswith(b"H" + LAYOUT_ID.encode())
    # A byte has left: whatever happens to the process now, the export is on the record.
    [start] = await audit_of(gateway, request_id)
    assert (start["operation"], start["outcome"]) == ("PartnerFeedExportStart", "ok")
    export_id = start["detail"]["export_id"]
    assert start["detail"]["partner"] == partner
    kept = await manifest_ids(gateway, export_id)
    assert set(people) <= kept and start["detail"]["persons"] == len(kept)
    await chunks.aclose()  # the reader goes away mid-stream

    page = await gateway.audit_trail.lookups(people[0])
    [seen] = [r for r in page.records if r.feed_export_id == export_id]
    assert (seen.operation, seen.feed_partner, seen.principal_name) == (
        "PartnerFeedExportStart", partner, client)  # fmt: skip
    assert seen.national_id == people[0] and seen.name_returned is None


@pytest.mark.usefixtures("cli_time")  # drives ssogw: wall-clock business time
async def test_lookups_and_the_access_report_show_a_finished_feed_for_a_person_in_it(
    gateway: Gateway, settings: Settings, live_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    partner = await new_partner(gateway, scope=["national_id", "first_name", "amount_due"])
    async with gateway.db.primary.acquire() as conn:
        person = await add_person(conn, section=39, coverage_start=current_month().minus(3))
    client, admin = await new_client(gateway, ["admin", "audit"])
    async with feed_api(gateway, admin) as api:
        response = await api.get(f"/api/v1/partners/{partner}/feed", params={"format": "csv"})
    assert response.status_code == 200 and person in response.text
    [start, _end] = await audit_of(gateway, response.headers["x-request-id"])
    export_id = start["detail"]["export_id"]

    assert await ssogw(monkeypatch, settings, "audit", "lookups", "--national-id", person,
                       "--json") == 0  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    [included] = [r for r in document["records"] if r["included_in"]]
    day = included["time"][:10]  # the Bangkok date of the export
    assert included["included_in"] == f"feed {export_id} to partner {partner} on {day}"
    assert (included["operation"], included["principal_name"]) == (
        "PartnerFeedExportStart", client)  # fmt: skip

    async with rest(live_url, admin) as api:
        lookups = await api.get("/api/v1/audit/lookups", params={"nationalId": person})
        report = await api.get(f"/api/v1/insured/{person}/access-report")
    assert lookups.status_code == 200, lookups.text
    [feed] = [r for r in lookups.json()["records"] if r["feedExportId"] == export_id]
    assert (feed["feedPartner"], feed["nationalId"]) == (partner, person)
    assert report.status_code == 200, report.text
    [line] = [a for a in report.json()["accesses"] if a["operation"] == "PartnerFeedExportStart"]
    assert (line["who"], line["whoKindEn"], line["refused"]) == (
        "ร้านทดสอบ", "payment partner", False)  # fmt: skip
    assert line["noteEn"] == "included in the feed sent to ร้านทดสอบ"
    assert line["disclosedEn"] == ["national ID", "name", "monthly contribution due"]
    assert line["operator"] == client  # who made the export
