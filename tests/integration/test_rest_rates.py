"""The rate table over REST: list, a future rate, a retroactive cut and the refunds it creates.

The rates added here cover months nobody else in the session pays (far past, far future), so
other tests keep the amounts of DOMAIN.md.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.domain.months import Month
from app.domain.national_id import generate_national_id
from app.main import Gateway
from tests.support.people import add_person
from tests.support.rest_api import audit_rows, new_token, problem, rest

pytestmark = pytest.mark.db


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with rest(live_url, client_token) as client:
        yield client


def rate(**extra: Any) -> dict[str, Any]:
    return {"section": 40, "option": 3, "amount": "250.00", "governmentAmount": "150.00", **extra}


async def test_the_rate_table_lists_the_seeded_history(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/rates", params={"section": 39})
    assert response.status_code == 200
    lines = {(r["firstMonth"], r["lastMonth"], r["amount"]) for r in response.json()["rates"]}
    assert ("1990-01", None, "432.00") in lines
    assert ("2020-03", "2020-05", "86.00") in lines
    assert all(r["section"] == 39 and r["option"] is None for r in response.json()["rates"])


async def test_a_future_rate_is_added_and_listed(api: httpx.AsyncClient, gateway: Gateway) -> None:
    added = await api.post(
        "/api/v1/rates", json=rate(firstMonth="2091-01", lastMonth="2091-12", note="far ahead")
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["retroactive"] is False and body["overpayments"] == []
    assert body["overpaymentCount"] == 0 and body["refundTotal"] == "0.00"
    assert body["rate"]["amount"] == "250.00" and body["rate"]["note"] == "far ahead"
    listed = (await api.get("/api/v1/rates", params={"section": 40})).json()["rates"]
    assert body["rate"]["id"] in [r["id"] for r in listed]
    records = await audit_rows(gateway, added.headers["x-request-id"])
    assert [(r["operation"], r["outcome"]) for r in records] == [("AddRate", "ok")]


async def test_a_retroactive_cut_lists_the_overpayments_it_creates(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    months = [Month(2015, m) for m in (1, 2, 3)]
    async with gateway.db.primary.acquire() as conn:
        overpaid = await add_person(
            conn, section=40, option=3, coverage_start=Month(2014, 1), paid=months
        )
        # Paid below the new amount: owed nothing.
        cheap = await add_person(
            conn,
            section=40,
            option=3,
            coverage_start=Month(2014, 1),
            paid=months[:1],
            paid_amount_satang=20_000,
        )
        other_option = await add_person(
            conn, section=40, option=1, coverage_start=Month(2014, 1), paid=months
        )
    response = await api.post(
        "/api/v1/rates/retroactive",
        json=rate(firstMonth="2015-01", lastMonth="2015-03", note="cut Jan-Mar 2015"),
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["retroactive"] is True
    mine = [o for o in body["overpayments"] if o["nationalId"] == overpaid]
    assert mine == [
        {
            "nationalId": overpaid,
            "section": 40,
            "option": 3,
            "month": str(m),
            "paid": "300.00",
            "due": "250.00",
            "refund": "50.00",
            "reason": "rate_cut",
        }
        for m in months
    ]
    ids = {o["nationalId"] for o in body["overpayments"]}
    assert cheap not in ids and other_option not in ids
    assert body["overpaymentCount"] == len(body["overpayments"]) >= 3
    assert Decimal(body["refundTotal"]) == sum(Decimal(o["refund"]) for o in body["overpayments"])
    records = await audit_rows(gateway, response.headers["x-request-id"])
    own = [(r["operation"], r["outcome"]) for r in records if r["national_id"] is None]
    assert own == [("AddRetroactiveRate", "ok")]
    # Each person the answer lists has a record of the call too (their ID was shown).
    assert {r["national_id"] for r in records if r["national_id"] is not None} == ids


async def test_rates_are_checked(api: httpx.AsyncClient) -> None:
    past = await api.post("/api/v1/rates", json=rate(firstMonth="2016-01"))
    assert problem(past, 422, "client.invalid_input")["reason"] == "not_future"
    future = await api.post("/api/v1/rates/retroactive", json=rate(firstMonth="2092-01"))
    assert problem(future, 422, "client.invalid_input")["reason"] == "not_retroactive"
    s39_option = await api.post("/api/v1/rates", json=rate(section=39, firstMonth="2092-01"))
    assert problem(s39_option, 422, "client.invalid_input")["field"] == "option"
    zero = await api.post("/api/v1/rates", json=rate(firstMonth="2092-01", amount="0.00"))
    problem(zero, 422, "client.invalid_amount")
    backwards = await api.post(
        "/api/v1/rates", json=rate(firstMonth="2092-05", lastMonth="2092-01")
    )
    problem(backwards, 422, "client.invalid_input")
    problem(
        await api.post("/api/v1/rates", json=rate(firstMonth="2092-1")), 422, "client.invalid_month"
    )


async def test_rates_need_the_admin_scope(live_url: str, gateway: Gateway) -> None:
    async with rest(live_url, await new_token(gateway, ["counter", "audit"])) as api:
        problem(await api.get("/api/v1/rates"), 403, "client.scope_not_allowed")
        refused = await api.post("/api/v1/rates", json=rate(firstMonth="2093-01"))
        problem(refused, 403, "client.scope_not_allowed")
    records = await audit_rows(gateway, refused.headers["x-request-id"])
    assert [(r["operation"], r["outcome"]) for r in records] == [
        ("AddRate", "client.scope_not_allowed")
    ]


async def test_a_cut_over_many_paid_months_streams_one_whole_document(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    rng = random.Random(2013)
    ids = sorted({generate_national_id(rng, first_digit="5") for _ in range(400)})
    months = [date(2013, m, 1) for m in (1, 2, 3)]
    persons = [(nid, "นาย", "ทดสอบ", "จำนวนมาก", 40, 2, date(2012, 1, 1)) for nid in ids]
    paid = [(nid, 40, month, 10_000, 2, month) for nid in ids for month in months]
    async with gateway.db.primary.acquire() as conn:
        await conn.copy_records_to_table(
            "insured_persons",
            records=persons,
            columns=(
                "national_id",
                "title",
                "first_name",
                "last_name",
                "section",
                "s40_option",
                "effective_date",
            ),
        )
        await conn.copy_records_to_table(
            "paid_months",
            records=paid,
            columns=("national_id", "section", "month", "amount_satang", "s40_option", "paid_on"),
        )
    response = await api.post(
        "/api/v1/rates/retroactive",
        json=rate(option=2, firstMonth="2013-01", lastMonth="2013-03", amount="60.00"),
    )
    assert response.status_code == 201, response.text[:500]
    assert len(response.content) > 128 * 1024, "written in several pieces"
    body = response.json()
    mine = [o for o in body["overpayments"] if o["nationalId"] in set(ids)]
    assert len(mine) == len(paid) and {o["refund"] for o in mine} == {"40.00"}
    assert [o["month"] for o in body["overpayments"]] == sorted(
        o["month"] for o in body["overpayments"]
    )
    assert body["overpaymentCount"] == len(body["overpayments"])
    assert Decimal(body["refundTotal"]) == sum(Decimal(o["refund"]) for o in body["overpayments"])
