"""The insured person's access report: exactly the accesses made to them, in plain words.

A scenario makes SOAP calls (zeep, through the live gateway) and REST calls about one person,
refused ones included, and calls about another person; the report of the first lists exactly
its accesses, oldest first, and nothing of the second. The report comes as JSON, CSV and a
printable HTML page (parsed here, and rendered by headless Chromium when it is installed).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep.exceptions
from fastapi import FastAPI

from app.access_report.repository import AccessReportRepository
from app.access_report.routes import access_report_router
from app.access_report.service import AccessReportAccess, AccessReportService
from app.audit.admin_gate import AdminGate
from app.complaints.repository import ComplaintsRepository
from app.complaints.routes import complaints_router
from app.complaints.service import ComplaintsAccess, ComplaintService
from app.domain.calendar import BANGKOK, thai_datetime
from app.main import Gateway
from app.observability.http_metrics import HttpMetricsMiddleware
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.integration.test_settlement_cli import ssogw
from tests.integration.test_soap_end_to_end import fault_code, soap_service
from tests.support.clock import business_clock
from tests.support.people import add_person
from tests.support.refusals import recorded
from tests.support.rest_api import audit_rows, bearer, new_client, problem, replicas, rest
from tests.support.scenarios import current_month, wait_replayed

pytestmark = pytest.mark.db
CHROMIUM = Path("/usr/bin/chromium")
DISPLAY_NAME = "ร้านสะดวกซื้อทดสอบ (Test CVS)"
NAME = "นางสมหญิง ใจดี"


@asynccontextmanager
async def accountability_api(gateway: Gateway, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """The accountability routes on the session's gateway, in process, with ``token``."""
    db = gateway.db
    gate = AdminGate(
        admission=gateway.admission,
        audit=gateway.audit,
        prefixes=gateway.settings.prefixes(),
        events=gateway.metrics,
        clock=business_clock(),
    )
    reports = AccessReportService(
        store=AccessReportRepository(pool_provider=lambda: db.primary), clock=business_clock()
    )
    cases = ComplaintService(
        store=ComplaintsRepository(pool_provider=lambda: db.primary), clock=business_clock()
    )
    app = FastAPI()
    app.add_middleware(HttpMetricsMiddleware, metrics=gateway.metrics)
    app.include_router(access_report_router(reports=AccessReportAccess(gate=gate, service=reports)))
    app.include_router(complaints_router(complaints=ComplaintsAccess(gate=gate, service=cases)))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway.test", headers=bearer(token), timeout=30
    ) as client:
        yield client


@dataclass(frozen=True)
class Scenario:
    person: str  # the person whose report is read
    other: str  # another person, looked up in between
    client: str  # the REST client that inquired
    auditor_token: str
    start: datetime
    end: datetime


@pytest.fixture(scope="module")
async def scenario(gateway: Gateway, live_url: str) -> Scenario:
    """SOAP and REST calls about one person (two refused) and about another one."""
    name = f"p-{uuid.uuid4().hex[:10]}"
    issued = await gateway.registry.add_partner(
        name=name, cidrs=["127.0.0.0/8"], display_name=DISPLAY_NAME, rate_limit=10_000
    )
    partner = PartnerCredentials(name, issued.username, issued.password)
    client, counter_token = await new_client(gateway, ["counter"])
    _, admin_only = await new_client(gateway, ["admin"])
    _, auditor = await new_client(gateway, ["audit"])
    async with gateway.db.primary.acquire() as conn:
        person = await add_person(conn, section=40, option=1, coverage_start=current_month())
        other = await add_person(conn, section=40, option=2, coverage_start=current_month())
        await wait_replayed(conn, replicas(gateway))
    clock = business_clock()
    start = clock()
    with soap_service(live_url, "ContributionSoap11", partner) as soap:
        inquiry = soap.InquireContribution(nationalId=person)
        now = clock()
        soap.ConfirmPayment(
            partnerTxnId=f"T-{uuid.uuid4().hex[:12]}", nationalId=person, section=40,
            months={"month": list(inquiry.defaultMonths.month)}, amount=inquiry.defaultTotal,
            businessDate=clock.business_day(), paidAt=now,
        )  # fmt: skip
        soap.InquireContribution(nationalId=other)
    with soap_service(live_url, "ContributionSoap11", partner, password="wrong") as soap:
        with pytest.raises(zeep.exceptions.Fault) as refused:
            soap.InquireContribution(nationalId=person)
        assert fault_code(refused.value) == "client.unauthenticated"
    async with rest(live_url, counter_token) as api:
        assert (await api.get(f"/api/v1/insured/{person}/contributions")).status_code == 200
        assert (await api.get(f"/api/v1/insured/{other}/contributions")).status_code == 200
    async with rest(live_url, admin_only) as api:
        wrong_scope = await api.get(f"/api/v1/insured/{person}/contributions")
        problem(wrong_scope, 403, "client.scope_not_allowed")

    async def refusals() -> list[object]:  # counted by the live server, written per window
        found = await gateway.db.primary.fetch(
            "SELECT seq FROM audit_log WHERE national_id = $1 AND outcome LIKE 'client.%'", person
        )
        return list(found) if len(found) == 2 else []

    assert len(await recorded(gateway, refusals)) == 2
    return Scenario(person, other, client, auditor, start, clock())


