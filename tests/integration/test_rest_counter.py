"""The counter operations over REST: the shared scenarios, idempotency, status, cancel, auth."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import time, timedelta
from typing import Any

import httpx
import pytest

from app.domain.calendar import settlement_day
from app.domain.money import to_satang
from app.errors import Unauthenticated
from app.main import Gateway
from tests.support.clock import PinnedClock, business_clock
from tests.support.people import add_person, payment_business_day
from tests.support.rest_api import audit_rows, bearer, new_token, problem, replicas
from tests.support.scenarios import (
    SCENARIOS,
    Arranged,
    Outcome,
    arrange,
    check,
    current_month,
    wait_replayed,
)

pytestmark = pytest.mark.db


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=live_url, headers=bearer(client_token), timeout=30
    ) as client:
        yield client


def payment(
    nid: str, months: list[str], amount: Any, *, section: int = 40, **extra: Any
) -> dict[str, Any]:
    now = business_clock()()
    return {
        "partnerTxnId": extra.pop("txn", None) or uuid.uuid4().hex[:20],
        "nationalId": nid,
        "section": section,
        "months": months,
        "amount": amount,
        "businessDate": settlement_day(now).isoformat(),
        "paidAt": now.isoformat(),
        "counter": {"storeId": "S-0001", "terminalId": "T-01"},
        **extra,
    }


async def s40_person(gateway: Gateway, option: int = 1) -> str:
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=40, option=option, coverage_start=current_month().minus(24)
        )
        await wait_replayed(conn, replicas(gateway))
    return nid


def outcome(response: httpx.Response) -> Outcome:
    body = response.json()
    if response.status_code >= 400:
        return Outcome(body["code"], body)
    fields: dict[str, Any] = {"section": body.get("section"), "months": body.get("months")}
    if "defaultTotal" in body:  # an inquiry
        fields.update(
            status=body["status"],
            option=body["option"],
            months=[m["month"] for m in body["months"]],
            default_months=body["defaultMonths"],
            default_total_satang=to_satang(body["defaultTotal"]),
        )
    else:
        fields["amount_satang"] = to_satang(body["amount"])
    return Outcome("ok", fields)


async def run(api: httpx.AsyncClient, arranged: Arranged) -> httpx.Response:
    s = arranged.scenario
    if s.operation == "inquire":
        params = {"section": s.section} if s.section else {}
        return await api.get(f"/api/v1/insured/{arranged.national_id}/contributions", params=params)
    amount = f"{s.amount_satang // 100}.{s.amount_satang % 100:02d}"
    body = payment(arranged.national_id, list(arranged.months), amount, section=s.section or 40)
    return await api.post("/api/v1/payments", json=body)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_shared_counter_scenarios(
    scenario: Any, api: httpx.AsyncClient, gateway: Gateway
) -> None:
    async with gateway.db.primary.acquire() as conn:
        arranged = await arrange(conn, scenario, replicas=replicas(gateway))
    response = await run(api, arranged)
    check(arranged, outcome(response))
    # Every counter call touches a national ID: exactly one audit record, refusals included.
    records = await audit_rows(gateway, response.headers["x-request-id"])
    assert len(records) == 1 and records[0]["protocol"] == "rest"
    assert records[0]["outcome"] == scenario.expect_code


async def test_inquiry_answers_amounts_in_baht_and_the_freshness(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    nid = await s40_person(gateway, option=3)
    response = await api.get(f"/api/v1/insured/{nid}/contributions")
    assert response.status_code == 200
    body = response.json()
    assert body["months"][0]["amount"] == "300.00"
    assert body["months"][0]["governmentAmount"] == "150.00"
    assert body["maxSavingsPerMonth"] == "1000.00" and body["savingsAllowed"] is True
    assert body["servedBy"] in ("replica", "primary") and body["asOf"]
    assert response.headers["x-request-id"]


async def test_confirm_then_replay_then_status_then_cancel(
    api: httpx.AsyncClient, gateway: Gateway, clock: PinnedClock
) -> None:
    nid = await s40_person(gateway)
    month = str(current_month())
    body = payment(nid, [month], 70)  # a JSON number: read exactly, never as a float
    first = await api.post("/api/v1/payments", json=body)
    assert first.status_code == 201, first.text
    receipt = first.json()["receiptNo"]
    assert first.json()["amount"] == "70.00" and first.json()["replayed"] is False
    assert first.headers["location"] == f"/api/v1/payments/{body['partnerTxnId']}"

    again = await api.post("/api/v1/payments", json=body)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["receiptNo"] == receipt

    changed = await api.post("/api/v1/payments", json={**body, "amount": "140.00"})
    problem(changed, 409, "client.duplicate_transaction")

    status = await api.get(f"/api/v1/payments/{body['partnerTxnId']}")
    assert status.status_code == 200
    assert status.json()["state"] == "confirmed" and status.json()["receiptNo"] == receipt

    posted = await payment_business_day(gateway.db.primary, body["partnerTxnId"])
    with clock.at(time(10, 0), on=posted):  # before that day's settlement cut-off
        cancel = await api.post(
            f"/api/v1/payments/{body['partnerTxnId']}/cancel", json={"reason": "test"}
        )
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["state"] == "cancelled" and cancel.json()["months"] == [month]
    status = await api.get(f"/api/v1/payments/{body['partnerTxnId']}")
    assert status.json()["state"] == "cancelled"


async def test_after_the_cut_off_a_cancel_is_refused_and_the_payment_stands(
    api: httpx.AsyncClient, gateway: Gateway, clock: PinnedClock
) -> None:
    nid = await s40_person(gateway)
    body = payment(nid, [str(current_month())], "70.00")
    assert (await api.post("/api/v1/payments", json=body)).status_code == 201
    posted = await payment_business_day(gateway.db.primary, body["partnerTxnId"])
    with clock.at(time(23, 30), on=posted):  # after the 23:00 settlement cut-off
        cancel = await api.post(
            f"/api/v1/payments/{body['partnerTxnId']}/cancel", json={"reason": "test"}
        )
    problem(cancel, 422, "client.cancel_not_allowed")  # only a refund remains
    status = await api.get(f"/api/v1/payments/{body['partnerTxnId']}")
    assert status.json()["state"] == "confirmed"


async def test_status_of_an_unknown_transaction_is_unknown(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/payments/never-sent-" + uuid.uuid4().hex[:8])
    assert response.status_code == 200
    assert response.json()["state"] == "unknown" and response.json()["receiptNo"] is None


async def test_cancel_of_an_unknown_transaction_is_not_found(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/payments/nope-1/cancel", json={"reason": "x"})
    problem(response, 404, "client.transaction_not_found")


async def test_amounts_below_one_satang_and_negative_amounts_are_refused(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    nid = await s40_person(gateway)
    month = str(current_month())
    body = problem(
        await api.post("/api/v1/payments", json=payment(nid, [month], "70.001")),
        422,
        "client.invalid_amount",
    )
    assert body["reason"] == "decimals"
    problem(
        await api.post("/api/v1/payments", json=payment(nid, [month], "-70.00")),
        422,
        "client.invalid_amount",
    )


async def test_a_bad_month_and_a_naive_paid_at_are_refused(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    nid = await s40_person(gateway)
    problem(
        await api.post("/api/v1/payments", json=payment(nid, ["2024-13"], "70.00")),
        422,
        "client.invalid_month",
    )
    naive = payment(nid, [str(current_month())], "70.00", paidAt="2024-06-12T09:00:00")
    body = problem(await api.post("/api/v1/payments", json=naive), 422, "client.invalid_input")
    assert body["fields"] == ["paidAt"]


async def test_the_business_day_is_the_gateways_and_paid_at_keeps_to_its_clock(
    api: httpx.AsyncClient, gateway: Gateway, clock: PinnedClock
) -> None:
    nid = await s40_person(gateway)
    with clock.at(time(23, 10)) as now:
        late_evening = payment(nid, [str(current_month())], "70.00")
        del late_evening["businessDate"]  # optional: the gateway decides it
        wrong = {**late_evening, "businessDate": clock.today().isoformat()}
        body = problem(
            await api.post("/api/v1/payments", json=wrong), 422, "client.business_date_mismatch"
        )
        assert body["businessDate"] == clock.business_day().isoformat(), body
        stale = {**late_evening, "paidAt": (now - timedelta(minutes=10)).isoformat()}
        body = problem(
            await api.post("/api/v1/payments", json=stale), 422, "client.paid_at_out_of_window"
        )
        assert body["field"] == "paidAt" and body["maxBehindS"] == 300, body
        confirmed = await api.post("/api/v1/payments", json=late_evening)
        assert confirmed.status_code == 201, confirmed.text
        assert confirmed.json()["businessDate"] == clock.business_day().isoformat()
        assert clock.business_day() == clock.today() + timedelta(days=1)


async def test_the_counter_needs_a_token_with_the_counter_scope(
    live_url: str, gateway: Gateway
) -> None:
    nid = await s40_person(gateway)
    path = f"/api/v1/insured/{nid}/contributions"
    async with httpx.AsyncClient(base_url=live_url) as anonymous:
        missing = await anonymous.get(path)
        body = problem(missing, 401, "client.unauthenticated")
        assert body["detail"] == Unauthenticated.default_message and "reason" not in body
        problem(
            await anonymous.get(path, headers=bearer("ssogw_nope_nope")),
            401,
            "client.unauthenticated",
        )
        admin_only = await new_token(gateway, ["admin"])
        refused = await anonymous.get(path, headers=bearer(admin_only))
        assert problem(refused, 403, "client.scope_not_allowed")["scope"] == "counter"
    # The refusals are audited with the ID they asked about.
    records = await audit_rows(gateway, missing.headers["x-request-id"])
    assert [(r["outcome"], r["national_id"]) for r in records] == [("client.unauthenticated", nid)]


async def test_the_callers_request_id_is_kept_and_echoed(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    nid = await s40_person(gateway)
    rid = "it-" + uuid.uuid4().hex
    response = await api.get(f"/api/v1/insured/{nid}/contributions", headers={"X-Request-ID": rid})
    assert response.headers["x-request-id"] == rid
    assert [r["operation"] for r in await audit_rows(gateway, rid)] == ["InquireContribution"]
    longest = ("it-" + uuid.uuid4().hex * 4)[:128]  # the OpenAPI document's bound
    response = await api.get(
        f"/api/v1/insured/{nid}/contributions", headers={"X-Request-ID": longest}
    )
    assert response.headers["x-request-id"] == longest
    assert [r["operation"] for r in await audit_rows(gateway, longest)] == ["InquireContribution"]
    for bad in ("bad id with spaces", longest + "x"):
        odd = await api.get(f"/api/v1/insured/{nid}/contributions", headers={"X-Request-ID": bad})
        assert odd.headers["x-request-id"] != bad


async def test_control_characters_in_free_text_are_refused(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    nid = await s40_person(gateway)
    body = payment(nid, [str(current_month())], "70.00")
    body["counter"] = {"storeId": "S\u00000001"}
    refused = problem(await api.post("/api/v1/payments", json=body), 422, "client.invalid_input")
    assert refused["fields"] == ["counter.storeId"]
    body["counter"] = {"storeId": "S-0001"}
    assert (await api.post("/api/v1/payments", json=body)).status_code == 201
    cancel = await api.post(
        f"/api/v1/payments/{body['partnerTxnId']}/cancel", json={"reason": "a\u0000b"}
    )
    assert problem(cancel, 422, "client.invalid_input")["fields"] == ["reason"]
