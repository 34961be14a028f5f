"""Insured-person administration over REST: register, read, list, status, option; audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from app.domain.months import Month
from app.insured.service import encode_cursor
from app.main import Gateway
from tests.support.clock import business_clock
from tests.support.people import new_national_id
from tests.support.rest_api import audit_rows, new_token, problem, replicas, rest
from tests.support.scenarios import current_month, wait_replayed

pytestmark = pytest.mark.db


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with rest(live_url, client_token) as client:
        yield client


def person(**extra: Any) -> dict[str, Any]:
    return {
        "nationalId": new_national_id(),
        "title": "นาย",
        "firstName": "สมชาย",
        "lastName": "รักงาน",
        "section": 40,
        "option": 1,
        **extra,
    }


def today() -> date:
    return business_clock().today()


def s39_person(**extra: Any) -> dict[str, Any]:
    """A Section 39 registration with the Section 33 history that makes the person eligible."""
    left = (today() - timedelta(days=20)).isoformat()
    section33 = {"monthsContributed": 24, "employmentEndedOn": left}
    return person(section=39, option=None, section33=section33, **extra)


async def replayed(gateway: Gateway) -> None:
    async with gateway.db.primary.acquire() as conn:
        await wait_replayed(conn, replicas(gateway))


async def test_register_then_read_the_full_record(api: httpx.AsyncClient, gateway: Gateway) -> None:
    body = person(birthDate="1990-05-01", paymentMethod="counter")
    created = await api.post("/api/v1/insured", json=body)
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["nationalId"] == body["nationalId"] and record["status"] == "active"
    assert record["option"] == 1 and record["birthDate"] == "1990-05-01"
    assert record["effectiveDate"] == today().isoformat()
    # Read straight after the write (read-your-writes on this instance).
    read = await api.get(f"/api/v1/insured/{body['nationalId']}")
    assert read.status_code == 200, read.text
    detail = read.json()
    assert detail["person"]["firstName"] == "สมชาย"
    assert detail["payments"] == [] and detail["paidMonths"] == []
    assert detail["servedBy"] in ("replica", "primary")
    for response, operation in ((created, "CreateInsured"), (read, "GetInsured")):
        records = await audit_rows(gateway, response.headers["x-request-id"])
        assert [
            (r["operation"], r["outcome"], r["national_id"], r["name_returned"]) for r in records
        ] == [(operation, "ok", body["nationalId"], "นายสมชาย รักงาน")]


async def test_the_record_shows_payments_made_at_the_counter(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    body = person(effectiveDate=current_month().minus(3).first_day.isoformat())
    assert (await api.post("/api/v1/insured", json=body)).status_code == 201
    await replayed(gateway)
    month = str(current_month())
    paid = await api.post(
        "/api/v1/payments",
        json={
            "partnerTxnId": "t-" + body["nationalId"],
            "nationalId": body["nationalId"],
            "section": 40,
            "months": [month],
            "amount": "70.00",
            "businessDate": business_clock().business_day().isoformat(),
            "paidAt": business_clock()().isoformat(),
        },
    )
    assert paid.status_code == 201, paid.text
    detail = (await api.get(f"/api/v1/insured/{body['nationalId']}")).json()
    assert [p["receiptNo"] for p in detail["payments"]] == [paid.json()["receiptNo"]]
    assert detail["payments"][0]["channelKind"] == "client"
    assert detail["paidMonths"][0]["month"] == month
    assert detail["paidMonths"][0]["amount"] == "70.00"


async def test_registration_rules(api: httpx.AsyncClient) -> None:
    existing = person()
    assert (await api.post("/api/v1/insured", json=existing)).status_code == 201
    problem(await api.post("/api/v1/insured", json=existing), 409, "client.already_exists")
    bad = await api.post("/api/v1/insured", json=person(nationalId="3100600445636"))
    assert problem(bad, 422, "client.invalid_national_id")["reason"] == "checksum"
    # 0 is accepted for Section 40 only.
    zero = new_national_id("0")
    s39 = await api.post("/api/v1/insured", json=person(nationalId=zero, section=39, option=None))
    assert problem(s39, 422, "client.invalid_national_id")["reason"] == "prefix"
    no_option = await api.post("/api/v1/insured", json=person(option=None))
    assert problem(no_option, 422, "client.invalid_input")["field"] == "option"
    s39_option = await api.post("/api/v1/insured", json=person(section=39, option=2))
    assert problem(s39_option, 422, "client.invalid_input")["field"] == "option"
    young = await api.post("/api/v1/insured", json=person(birthDate=today().isoformat()))
    assert problem(young, 422, "client.refused")["reason"] == "registration_age"
    day = today()
    turned_65 = day.replace(year=day.year - 65, day=min(day.day, 28)).isoformat()
    turned_66 = day.replace(year=day.year - 66, day=min(day.day, 28)).isoformat()
    old = await api.post("/api/v1/insured", json=person(birthDate=turned_66))
    assert problem(old, 422, "client.refused")["age"] == 66
    assert (await api.post("/api/v1/insured", json=person(birthDate=turned_65))).status_code == 201
    # Section 39 has no age rule at registration.
    s39_old = s39_person(birthDate=turned_66)
    assert (await api.post("/api/v1/insured", json=s39_old)).status_code == 201
    unknown = await api.post("/api/v1/insured", json=person(nickname="x"))
    assert problem(unknown, 422, "client.invalid_input")["fields"] == ["nickname"]
    blank = await api.post("/api/v1/insured", json=person(firstName="   "))
    assert problem(blank, 422, "client.invalid_input")["field"] == "firstName"


async def test_listing_pages_through_in_national_id_order(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    ids = sorted(new_national_id("8") for _ in range(5))
    for nid in ids:
        assert (await api.post("/api/v1/insured", json=person(nationalId=nid))).status_code == 201
    await replayed(gateway)
    cursor = encode_cursor(f"{int(ids[0]) - 1:013d}")
    seen: list[str] = []
    pages = 0
    while cursor is not None and (not seen or seen[-1] < ids[-1]):
        page = await api.get("/api/v1/insured", params={"limit": 2, "cursor": cursor})
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        assert 1 <= len(items) <= 2
        seen += [item["nationalId"] for item in items]
        cursor = page.json()["nextCursor"]
        pages += 1
    assert seen == sorted(set(seen)), "no repeats, in order"
    assert [nid for nid in seen if nid in ids] == ids
    assert pages >= 3
    # Each person a page showed is audited under the page's request id.
    records = await audit_rows(gateway, page.headers["x-request-id"])
    shown = {r["national_id"] for r in records if r["national_id"]}
    assert shown == {item["nationalId"] for item in page.json()["items"]}
    assert records[-1]["national_id"] is None and records[-1]["outcome"] == "ok"


async def test_listing_filters_and_refuses_a_forged_cursor(api: httpx.AsyncClient) -> None:
    page = await api.get("/api/v1/insured", params={"section": 40, "status": "active", "limit": 5})
    assert page.status_code == 200
    assert all(i["section"] == 40 and i["status"] == "active" for i in page.json()["items"])
    problem(
        await api.get("/api/v1/insured", params={"cursor": "not-a-cursor"}),
        422,
        "client.invalid_input",
    )
    problem(await api.get("/api/v1/insured", params={"limit": 0}), 422, "client.invalid_input")
    problem(await api.get("/api/v1/insured", params={"section": 33}), 422, "client.invalid_input")


async def test_set_status_terminates_and_reinstates(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    body = s39_person()
    assert (await api.post("/api/v1/insured", json=body)).status_code == 201
    path = f"/api/v1/insured/{body['nationalId']}/status"
    ended = str(current_month())  # cover began this month: it cannot end before
    terminated = await api.put(
        path, json={"status": "terminated", "reason": "left the scheme", "endedMonth": ended}
    )
    assert terminated.status_code == 200, terminated.text
    assert terminated.json()["status"] == "terminated"
    assert terminated.json()["endedMonth"] == ended
    # The counter sees it at once on this instance.
    inquiry = await api.get(f"/api/v1/insured/{body['nationalId']}/contributions")
    assert inquiry.json()["status"] == "terminated" and inquiry.json()["months"] == []
    active = await api.put(path, json={"status": "active", "reason": "terminated in error"})
    assert active.json()["status"] == "active" and active.json()["endedMonth"] is None
    bad = await api.put(path, json={"status": "active", "reason": "x", "endedMonth": ended})
    assert problem(bad, 422, "client.invalid_input")["field"] == "endedMonth"
    missing = await api.put(
        f"/api/v1/insured/{new_national_id()}/status",
        json={"status": "inactive", "reason": "moved abroad"},
    )
    problem(missing, 404, "client.person_not_found")


async def test_the_s40_option_changes_from_next_month_once_a_year(api: httpx.AsyncClient) -> None:
    body = person(option=1)
    assert (await api.post("/api/v1/insured", json=body)).status_code == 201
    path = f"/api/v1/insured/{body['nationalId']}/option-change"
    changed = await api.post(path, json={"option": 3})
    assert changed.status_code == 200, changed.text
    result = changed.json()
    assert result["previousOption"] == 1 and result["option"] == 3
    assert result["effectiveMonth"] == str(Month.parse(str(current_month())).plus(1))
    assert result["person"]["option"] == 3
    again = await api.post(path, json={"option": 2})
    assert problem(again, 422, "client.option_change_refused")["reason"] == (
        "already_changed_this_year"
    )
    history = (await api.get(f"/api/v1/insured/{body['nationalId']}")).json()["optionChanges"]
    assert [(c["previousOption"], c["newOption"]) for c in history] == [(1, 3)]
    s39 = s39_person()
    assert (await api.post("/api/v1/insured", json=s39)).status_code == 201
    problem(
        await api.post(f"/api/v1/insured/{s39['nationalId']}/option-change", json={"option": 2}),
        422,
        "client.section_mismatch",
    )


async def test_insured_persons_need_the_admin_scope(live_url: str, gateway: Gateway) -> None:
    nid = new_national_id()
    counter_only = await new_token(gateway, ["counter"])
    async with rest(live_url, counter_only) as api:
        refused = await api.get(f"/api/v1/insured/{nid}")
        assert problem(refused, 403, "client.scope_not_allowed")["scope"] == "admin"
        problem(await api.get("/api/v1/insured"), 403, "client.scope_not_allowed")
    async with rest(live_url) as anonymous:
        problem(
            await anonymous.post("/api/v1/insured", json=person()), 401, "client.unauthenticated"
        )
    records = await audit_rows(gateway, refused.headers["x-request-id"])
    assert [(r["outcome"], r["national_id"]) for r in records] == [
        ("client.scope_not_allowed", nid)
    ]