def period(s: Scenario) -> dict[str, str]:
    return {"from": s.start.isoformat(), "to": s.end.isoformat()}


EXPECTED = [  # (protocol, operation, outcome, purpose), oldest first
    ("soap", "InquireContribution", "ok", "Counter payment"),
    ("soap", "ConfirmPayment", "ok", "Counter payment"),
    ("soap", "InquireContribution", "client.unauthenticated", "Unknown (not admitted)"),
    ("rest", "InquireContribution", "ok", "SSO internal work"),
    ("rest", "InquireContribution", "client.scope_not_allowed", "Unknown (not admitted)"),
]


async def test_the_report_lists_exactly_the_accesses_to_the_person(
    gateway: Gateway, scenario: Scenario
) -> None:
    async with accountability_api(gateway, scenario.auditor_token) as api:
        response = await api.get(
            f"/api/v1/insured/{scenario.person}/access-report", params=period(scenario)
        )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    report = response.json()
    accesses = report["accesses"]
    got = [(a["protocol"], a["operation"], a["outcome"], a["purposeEn"]) for a in accesses]
    assert got == EXPECTED
    assert report["count"] == 5 and report["truncated"] is False
    assert report["name"] == NAME and report["nationalId"] == scenario.person
    assert re.fullmatch(r"\d-\d{4}-xxxxx-xx-\d", report["maskedNationalId"])
    assert report["maskedNationalId"][0] == scenario.person[0]
    assert all(a["at"].endswith("+07:00") for a in accesses), "Bangkok time"
    inquiry, confirm, bad_password, by_client, bad_scope = accesses
    assert inquiry["who"] == DISPLAY_NAME and inquiry["whoKind"] == "partner"
    assert inquiry["operationTh"] == "สอบถามยอดเงินสมทบ"
    assert inquiry["operationEn"] == "Contribution inquiry"
    assert inquiry["disclosedEn"] == [
        "name", "section", "status", "Section 40 option", "payable months and amounts",
        "membership history"]  # fmt: skip
    assert confirm["disclosedEn"] == ["receipt number", "months paid", "amount paid"]
    assert confirm["purposeTh"] == "การรับชำระเงินสมทบที่เคาน์เตอร์"
    # A refused caller is named only by the partner whose username it gave; it saw nothing.
    assert bad_password["who"] == DISPLAY_NAME and bad_password["whoKind"] == "anonymous"
    assert bad_password["refused"] is True and bad_password["disclosedEn"] == ["nothing disclosed"]
    assert bad_password["resultEn"] == "Refused (authentication failed)"
    assert by_client["who"] == scenario.client and by_client["whoKind"] == "client"
    assert bad_scope["refused"] is True and bad_scope["resultTh"].startswith("ถูกปฏิเสธ")
    assert scenario.other not in response.text
    # Producing the report is itself on the record, and in the next report.
    own = await audit_rows(gateway, response.headers["x-request-id"])
    assert [(r["operation"], r["outcome"], r["national_id"], r["name_returned"]) for r in own] == [
        ("AccessReport", "ok", scenario.person, NAME)
    ]
    async with accountability_api(gateway, scenario.auditor_token) as api:
        later = await api.get(
            f"/api/v1/insured/{scenario.person}/access-report",
            params={"from": period(scenario)["from"]},
        )
    last = later.json()["accesses"][-1]
    assert (last["operation"], last["operationEn"], last["outcome"]) == (
        "AccessReport", "Access report", "ok")  # fmt: skip


