"""Attacks on the insured person's life cycle (issue 21): what an officer's status change, a
return to Section 33, concurrent registrations and a hostile name can do to the one status and
to the memberships kept. Each test names the defect it guards against."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import time, timedelta
from typing import Any

import httpx
import pytest

from app.cli.session import operator
from app.counter.entitlement import facts_of, history_start
from app.counter.ledger import PgLedger
from app.domain.calendar import thai_date_long, thai_month
from app.domain.months import Month
from app.domain.section39 import S39Policy, s39_application_deadline
from app.domain.standing import derive_standing
from app.errors import MemberTerminated
from app.insured.service import encode_cursor
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.integration.test_soap_end_to_end import soap_service
from tests.support.clock import business_clock, current_month
from tests.support.counter_calls import caller, confirm_request, settlement_round_trip
from tests.support.people import add_person, new_national_id, wait_replayed
from tests.support.rest_api import audit_rows, problem, replicas, rest
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with rest(live_url, client_token) as client:
        yield client


def s40(nid: str, option: int = 1) -> dict[str, Any]:
    return {"nationalId": nid, "title": "นาง", "firstName": "สมหญิง", "lastName": "ใจดี",
            "section": 40, "option": option}  # fmt: skip


async def refunds_of(
    gateway: Gateway, nid: str, first: Month, last: Month
) -> list[tuple[Month, int, int, int, str]]:
    """The refund listing's months for ``nid``: month, paid, due, refund, reason."""
    return [
        (m.month, m.paid_satang, m.due_satang, m.refund_satang, m.reason)
        async for person in gateway.refunds.refunds(first, last, requester=operator())
        if person.national_id == nid
        for m in person.months
    ]


async def recorded(gateway: Gateway, nid: str) -> tuple[str, str | None, str | None]:
    row = await gateway.db.primary.fetchrow(
        "SELECT status, status_reason, ended_month::text AS ended FROM insured_persons"
        " WHERE national_id = $1",
        nid,
    )
    assert row is not None
    return row["status"], row["status_reason"], row["ended"]


