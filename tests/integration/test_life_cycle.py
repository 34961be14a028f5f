"""The insured person's life cycle over REST and SOAP: Section 39 eligibility at registration, a
terminated Section 39 member registered under Section 40 who pays, one status (the status
endpoint never makes the record contradict the rules), a return to Section 33, and settlement
and refunds on the memberships that ended."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.cli.session import operator
from app.counter.rules import counter_rules
from app.db.recent_writes import RecentWrites
from app.domain.calendar import buddhist_year, thai_date_long, thai_month
from app.domain.months import Month
from app.domain.section39 import s39_application_deadline
from app.domain.section40 import CALENDAR_YEAR, TWELVE_MONTHS, next_option_change_on
from app.errors import OptionChangeRefused
from app.insured.repository import InsuredRepository
from app.insured.service import InsuredAdmin
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.integration.test_soap_end_to_end import soap_service
from tests.support.clock import business_clock
from tests.support.counter_calls import caller, confirm_request, settlement_round_trip
from tests.support.people import add_person, new_national_id
from tests.support.rest_api import audit_rows, problem, replicas, rest
from tests.support.scenarios import current_month, wait_replayed
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


def days_ago(days: int) -> date:
    return business_clock().today() - timedelta(days=days)


def first_left_in_time() -> date:
    """The earliest last day of work whose six months to apply still include today."""
    today = business_clock().today()
    return min(day for day in (today - timedelta(days=n) for n in range(150, 200))
               if s39_application_deadline(day) >= today)  # fmt: skip


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with rest(live_url, client_token) as client:
        yield client


def s39(
    months: int | None = 24, applied: str | None = None, *, left: date | None = None, **extra: Any
) -> dict[str, Any]:
    """A Section 39 registration: ``months`` of Section 33 that ended on ``left`` (default a
    month ago), applied on ``applied`` (default: not sent, so today)."""
    body: dict[str, Any] = {
        "nationalId": new_national_id(),
        "title": "นาย",
        "firstName": "สมศักดิ์",
        "lastName": "มั่นคง",
        "section": 39,
        **extra,
    }
    if months is not None:
        ended = (left or days_ago(30)).isoformat()
        body["section33"] = {"monthsContributed": months, "employmentEndedOn": ended}
    if applied is not None:
        body["appliedOn"] = applied
    return body


async def replayed(gateway: Gateway) -> None:
    async with gateway.db.primary.acquire() as conn:
        await wait_replayed(conn, replicas(gateway))


async def lapsed_s39(gateway: Gateway) -> str:
    """A Section 39 member recorded active whom the rules have ended: paid two months, then
    nothing for six (three consecutive unpaid months from ``current - 6``)."""
    current = current_month()
    async with gateway.db.primary.acquire() as conn:
        return await add_person(
            conn, section=39, coverage_start=current.minus(8),
            paid=[current.minus(8), current.minus(7)], replicas=replicas(gateway),
        )  # fmt: skip


async def stored(gateway: Gateway, nid: str) -> tuple[str, list[str]]:
    """The recorded status and the kinds of the person's status events, oldest first."""
    status = await gateway.db.primary.fetchval(
        "SELECT status FROM insured_persons WHERE national_id = $1", nid
    )
    kinds = await gateway.db.primary.fetch(
        "SELECT kind FROM membership_events WHERE national_id = $1 ORDER BY id", nid
    )
    return status, [row["kind"] for row in kinds]