async def test_the_other_persons_report_has_only_its_own_accesses(
    gateway: Gateway, scenario: Scenario
) -> None:
    async with accountability_api(gateway, scenario.auditor_token) as api:
        response = await api.get(
            f"/api/v1/insured/{scenario.other}/access-report", params=period(scenario)
        )
    got = [(a["protocol"], a["operation"], a["outcome"]) for a in response.json()["accesses"]]
    assert got == [("soap", "InquireContribution", "ok"), ("rest", "InquireContribution", "ok")]


async def test_the_report_as_csv(gateway: Gateway, scenario: Scenario) -> None:
    async with accountability_api(gateway, scenario.auditor_token) as api:
        response = await api.get(
            f"/api/v1/insured/{scenario.person}/access-report",
            params={**period(scenario), "format": "csv"},
            headers={"Accept": "text/html"},  # the format parameter wins
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["protocol"], r["operation"], r["outcome"], r["purposeEn"]) for r in rows] == EXPECTED
    assert rows[0]["who"] == DISPLAY_NAME
    assert rows[0]["disclosedTh"].startswith("ชื่อ-นามสกุล; ")
    # The time as people read it: Bangkok, Buddhist Era, beside the ISO instant.
    at = datetime.fromisoformat(rows[0]["at"]).astimezone(BANGKOK)
    assert rows[0]["atTh"] == thai_datetime(at)
    assert str(at.year + 543) in rows[0]["atTh"] and rows[0]["atTh"].endswith(" น.")


