"""A REST body is read as written: no number taken for a date or an instant, no 39.0 for a
section, no "yes" for a flag, no name given twice, no NaN. Each is refused naming the field,
and nothing is posted (app.rest.wire, app.rest.problem.DecimalJsonRequest)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.domain.calendar import settlement_day
from app.main import Gateway
from tests.support.clock import business_clock
from tests.support.people import add_person, new_national_id
from tests.support.rest_api import problem, replicas, rest
from tests.support.scenarios import current_month, wait_replayed

pytestmark = pytest.mark.db


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with rest(live_url, client_token) as client:
        yield client


async def s40_person(gateway: Gateway) -> str:
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=40, option=1, coverage_start=current_month().minus(24))
        await wait_replayed(conn, replicas(gateway))
    return nid


def payment(nid: str, **extra: Any) -> dict[str, Any]:
    now = business_clock()()
    return {
        "partnerTxnId": uuid.uuid4().hex[:20],
        "nationalId": nid,
        "section": 40,
        "months": [str(current_month())],
        "amount": "70.00",
        "businessDate": settlement_day(now).isoformat(),
        "paidAt": now.isoformat(),
        **extra,
    }


async def not_posted(api: httpx.AsyncClient, txn: str) -> None:
    status = await api.get(f"/api/v1/payments/{txn}")
    assert status.status_code == 200 and status.json()["state"] == "unknown", status.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("section", 40.0),
        ("section", "40"),
        ("section", True),
        ("businessDate", 0),
        ("businessDate", "2024-06-12T00:00:00"),
        ("businessDate", "20240612"),
        ("paidAt", 1718150400),
        ("paidAt", "1718150400"),
        ("paidAt", "2024-06-12 09:31:05+07:00"),
    ],
)
async def test_a_confirm_field_not_as_written_is_refused_and_nothing_posted(
    api: httpx.AsyncClient, gateway: Gateway, field: str, value: Any
) -> None:
    nid = await s40_person(gateway)
    sent = payment(nid)
    if field in ("businessDate", "paidAt") and isinstance(value, int):
        now = business_clock()()  # the right day or instant, as a number of seconds
        value = int(now.timestamp()) if field == "paidAt" else value
    sent[field] = value
    body = problem(await api.post("/api/v1/payments", json=sent), 422, "client.invalid_input")
    assert body["fields"] == [field], body
    await not_posted(api, sent["partnerTxnId"])


async def test_the_same_confirm_as_written_is_posted(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    """The control for the refusals above: the payment they spoil is a good one."""
    nid = await s40_person(gateway)
    sent = payment(nid)
    posted = await api.post("/api/v1/payments", json=sent)
    assert posted.status_code == 201, posted.text
    status = await api.get(f"/api/v1/payments/{sent['partnerTxnId']}")
    assert status.json()["state"] == "confirmed", status.text


async def test_a_name_given_twice_is_refused_not_read_as_its_last_value(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    nid = await s40_person(gateway)
    sent = payment(nid)
    text = json.dumps(sent)
    # "amount" twice: a reader of the first would see 70.00, of the last 0.00.
    twice = text.replace('"amount": "70.00"', '"amount": "70.00", "amount": "0.00"')
    assert twice != text
    response = await api.post(
        "/api/v1/payments", content=twice, headers={"Content-Type": "application/json"}
    )
    body = problem(response, 422, "client.invalid_input")
    assert body["field"] == "body"
    assert "'amount' appears twice" in body["detail"], body
    await not_posted(api, sent["partnerTxnId"])


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_not_json(
    api: httpx.AsyncClient, gateway: Gateway, constant: str
) -> None:
    nid = await s40_person(gateway)
    sent = payment(nid)
    text = json.dumps(sent).replace('"amount": "70.00"', f'"amount": {constant}')
    response = await api.post(
        "/api/v1/payments", content=text, headers={"Content-Type": "application/json"}
    )
    body = problem(response, 422, "client.invalid_input")
    assert f"{constant} is not a JSON value" in body["detail"], body
    await not_posted(api, sent["partnerTxnId"])


@pytest.mark.parametrize(
    ("field", "value"),
    [("option", 1.0), ("option", "1"), ("birthDate", 0), ("effectiveDate", "2024-06-01T00:00")],
)
async def test_a_registration_field_not_as_written_is_refused(
    api: httpx.AsyncClient, field: str, value: Any
) -> None:
    nid = new_national_id()
    person = {
        "nationalId": nid,
        "title": "นาย",
        "firstName": "สมชาย",
        "lastName": "รักงาน",
        "section": 40,
        "option": 1,
        field: value,
    }
    body = problem(await api.post("/api/v1/insured", json=person), 422, "client.invalid_input")
    assert body["fields"] == [field], body
    assert (await api.get(f"/api/v1/insured/{nid}")).status_code == 404