# --- Section 39 eligibility ------------------------------------------------------------------
async def test_section_39_needs_12_months_of_section_33_and_6_months_to_apply(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    today = business_clock().today()
    eleven = await api.post("/api/v1/insured", json=s39(11))
    body = problem(eleven, 422, "client.s39_not_eligible")
    assert (body["reason"], body["monthsContributed"], body["minimumMonths"]) == (
        "too_few_s33_months", 11, 12)  # fmt: skip
    assert body["detailTh"] == "จ่ายเงินสมทบมาตรา 33 มาแล้ว 11 เดือน ต้องไม่น้อยกว่า 12 เดือน"
    records = await audit_rows(gateway, eleven.headers["x-request-id"])
    assert [(r["operation"], r["outcome"]) for r in records] == [
        ("CreateInsured", "client.s39_not_eligible")
    ]

    left = days_ago(30)
    twelve = await api.post("/api/v1/insured", json=s39(12, left=left))
    assert twelve.status_code == 201, twelve.text
    person = twelve.json()
    assert person["eligibility"] == "eligible" and person["appliedOn"] == today.isoformat()
    assert person["section33"] == {
        "monthsContributed": 12, "employmentEndedOn": left.isoformat(),
        "applyBy": s39_application_deadline(left).isoformat(),
    }  # fmt: skip

    in_time = first_left_in_time()  # six months on, today is the last day (or within them)
    six = await api.post("/api/v1/insured", json=s39(24, left=in_time))
    assert six.status_code == 201, six.text
    seven = days_ago(214)  # about seven months
    late = problem(await api.post("/api/v1/insured", json=s39(24, left=seven)), 422,
                   "client.s39_not_eligible")  # fmt: skip
    deadline = s39_application_deadline(seven)
    assert (late["reason"], late["deadline"], late["appliedOn"]) == (
        "applied_too_late", deadline.isoformat(), today.isoformat())  # fmt: skip
    assert late["detailTh"] == (
        f"ออกจากงานเมื่อ {thai_date_long(seven)} ต้องสมัครภายใน {thai_date_long(deadline)}"
        f" แต่สมัครเมื่อ {thai_date_long(today)}"
    )
    a_day_late = s39(24, left=in_time - timedelta(days=1))
    day_late = await api.post("/api/v1/insured", json=a_day_late)
    assert problem(day_late, 422, "client.s39_not_eligible")["reason"] == "applied_too_late"

    missing = await api.post("/api/v1/insured", json=s39(None))
    assert problem(missing, 422, "client.s39_not_eligible")["reason"] == (
        "section33_history_missing"
    )
    s40_with_history = await api.post("/api/v1/insured", json=s39(24, section=40, option=1))
    assert problem(s40_with_history, 422, "client.invalid_input")["field"] == "section33"


async def test_an_officers_override_is_recorded_with_its_reason_and_audited(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    why = "Appeal 2567/0142 upheld by the branch"
    body = s39(11, eligibilityOverride={"reason": why})
    created = await api.post("/api/v1/insured", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["eligibility"] == "override"
    rid = created.headers["x-request-id"]
    detail = await gateway.db.primary.fetchval(
        "SELECT detail FROM audit_records WHERE request_id = $1 AND operation = 'CreateInsured'",
        rid,
    )
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert (detail["eligibility"], detail["overrideReason"]) == ("override", why)
    event = await gateway.db.primary.fetchrow(
        "SELECT kind, reason, recorded_by, status FROM membership_events WHERE national_id = $1",
        body["nationalId"],
    )
    assert event is not None
    assert (event["kind"], event["reason"], event["status"]) == (
        "eligibility_override", why, "active")  # fmt: skip
    record = (await api.get(f"/api/v1/insured/{body['nationalId']}")).json()
    assert [(e["kind"], e["reason"]) for e in record["statusEvents"]] == [
        ("eligibility_override", why)
    ]
    # An override the rule does not need is not recorded: the person is simply eligible.
    needless = s39(24, eligibilityOverride={"reason": "just in case"})
    answer = await api.post("/api/v1/insured", json=needless)
    assert answer.status_code == 201 and answer.json()["eligibility"] == "eligible"
    assert await stored(gateway, needless["nationalId"]) == ("active", [])


# --- one status; a terminated Section 39 member under Section 40 -------------------------------
async def test_a_terminated_section_39_member_registers_under_section_40_and_pays(
    api: httpx.AsyncClient, gateway: Gateway, live_url: str, partner: PartnerCredentials
) -> None:
    nid = await lapsed_s39(gateway)
    current = current_month()
    ended = str(current.minus(6))
    inquiry = (await api.get(f"/api/v1/insured/{nid}/contributions")).json()
    assert (inquiry["status"], inquiry["endedMonth"]) == ("terminated", ended)

    # The status endpoint cannot make the record say what the rules contradict.
    refused = await api.put(
        f"/api/v1/insured/{nid}/status", json={"status": "active", "reason": "customer asked"}
    )
    body = problem(refused, 409, "client.status_contradicts_rules")
    assert (body["derivedStatus"], body["endedMonth"]) == ("terminated", ended)
    assert f"พ.ศ. {buddhist_year(current.minus(6).year)}" in body["detailTh"]
    assert await stored(gateway, nid) == ("active", [])  # nothing written
    record = (await api.get(f"/api/v1/insured/{nid}")).json()
    assert (record["person"]["status"], record["person"]["endedMonth"]) == ("terminated", ended)

    # Under Section 40 (M: SSO allows the move); the Section 39 membership is kept, closed.
    moved = await api.post("/api/v1/insured", json={
        "nationalId": nid, "title": "นาง", "firstName": "สมหญิง", "lastName": "ใจดี",
        "section": 40, "option": 2})  # fmt: skip
    assert moved.status_code == 201, moved.text
    assert (moved.json()["section"], moved.json()["status"]) == (40, "active")
    again = await api.post("/api/v1/insured", json={
        "nationalId": nid, "title": "นาง", "firstName": "สมหญิง", "lastName": "ใจดี",
        "section": 40, "option": 1})  # fmt: skip
    assert problem(again, 409, "client.already_exists")["status"] == 409  # now it is open
    # An open membership answers before any eligibility verdict on the new one.
    problem(await api.post("/api/v1/insured", json=s39(3, nationalId=nid)), 409,
            "client.already_exists")  # fmt: skip

    record = (await api.get(f"/api/v1/insured/{nid}")).json()
    (previous,) = record["previousMemberships"]
    assert (previous["section"], previous["endedMonth"], previous["endReason"]) == (
        39, ended, "three_consecutive_unpaid")  # fmt: skip
    assert {m["section"] for m in record["paidMonths"]} == {39}  # its months stay in the ledger

    inquiry = (await api.get(f"/api/v1/insured/{nid}/contributions")).json()
    assert (inquiry["section"], inquiry["status"], inquiry["option"]) == (40, "active", 2)
    assert inquiry["previousMemberships"] == [{
        "section": 39, "coverageStart": current.minus(8).first_day.isoformat(),
        "endedMonth": ended, "endReason": "three_consecutive_unpaid"}]  # fmt: skip
    assert "eligibility" not in inquiry  # Section 40: absent

    await replayed(gateway)
    with soap_service(live_url, "ContributionSoap11", partner) as service:
        answer = service.InquireContribution(nationalId=nid)
    assert (answer.section, answer.status) == (40, "active")
    (membership,) = answer.previousMemberships.membership
    assert (membership.section, membership.endedMonth, membership.endReason) == (
        39, ended, "three_consecutive_unpaid")  # fmt: skip

    paid = await api.post("/api/v1/payments", json={
        "partnerTxnId": f"t-{uuid.uuid4().hex[:12]}", "nationalId": nid, "section": 40,
        "months": [str(current)], "amount": "100.00",
        "businessDate": business_clock().business_day().isoformat(),
        "paidAt": business_clock()().isoformat()})  # fmt: skip
    assert paid.status_code == 201, paid.text
    receipt = paid.json()["receiptNo"]

    # The printable statement: Buddhist-era dates, the receipt number as issued.
    page = await api.get(f"/api/v1/insured/{nid}/statement")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert receipt in html
    assert thai_month(current.minus(6)) in html  # the month Section 39 ended, in B.E.
    assert f"พ.ศ. {buddhist_year(business_clock().today().year)}" in html
    assert current.minus(8).first_day.isoformat() in html  # the ISO date beside it
    records = await audit_rows(gateway, page.headers["x-request-id"])
    assert [(r["operation"], r["national_id"]) for r in records] == [("PrintInsuredStatement", nid)]


async def test_a_reinstatement_is_an_event_the_derived_status_honours(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    nid = await lapsed_s39(gateway)
    current = current_month()
    path = f"/api/v1/insured/{nid}/status"
    early = str(current.minus(6))
    too_early = await api.put(path, json={
        "status": "active", "reason": "proven payment", "rulesFrom": early})  # fmt: skip
    problem(too_early, 409, "client.status_contradicts_rules")
    reinstated = await api.put(path, json={
        "status": "active", "reason": "Payment proven by bank slip 0042",
        "rulesFrom": str(current)})  # fmt: skip
    assert reinstated.status_code == 200, reinstated.text
    assert (reinstated.json()["status"], reinstated.json()["rulesFrom"]) == (
        "active", str(current))  # fmt: skip
    assert await stored(gateway, nid) == ("active", ["reinstated"])
    inquiry = (await api.get(f"/api/v1/insured/{nid}/contributions")).json()
    assert inquiry["status"] == "active" and str(current) in inquiry["defaultMonths"]

    suspended = await api.put(path, json={"status": "inactive", "reason": "under review"})
    assert suspended.json()["status"] == "inactive"
    ended = await api.put(path, json={
        "status": "terminated", "reason": "died", "endedMonth": str(current)})  # fmt: skip
    assert (ended.json()["status"], ended.json()["endedMonth"]) == ("terminated", str(current))
    assert await stored(gateway, nid) == (
        "terminated", ["reinstated", "suspended", "terminated"])  # fmt: skip
    no_reason = await api.put(path, json={"status": "active"})
    problem(no_reason, 422, "client.invalid_input")


# --- back to Section 33; settlement and refunds on ended memberships ---------------------------
async def test_a_return_to_section_33_ends_the_membership_and_settlement_still_matches(
    api: httpx.AsyncClient, gateway: Gateway, partner: PartnerCredentials
) -> None:
    today = business_clock().today()
    body = s39(24, today.isoformat(), effectiveDate=current_month().first_day.isoformat())
    body["section33"]["employmentEndedOn"] = current_month().minus(1).first_day.isoformat()
    nid = body["nationalId"]
    assert (await api.post("/api/v1/insured", json=body)).status_code == 201
    await replayed(gateway)
    request = confirm_request(nid, [str(current_month())], 43_200, section=39)
    token = digest_token(partner.username, partner.password)
    confirmed = await gateway.counter.confirm(caller=caller(), credentials=token, request=request)

    employed = current_month().first_day
    back = await api.post(
        f"/api/v1/insured/{nid}/section33-employment", json={"employedFrom": employed.isoformat()}
    )
    assert back.status_code == 200, back.text
    assert (back.json()["status"], back.json()["statusReason"], back.json()["endedMonth"]) == (
        "terminated", "section33_employment", str(current_month()))  # fmt: skip
    problem(
        await api.put(f"/api/v1/insured/{nid}/status", json={"status": "active", "reason": "x"}),
        409, "client.status_contradicts_rules",
    )  # fmt: skip
    problem(
        await api.post(f"/api/v1/insured/{nid}/section33-employment",
                       json={"employedFrom": employed.isoformat()}),
        409, "client.conflict",
    )  # fmt: skip

    # Back into Section 39 only through Section 33: the old history is refused, a new one not.
    old = {**body, "appliedOn": today.isoformat()}
    refused = problem(await api.post("/api/v1/insured", json=old), 422, "client.s39_not_eligible")
    assert refused["reasons"] == ["reentry_needs_section33"]
    new = {**old, "section33": {"monthsContributed": 25, "employmentEndedOn": today.isoformat()}}
    again = await api.post("/api/v1/insured", json=new)
    assert again.status_code == 201, again.text
    record = (await api.get(f"/api/v1/insured/{nid}")).json()
    assert [(m["section"], m["endReason"]) for m in record["previousMemberships"]] == [
        (39, "section33_employment")
    ]

    # The day's settlement still holds the payment of the membership that ended, and matches.
    summary, exported, report = await settlement_round_trip(
        gateway, partner=partner.name, business_date=confirmed.business_date
    )
    assert request.partner_txn_id.encode() in exported
    assert summary.lines >= 1 and report.record.summary.mismatches == 0


async def test_refunds_list_the_months_of_a_membership_that_ended(
    api: httpx.AsyncClient, gateway: Gateway, owner_pool: asyncpg.Pool
) -> None:
    cut = Month(2019, 3)  # long past: no other test pays or prices it
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=39, coverage_start=Month(2018, 1), paid=[cut], title="นาย",
            first_name="วีระ", last_name="ศรีสุข", replicas=replicas(gateway),
        )  # fmt: skip
    moved = await api.post("/api/v1/insured", json={
        "nationalId": nid, "title": "นาย", "firstName": "วีระ", "lastName": "ศรีสุข",
        "section": 40, "option": 1})  # fmt: skip
    assert moved.status_code == 201, moved.text
    rate = await owner_pool.fetchval(
        "INSERT INTO contribution_rates (section, s40_option, first_month, last_month,"
        " amount_satang, government_satang, note) VALUES"
        " (39, NULL, '2019-03-01', '2019-03-01', 23500, 0, 'test: retroactive cut')"
        " RETURNING id"
    )
    try:
        listing = gateway.refunds.refunds(cut, cut, requester=operator())
        refunds = [p async for p in listing if p.national_id == nid]
    finally:
        await owner_pool.execute("DELETE FROM contribution_rates WHERE id = $1", rate)
    (refund,) = refunds
    assert (refund.section, refund.first_name, refund.refund_satang) == (39, "วีระ", 19_700)


# --- the option-change setting, both readings, through the use case ------------------------------
@pytest.mark.parametrize("period", [CALENDAR_YEAR, TWELVE_MONTHS])
async def test_the_option_change_period_is_the_settings(
    gateway: Gateway, client_token: str, period: str
) -> None:
    settings = gateway.settings.model_copy(update={"s40_option_change_period": period})
    admin = InsuredAdmin(
        gate=gateway.api.gate,
        store=InsuredRepository(
            primary=lambda: gateway.db.primary, router=lambda: gateway.db.router
        ),
        recent=RecentWrites(),
        s40=counter_rules(settings).s40,
        clock=business_clock(),
    )
    today = business_clock().today()
    last_change = date(today.year - 1, 12, 31)  # last year: the calendar year counts it not
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=40, option=1, coverage_start=current_month().minus(30))
        await conn.execute(
            "INSERT INTO s40_option_changes (national_id, changed_on, previous_option,"
            " new_option, effective_month) VALUES ($1, $2, 2, 1, $3)",
            nid, last_change, Month.of(last_change).plus(1).first_day,
        )  # fmt: skip
        await conn.execute(
            "UPDATE insured_persons SET option_changed_on = $2 WHERE national_id = $1",
            nid, last_change,
        )  # fmt: skip

    async def change() -> object:
        return await admin.change_option(
            caller=Caller(Protocol.REST, "127.0.0.1", uuid.uuid4().hex),
            credentials=BearerToken(client_token), national_id=nid, option=3,
        )  # fmt: skip

    allowed = period == CALENDAR_YEAR or today >= next_option_change_on(last_change, period)
    if allowed:
        await change()
    else:
        with pytest.raises(OptionChangeRefused) as caught:
            await change()
        assert caught.value.details["reason"] == "changed_within_twelve_months"
        assert caught.value.details["next_change_on"] == date(today.year, 12, 31).isoformat()