class _Page(HTMLParser):
    """The parts of the report page a test looks at."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.style = ""
        self.rows: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang")
        elif tag == "style":
            self._in_style = True
        elif tag == "tr" and "data-operation" in values:
            self.rows.append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
        elif data.strip():
            self.text.append(data.strip())


async def _html(gateway: Gateway, scenario: Scenario) -> str:
    async with accountability_api(gateway, scenario.auditor_token) as api:
        response = await api.get(
            f"/api/v1/insured/{scenario.person}/access-report",
            params=period(scenario),
            headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def test_the_report_as_a_printable_page_thai_with_english_below(
    gateway: Gateway, scenario: Scenario
) -> None:
    page = _Page()
    page.feed(await _html(gateway, scenario))
    assert page.lang == "th"
    assert "@media print" in page.style and re.search(r"@page\s*{[^}]*size:\s*A4", page.style)
    text = page.text
    # The name and the masked ID come first, the Thai title before its English.
    title = text.index("รายงานการเข้าถึงข้อมูลผู้ประกันตน")
    assert text[title + 1] == "Report of access to an insured person's data"
    assert text.index(NAME) < text.index("วันและเวลา")
    masked = next(t for t in text if re.fullmatch(r"\d-\d{4}-xxxxx-xx-\d", t))
    assert scenario.person not in " ".join(text) and masked[-1] == scenario.person[-1]
    got = [(r["data-protocol"], r["data-operation"], r["data-outcome"]) for r in page.rows]
    assert got == [e[:3] for e in EXPECTED]
    assert [r["class"] for r in page.rows] == [
        "completed", "completed", "refused", "completed", "refused"]  # fmt: skip
    assert text.index("สอบถามยอดเงินสมทบ") < text.index("Contribution inquiry (SOAP)")
    assert DISPLAY_NAME in text and "ถูกปฏิเสธ (ยืนยันตัวตนไม่สำเร็จ)" in text


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (/usr/bin/chromium)")
async def test_chromium_renders_the_page_on_a4(
    gateway: Gateway, scenario: Scenario, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    page.write_text(await _html(gateway, scenario), encoding="utf-8")
    flags = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
    ]  # fmt: skip

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*flags, *extra, page.as_uri()], capture_output=True, text=True, timeout=120,
            check=True,
        )  # fmt: skip

    dom = (await asyncio.to_thread(run, "--dump-dom")).stdout
    parsed = _Page()
    parsed.feed(dom)
    assert "รายงานการเข้าถึงข้อมูลผู้ประกันตน" in parsed.text and NAME in parsed.text
    assert len(parsed.rows) == 5 and "Contribution payment (SOAP)" in parsed.text
    pdf = tmp_path / "report.pdf"
    await asyncio.to_thread(run, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    boxes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", data)
    assert boxes and all(abs(float(w) - 595.3) < 2 and abs(float(h) - 841.9) < 2 for w, h in boxes)


async def test_the_report_needs_the_audit_scope_and_checks_its_input(
    gateway: Gateway, scenario: Scenario
) -> None:
    _, admin = await new_client(gateway, ["admin", "counter"])
    url = f"/api/v1/insured/{scenario.person}/access-report"
    async with accountability_api(gateway, admin) as api:
        refused = await api.get(url)
    assert problem(refused, 403, "client.scope_not_allowed")["scope"] == "audit"
    rows = await audit_rows(gateway, refused.headers["x-request-id"])
    assert [(r["operation"], r["outcome"], r["national_id"]) for r in rows] == [
        ("AccessReport", "client.scope_not_allowed", scenario.person)
    ]
    async with accountability_api(gateway, scenario.auditor_token) as api:
        bad_id = await api.get("/api/v1/insured/12345/access-report")
        assert problem(bad_id, 422, "client.invalid_national_id")["reason"] == "length"
        backwards = await api.get(url, params={"from": "2024-06-02", "to": "2024-06-01"})
        assert problem(backwards, 422, "client.invalid_input")["field"] == "from"
        for to in ("yesterday", "9999-12-31", "0001-01-01T00:00:00+14:00"):
            nonsense = await api.get(url, params={"to": to})
            assert problem(nonsense, 422, "client.invalid_input")["field"] == "to"
        one_day = await api.get(url, params={"from": "2000-01-01", "to": "2000-01-01"})
    assert one_day.json()["accesses"] == [] and one_day.json()["periodEn"] == (
        "1 Jan 2000 to 1 Jan 2000")  # fmt: skip


async def test_the_command_line_writes_the_report_and_is_recorded(
    gateway: Gateway, scenario: Scenario, settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    target = tmp_path / "report.json"
    bounds = period(scenario)
    code = await ssogw(monkeypatch, settings, "audit", "report", "--national-id", scenario.person,
                       "--from", bounds["from"], "--to", bounds["to"], "--format", "json",
                       "--output", str(target))  # fmt: skip
    assert code == 0
    document: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
    assert [(a["protocol"], a["operation"], a["outcome"], a["purposeEn"])
            for a in document["accesses"]] == EXPECTED  # fmt: skip
    html_file = tmp_path / "report.html"
    code = await ssogw(monkeypatch, settings, "audit", "report", "--national-id", scenario.person,
                       "--from", bounds["from"][:10], "--output", str(html_file))  # fmt: skip
    assert code == 0 and "@media print" in html_file.read_text(encoding="utf-8")
    rows = await gateway.db.primary.fetch(
        "SELECT protocol, principal_kind, outcome, detail FROM audit_log"
        " WHERE national_id = $1 AND operation = 'AccessReport' AND protocol = 'cli'"
        " ORDER BY seq",
        scenario.person,
    )
    assert [(r["protocol"], r["principal_kind"], r["outcome"]) for r in rows] == [
        ("cli", "operator", "ok")] * 2  # fmt: skip
    assert [r["detail"]["format"] for r in rows] == ["json", "html"]
