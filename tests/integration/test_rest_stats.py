"""Payment statistics over REST: counts and amounts of confirmed payments, from the replica."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from app.main import Gateway
from app.stats.repository import StatsRepository
from tests.support.clock import business_clock
from tests.support.people import add_person
from tests.support.plans import plan_counts
from tests.support.rest_api import new_client, new_token, problem, replicas, rest
from tests.support.scenarios import current_month, wait_replayed

pytestmark = pytest.mark.db


async def pay(api: httpx.AsyncClient, gateway: Gateway, *, option: int, amount: str) -> None:
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=40, option=option, coverage_start=current_month())
        await wait_replayed(conn, replicas(gateway))
    now = business_clock()()
    response = await api.post(
        "/api/v1/payments",
        json={
            "partnerTxnId": uuid.uuid4().hex,
            "nationalId": nid,
            "section": 40,
            "months": [str(current_month())],
            "amount": amount,
            "businessDate": business_clock().business_day().isoformat(),
            "paidAt": now.isoformat(),
        },
    )
    assert response.status_code == 201, response.text


async def test_stats_count_and_sum_confirmed_payments(live_url: str, gateway: Gateway) -> None:
    name, token = await new_client(gateway, ["counter", "admin"])
    today = business_clock().business_day().isoformat()
    params = {"from": today, "to": today}
    async with rest(live_url, token) as api:
        await pay(api, gateway, option=1, amount="70.00")
        await pay(api, gateway, option=3, amount="300.00")
        async with gateway.db.primary.acquire() as conn:
            await wait_replayed(conn, replicas(gateway))
        by_partner = await api.get(
            "/api/v1/stats/payments", params={**params, "groupBy": "partner"}
        )
        assert by_partner.status_code == 200, by_partner.text
        body = by_partner.json()
        mine = [g for g in body["groups"] if g["key"] == name]
        assert mine == [
            {"key": name, "kind": "client", "count": 2, "amount": "370.00", "savings": "0.00"}
        ]
        assert body["servedBy"] in ("replica", "primary") and body["from"] == today
        for group_by in ("day", "section"):
            report = (
                await api.get("/api/v1/stats/payments", params={**params, "groupBy": group_by})
            ).json()
            assert report["count"] == sum(g["count"] for g in report["groups"]) >= 2
            assert Decimal(report["amount"]) == sum(Decimal(g["amount"]) for g in report["groups"])
        by_day = (await api.get("/api/v1/stats/payments", params=params)).json()
        assert [g["key"] for g in by_day["groups"]] == [today]


async def test_stats_input_is_checked(live_url: str, gateway: Gateway) -> None:
    today = business_clock().today()
    async with rest(live_url, await new_token(gateway, ["admin"])) as api:
        backwards = {"from": today.isoformat(), "to": (today - timedelta(days=1)).isoformat()}
        problem(
            await api.get("/api/v1/stats/payments", params=backwards), 422, "client.invalid_input"
        )
        long = {"from": (today - timedelta(days=400)).isoformat(), "to": today.isoformat()}
        problem(await api.get("/api/v1/stats/payments", params=long), 422, "client.invalid_input")
        odd = {"from": today.isoformat(), "to": today.isoformat(), "groupBy": "month"}
        body = problem(
            await api.get("/api/v1/stats/payments", params=odd), 422, "client.invalid_input"
        )
        assert body["fields"] == ["groupBy"]
        problem(await api.get("/api/v1/stats/payments"), 422, "client.invalid_input")
    async with rest(live_url, await new_token(gateway, ["counter"])) as api:
        problem(
            await api.get(
                "/api/v1/stats/payments", params={"from": "2024-01-01", "to": "2024-01-31"}
            ),
            403,
            "client.scope_not_allowed",
        )


async def test_stats_sums_are_planned_for_their_own_dates(gateway: Gateway) -> None:
    """The replicas' sessions run generic plans (app.db.database); the sums over a span of
    dates are planned for the span asked (a year's is a scan of the table, a day's an index
    range), on whichever server answers."""
    store = StatsRepository(router=lambda: gateway.db.router)
    today = business_clock().business_day()
    for days in (0, 30, 365, 0, 30, 365, 0):  # past the five calls that are planned anyway
        await store.payment_groups(first=today - timedelta(days=days), last=today,
                                   group_by="section")  # fmt: skip
    pools = [*replicas(gateway), gateway.db.primary]
    for _ in range(50):  # until no connection that ran them is held by the router's probe
        plans = await plan_counts(pools, "GROUP BY p.section ORDER BY p.section")
        if plans["custom"] >= 7:
            break
        await asyncio.sleep(0.05)
    assert plans["custom"] >= 7 and plans["generic"] == 0, plans