# --- a membership ended by Section 33 employment reopens only by a new registration ------------
async def test_a_section_33_ending_cannot_be_reopened_through_an_officers_termination(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    """Defect: `terminated` overwrote the reason `section33_employment` with the officer's text,
    after which `active` reinstated the membership the person's employment had ended."""
    nid = new_national_id()
    assert (await api.post("/api/v1/insured", json=s40(nid))).status_code == 201
    employed = current_month().first_day.isoformat()
    back = await api.post(
        f"/api/v1/insured/{nid}/section33-employment", json={"employedFrom": employed}
    )
    assert back.status_code == 200, back.text
    before = await recorded(gateway, nid)
    path = f"/api/v1/insured/{nid}/status"

    terminated = await api.put(path, json={"status": "terminated", "reason": "tidying up"})
    problem(terminated, 409, "client.status_contradicts_rules")
    reopened = await api.put(path, json={"status": "active", "reason": "customer asked"})
    problem(reopened, 409, "client.status_contradicts_rules")
    assert await recorded(gateway, nid) == before  # still ended by Section 33, nothing written
    inquiry = (await api.get(f"/api/v1/insured/{nid}/contributions")).json()
    assert (inquiry["status"], inquiry["statusReason"]) == ("terminated", "section33_employment")


# --- an officer's termination month lies within the membership, never after the rules' -------
async def test_an_officers_termination_month_lies_within_the_membership(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    """Defect: endedMonth was not bounded: a month before the coverage start, or years ahead
    (the person shown terminated 'from 2031' today, and no new membership possible before)."""
    current = current_month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=40, coverage_start=current.minus(3), replicas=replicas(gateway)
        )
    path = f"/api/v1/insured/{nid}/status"
    for month in (current.minus(4), current.plus(1), current.plus(60)):
        answer = await api.put(path, json={
            "status": "terminated", "reason": "died", "endedMonth": str(month)})  # fmt: skip
        assert problem(answer, 422, "client.invalid_input")["field"] == "endedMonth"
    assert (await recorded(gateway, nid))[0] == "active"
    ok = await api.put(path, json={
        "status": "terminated", "reason": "died", "endedMonth": str(current.minus(3))})  # fmt: skip
    assert ok.status_code == 200, ok.text


async def test_a_second_termination_cannot_end_a_membership_later_than_the_rules_did(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    """Defect: 'never later than the rules' was checked only while the record said active; once
    an officer had recorded a termination, a second one could move its month past the rules'."""
    current = current_month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(  # paid two months, then nothing: the rules end it from c-6
            conn, section=39, coverage_start=current.minus(8),
            paid=[current.minus(8), current.minus(7)], replicas=replicas(gateway),
        )  # fmt: skip
    path = f"/api/v1/insured/{nid}/status"
    first = await api.put(path, json={
        "status": "terminated", "reason": "died", "endedMonth": str(current.minus(7))})  # fmt: skip
    assert first.status_code == 200, first.text
    later = await api.put(path, json={
        "status": "terminated", "reason": "typo", "endedMonth": str(current.minus(1))})  # fmt: skip
    body = problem(later, 409, "client.status_contradicts_rules")
    assert body["endedMonth"] == str(current.minus(6))  # the rules' month, named
    assert (await recorded(gateway, nid))[2] == current.minus(7).first_day.isoformat()


async def test_rules_from_is_only_for_section_39(api: httpx.AsyncClient, gateway: Gateway) -> None:
    """Defect: `active` with rulesFrom on an active Section 40 member recorded a 'reinstatement'
    event and a rules_from the Section 40 rules never read."""
    current = current_month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=40, coverage_start=current.minus(3), replicas=replicas(gateway)
        )
    answer = await api.put(f"/api/v1/insured/{nid}/status", json={
        "status": "active", "reason": "x", "rulesFrom": str(current)})  # fmt: skip
    assert problem(answer, 422, "client.invalid_input")["field"] == "rulesFrom"
    events = await gateway.db.primary.fetchval(
        "SELECT count(*) FROM membership_events WHERE national_id = $1", nid
    )
    assert events == 0


# --- a backdated application date -----------------------------------------------------------
async def test_a_backdated_application_date_needs_an_officers_override(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    """Defect: appliedOn was taken as sent, so an application seven months after leaving work,
    dated back into the six months, passed the rule without an override."""
    today = business_clock().today()
    left = today - timedelta(days=214)  # about seven months ago: too late to apply today
    deadline = s39_application_deadline(left)  # ... and the last day it could have been
    body = {**s40(new_national_id()), "section": 39, "option": None,
            "section33": {"monthsContributed": 24, "employmentEndedOn": left.isoformat()},
            "appliedOn": deadline.isoformat()}  # fmt: skip
    refused = await api.post("/api/v1/insured", json=body)
    answer = problem(refused, 422, "client.application_backdated")
    assert (answer["field"], answer["appliedOn"], answer["registeredOn"]) == (
        "appliedOn", deadline.isoformat(), today.isoformat())  # fmt: skip
    assert answer["earliestAppliedOn"] == today.isoformat()  # SSOGW_S39_APPLICATION_BACKDATE_DAYS
    assert thai_date_long(deadline) in answer["detailTh"]
    records = await audit_rows(gateway, refused.headers["x-request-id"])
    assert [r["outcome"] for r in records] == ["client.application_backdated"]
    assert (await api.get(f"/api/v1/insured/{body['nationalId']}")).status_code == 404
    yesterday = {**body, "appliedOn": (today - timedelta(days=1)).isoformat()}
    problem(await api.post("/api/v1/insured", json=yesterday), 422, "client.application_backdated")

    # An officer who has seen the application of that day records it, with a reason.
    why = "Application form dated and stamped by the branch on that day"
    admitted = await api.post(
        "/api/v1/insured", json={**body, "eligibilityOverride": {"reason": why}}
    )
    assert admitted.status_code == 201, admitted.text
    assert (admitted.json()["eligibility"], admitted.json()["appliedOn"]) == (
        "override", deadline.isoformat())  # fmt: skip
    event = await gateway.db.primary.fetchrow(
        "SELECT kind, reason FROM membership_events WHERE national_id = $1", body["nationalId"]
    )
    assert event is not None and tuple(event) == ("eligibility_override", why)


# --- an officer's words stay with SSO -----------------------------------------------------------
WORDS = "Died 3 May, informed by her son (tel. 081-234-5678); case 2567/0142"


async def test_partners_see_a_reason_code_never_an_officers_words(
    api: httpx.AsyncClient, gateway: Gateway, live_url: str, partner: PartnerCredentials
) -> None:
    """Defect: the officer's free text of a change of status reached partners as statusReason
    (SOAP and REST inquiries), as the refusal's reason of a confirm, and as the endReason of the
    membership once closed."""
    current = current_month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=39, coverage_start=current.minus(3),
            paid=[current.minus(3), current.minus(2)], replicas=replicas(gateway),
        )  # fmt: skip
        # A record written before reasons were codes: the officer's words on the row itself.
        legacy = await add_person(conn, section=40, coverage_start=current.minus(3),
                                  status="inactive")  # fmt: skip
        await conn.execute("UPDATE insured_persons SET status_reason = $2 WHERE national_id"
                           " = $1", legacy, WORDS)  # fmt: skip
    ended = await api.put(f"/api/v1/insured/{nid}/status", json={
        "status": "terminated", "reason": WORDS, "endedMonth": str(current.minus(1))})  # fmt: skip
    assert ended.status_code == 200, ended.text

    inquiry = await api.get(f"/api/v1/insured/{nid}/contributions")
    assert inquiry.json()["statusReason"] == "terminated_by_sso" and WORDS not in inquiry.text
    assert (await api.get(f"/api/v1/insured/{legacy}/contributions")).json()["statusReason"] == (
        "suspended_by_sso"
    )
    await replayed_all(gateway)
    with soap_service(live_url, "ContributionSoap11", partner) as service:
        assert service.InquireContribution(nationalId=nid).statusReason == "terminated_by_sso"
        assert service.InquireContribution(nationalId=legacy).statusReason == "suspended_by_sso"
    request = confirm_request(nid, [str(current.minus(1))], 43_200, section=39)
    token = digest_token(partner.username, partner.password)
    with pytest.raises(MemberTerminated) as refused:
        await gateway.counter.confirm(caller=caller(), credentials=token, request=request)
    assert refused.value.details["reason"] == "terminated_by_sso"

    # Closed by a move to Section 40, the membership keeps the code, not the words.
    assert (await api.post("/api/v1/insured", json=s40(nid))).status_code == 201
    moved = await api.get(f"/api/v1/insured/{nid}/contributions")
    assert [m["endReason"] for m in moved.json()["previousMemberships"]] == ["terminated_by_sso"]
    assert WORDS not in moved.text

    # SSO keeps the words: the event, the officer's record of the person, the audit trail.
    record = (await api.get(f"/api/v1/insured/{nid}")).json()
    assert [(e["kind"], e["reason"]) for e in record["statusEvents"]] == [("terminated", WORDS)]
    audited = await gateway.db.primary.fetchval(
        "SELECT count(*) FROM audit_records WHERE request_id = $1 AND detail::text LIKE $2",
        ended.headers["x-request-id"], "%case 2567/0142%",
    )  # fmt: skip
    assert audited == 1


async def replayed_all(gateway: Gateway) -> None:
    async with gateway.db.primary.acquire() as conn:
        await wait_replayed(conn, replicas(gateway))


# --- concurrent registrations of one ID --------------------------------------------------------
async def test_concurrent_registrations_leave_one_open_membership(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    nid = new_national_id()
    answers = await asyncio.gather(*(api.post("/api/v1/insured", json=s40(nid, o)) for o in (1, 2)))
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]

    # A person whose Section 39 cover ended, registered twice at once under Section 40.
    current = current_month()
    async with gateway.db.primary.acquire() as conn:
        lapsed = await add_person(
            conn, section=39, coverage_start=current.minus(8),
            paid=[current.minus(8), current.minus(7)], replicas=replicas(gateway),
        )  # fmt: skip
    answers = await asyncio.gather(
        *(api.post("/api/v1/insured", json=s40(lapsed, o)) for o in (1, 2, 3))
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409], [a.text for a in answers]
    closed = await gateway.db.primary.fetchval(
        "SELECT count(*) FROM closed_memberships WHERE national_id = $1", lapsed
    )
    assert closed == 1


# --- the printable statement with a hostile name -----------------------------------------------
async def test_the_statement_escapes_names_and_neutralises_bidi_controls(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(  # as a source-system extract could deliver it
            conn, section=40, coverage_start=current_month().minus(2),
            title="<script>alert(1)</script>", first_name="\u202egnp.exe",
            last_name='"><img src=x onerror=alert(2)>', replicas=replicas(gateway),
        )  # fmt: skip
    page = await api.get(f"/api/v1/insured/{nid}/statement")
    assert page.status_code == 200, page.text
    assert "<script>alert" not in page.text and "<img" not in page.text
    assert "\u202e" not in page.text and "&lt;script&gt;" in page.text


# --- months paid under a membership after it ended: refunded, never carried over ---------------
async def test_months_paid_after_section_39_cover_ended_are_refunded_in_full(
    api: httpx.AsyncClient, gateway: Gateway, partner: PartnerCredentials
) -> None:
    """Defect: months paid under a membership after the month it ended (here by a Section 33
    employment recorded after the fact) were neither refunded nor excluded."""
    current = current_month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=39, coverage_start=current.minus(3),
            paid=[current.minus(3), current.minus(2)], replicas=replicas(gateway),
        )  # fmt: skip
    ended = [current.minus(1), current]  # paid at the counter, 432 baht each
    request = confirm_request(nid, [str(m) for m in ended], 86_400, section=39)
    token = digest_token(partner.username, partner.password)
    confirmed = await gateway.counter.confirm(caller=caller(), credentials=token, request=request)
    employed = current.minus(1).first_day.isoformat()  # recorded late: cover ended from c-1
    back = await api.post(
        f"/api/v1/insured/{nid}/section33-employment", json={"employedFrom": employed}
    )
    assert back.status_code == 200, back.text
    expected = [(m, 43_200, 0, 43_200, "cover_ended") for m in ended]
    assert await refunds_of(gateway, nid, current.minus(3), current) == expected

    # The move to Section 40 changes nothing of it: the months are not the new membership's.
    assert (await api.post("/api/v1/insured", json=s40(nid, 2))).status_code == 201
    assert await refunds_of(gateway, nid, current.minus(3), current) == expected
    inquiry = (await api.get(f"/api/v1/insured/{nid}/contributions")).json()
    assert (inquiry["section"], inquiry["status"]) == (40, "active")
    offered = {m["month"]: m["amount"] for m in inquiry["months"]}
    assert offered[str(current)] == "100.00"  # Section 40 option 2 decides, not the 432 paid
    assert str(current.minus(1)) not in offered  # Section 40: past months are never paid

    # The ledger and the day's settlement are as they were: the refund goes through SSO.
    payment = await gateway.db.primary.fetchrow(
        "SELECT state, amount_satang FROM payments WHERE partner_txn_id = $1",
        request.partner_txn_id,
    )
    assert payment is not None and tuple(payment) == ("confirmed", 86_400)
    _, exported, report = await settlement_round_trip(
        gateway, partner=partner.name, business_date=confirmed.business_date
    )
    assert request.partner_txn_id.encode() in exported
    assert report.record.summary.mismatches == 0


async def test_months_a_later_membership_of_the_section_covers_are_not_refunded(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    """A Section 39 membership closed, and a new Section 39 one later: the months paid after
    the first ended are refunded only up to where the second begins; the rest count for it."""
    current = current_month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=39, coverage_start=current.minus(6),
            paid=list(Month.range(current.minus(6), current)), replicas=replicas(gateway),
        )  # fmt: skip
    employed = current.minus(3).first_day.isoformat()  # cover ended from c-3
    back = await api.post(
        f"/api/v1/insured/{nid}/section33-employment", json={"employedFrom": employed}
    )
    assert back.status_code == 200, back.text
    today = business_clock().today()
    again = await api.post("/api/v1/insured", json={
        **s40(nid), "section": 39, "option": None, "appliedOn": today.isoformat(),
        "effectiveDate": current.minus(1).first_day.isoformat(),
        "section33": {"monthsContributed": 14, "employmentEndedOn": today.isoformat()},
    })  # fmt: skip
    assert again.status_code == 201, again.text
    refunds = await refunds_of(gateway, nid, current.minus(6), current)
    assert [(m, reason) for m, *_, reason in refunds] == [
        (current.minus(3), "cover_ended"), (current.minus(2), "cover_ended")]  # fmt: skip
    inquiry = (await api.get(f"/api/v1/insured/{nid}/contributions")).json()
    assert inquiry["status"] == "active"
    assert not {str(current.minus(1)), str(current)} & {m["month"] for m in inquiry["months"]}


# --- an ending older than the 13 months of history read keeps its month ------------------------
async def test_an_old_section_39_ending_keeps_its_month(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    current = current_month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=39, coverage_start=current.minus(30),
            paid=list(Month.range(current.minus(30), current.minus(20))),
            replicas=replicas(gateway),
        )  # fmt: skip
    """Defect: the Section 39 standing was judged over the last 13 months only: a membership
    that ended longer ago was shown (and closed, and printed) as ended 13 months ago, a month
    that moves on every month."""
    ended = str(current.minus(19))  # paid c-30..c-20, nothing since
    inquiry = (await api.get(f"/api/v1/insured/{nid}/contributions")).json()
    assert (inquiry["status"], inquiry["statusReason"], inquiry["endedMonth"]) == (
        "terminated", "three_consecutive_unpaid", ended)  # fmt: skip
    record = (await api.get(f"/api/v1/insured/{nid}")).json()["person"]
    assert (record["status"], record["endedMonth"]) == ("terminated", ended)
    before = encode_cursor(str(int(nid) - 1).zfill(13))  # the page that starts with nid
    listed = (await api.get("/api/v1/insured", params={
        "section": 39, "limit": 1, "cursor": before})).json()  # fmt: skip
    assert [(p["nationalId"], p["endedMonth"]) for p in listed["items"]] == [(nid, ended)]
    page = (await api.get(f"/api/v1/insured/{nid}/statement")).text
    assert thai_month(current.minus(19)) in page

    # The same month next year, and in the membership closed by a move to Section 40.
    with business_clock().at(time(10, 0), on=current.plus(12).first_day.replace(day=20)):
        later = (await api.get(f"/api/v1/insured/{nid}/contributions")).json()
        assert (later["status"], later["endedMonth"]) == ("terminated", ended)
        assert (await api.post("/api/v1/insured", json=s40(nid))).status_code == 201
    closed = await gateway.db.primary.fetchval(
        "SELECT ended_month::text FROM closed_memberships WHERE national_id = $1", nid
    )
    assert closed == current.minus(19).first_day.isoformat()


async def test_an_old_ending_counts_only_months_paid_on_time_when_late_ones_do_not(
    gateway: Gateway,
) -> None:
    """With SSOGW_S39_LATE_COUNTS_AS_PAID off, the ending follows the last month paid on time."""
    current = current_month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=39, coverage_start=current.minus(30),
                               paid=Month.range(current.minus(30), current.minus(22)))  # fmt: skip
        for month in (current.minus(21), current.minus(20)):  # paid a month late
            await conn.execute(
                "INSERT INTO paid_months (national_id, section, month, amount_satang, paid_on)"
                " VALUES ($1, 39, $2, 43200, $3)", nid, month.first_day, month.plus(2).first_day,
            )  # fmt: skip
        await wait_replayed(conn, replicas(gateway))
    reader = PgLedger(primary=lambda: gateway.db.primary, router=lambda: gateway.db.router)
    member, _ = await reader.read_member(
        nid, since=history_start(business_clock().today()), min_lsn=None
    )
    assert member is not None and member.earlier is not None
    strict = S39Policy(late_counts_as_paid=False)
    for policy, ended in ((S39Policy(), current.minus(19)), (strict, current.minus(21))):
        standing = derive_standing(facts_of(member), today=business_clock().today(), policy=policy)
        assert (standing.status, standing.ended_month) == ("terminated", ended)
