"""Amounts and cursors at their edges over REST: read by the domain's rules as over SOAP,
refused after the caller's admission, naming the field, and never at the cost of a worker.
Found by a review of the REST side (2026-12-06).

The counter routes run behind the real route class with the SOAP tests' in-memory fake
(admission by bearer token instead of UsernameToken); no database.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.exceptions import HTTPException

from app.admission.records import Caller
from app.counter.records import ConfirmRequest, ConfirmResult
from app.counter.routes import add_counter_routes
from app.errors import InvalidInput, Unauthenticated
from app.rest.api import PREFIX, counter_routes
from app.rest.problem import unmatched_route
from app.settlement.service import _cursor
from tests.unit.soap.fake_counter import NOW, S39_ID, FakeCounter

JSON = {"Content-Type": "application/json"}
TOKEN = {"Authorization": "Bearer ssogw_test_secret", **JSON}


@dataclass
class BearerFakeCounter(FakeCounter):
    """The SOAP fake, admitting any bearer token and refusing a call without one."""

    def _admit(self, name: str, caller: Caller, credentials: Any, request: object) -> None:
        self.calls.append((name, caller, credentials, request))
        if credentials is None:
            raise Unauthenticated()

    async def confirm(
        self, *, caller: Caller, credentials: Any, request: ConfirmRequest
    ) -> ConfirmResult:
        self._admit("confirm", caller, credentials, request)
        return ConfirmResult(
            request.partner_txn_id, "R00000001", request.national_id, request.section,
            request.months, request.amount_satang, request.savings_satang, NOW,
            request.business_date or date(2024, 6, 10),
        )  # fmt: skip


@pytest.fixture
def fake() -> BearerFakeCounter:
    return BearerFakeCounter()


@pytest.fixture
async def client(fake: BearerFakeCounter) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.add_exception_handler(HTTPException, unmatched_route)
    part = APIRouter(prefix=PREFIX, route_class=counter_routes(fake))
    add_counter_routes(part, fake)
    app.include_router(part)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
        yield c


def confirm_body(**fields: str) -> bytes:
    """A confirm body with raw JSON values (so numbers stay as written)."""
    values = {
        "partnerTxnId": '"POS-1"',
        "nationalId": json.dumps(S39_ID),
        "section": "39",
        "months": '["2024-04"]',
        "amount": '"432.00"',
        "paidAt": '"2024-06-10T09:30:00+07:00"',
        **fields,
    }
    return ("{" + ",".join(f'"{k}":{v}' for k, v in values.items()) + "}").encode()


def confirms(fake: FakeCounter) -> list[ConfirmRequest]:
    return [c[3] for c in fake.calls if c[0] == "confirm"]  # type: ignore[misc]


# --- An exponent costs nothing ---------------------------------------------------------------

_HANG = """
import json
from decimal import Decimal
from pydantic import ValidationError
from app.counter.payment_schemas import ConfirmIn
body = json.loads({body!r}, parse_float=Decimal)  # as DecimalJsonRequest reads it
try:
    ConfirmIn.model_validate(body).to_request()
except ValidationError as exc:
    print(exc.errors()[0]["type"])
"""


@pytest.mark.parametrize("amount", ["1E-999999999", '"1E-999999999"', "4.32E-999999990"])
def test_an_amount_with_a_huge_negative_exponent_is_refused_at_once(amount: str) -> None:
    # A power of ten as large as the exponent was built before the amount was refused:
    # minutes of CPU and ~400 MB for a ~100-byte request (1E-10000000 alone took ~7 s). In a
    # process of its own, so that a return of it fails rather than hangs the suite.
    code = _HANG.format(body=confirm_body(amount=amount).decode())
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=10
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"amount {amount} still being read after 10 s")
    assert done.stdout.strip() == "invalid_amount", done.stderr


# --- Amount text is read by the domain's rules, as over SOAP ----------------------------------


@pytest.mark.parametrize(
    ("amount", "read_as"),
    [
        ('"๔๓๒.๐๐"', 43200),  # Thai digits
        ('"４３２.００"', 43200),  # full-width digits
        ('"4_32"', 43200),  # Python's digit separator: "4_32" is 432 baht
        ('"1_0.0_0"', 1000),
        ('"432.00\\u00a0"', 43200),  # a trailing no-break space
        ('"4.32e2"', 43200),  # an exponent in text
    ],
)
async def test_amount_text_the_domain_refuses_is_refused_over_rest(
    client: httpx.AsyncClient, fake: FakeCounter, amount: str, read_as: int
) -> None:
    # to_satang(str) refuses each (reason "syntax"); pydantic's Decimal took them all.
    answer = await client.post(
        "/api/v1/payments", content=confirm_body(amount=amount), headers=TOKEN
    )
    assert answer.status_code == 422, (
        answer.status_code,
        [r.amount_satang for r in confirms(fake)],
    )
    assert answer.json()["code"] == "client.invalid_amount"
    assert confirms(fake) == []


# --- An invalid amount is judged after admission, naming its field --------------------------


@pytest.mark.parametrize("fields", [{"savings": "0.001"}, {"amount": '"-1"'}, {"amount": "1e99"}])
async def test_a_caller_without_credentials_learns_only_that(
    client: httpx.AsyncClient, fake: FakeCounter, fields: dict[str, str]
) -> None:
    # Refused as unreadable, the request goes to the service's refuse() first: admitted (or
    # not) and audited. Before, body.to_request() judged the amount for an unknown caller.
    answer = await client.post("/api/v1/payments", content=confirm_body(**fields), headers=JSON)
    assert answer.json()["code"] == "client.unauthenticated"
    assert answer.status_code == 401
    assert fake.calls, "the caller was never admitted (and nothing was audited)"


async def test_an_invalid_savings_amount_names_its_field(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    answer = await client.post(
        "/api/v1/payments", content=confirm_body(savings="0.001"), headers=TOKEN
    )
    problem = answer.json()
    assert problem["code"] == "client.invalid_amount"
    assert problem.get("field") == "savings", problem
    assert problem["reason"] == "decimals"


# --- A JSON number is read exactly ------------------------------------------------------------


@pytest.mark.parametrize("amount", ["432.0000000000000001", "1e-400", "432.001"])
async def test_a_json_number_below_one_satang_is_refused(
    client: httpx.AsyncClient, fake: FakeCounter, amount: str
) -> None:
    answer = await client.post(
        "/api/v1/payments", content=confirm_body(amount=amount), headers=TOKEN
    )
    assert answer.json()["code"] == "client.invalid_amount"
    assert confirms(fake) == []


async def test_a_json_number_with_an_exponent_is_read_exactly(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    answer = await client.post(
        "/api/v1/payments", content=confirm_body(amount="4.32e2"), headers=TOKEN
    )
    assert answer.status_code == 201
    assert [r.amount_satang for r in confirms(fake)] == [43200]


# --- A settlement cursor is one the report could have given -----------------------------------


@pytest.mark.parametrize("cursor", ["๑.๒", "１.２", "99999.1", "0.99999999999", "9" * 30 + ".1"])
def test_a_settlement_cursor_it_never_gave_is_refused(cursor: str) -> None:
    # str.isdigit() takes Thai and full-width digits, and "99999.1" would reach asyncpg as a
    # smallint it cannot encode (a DataError the store does not translate: server.internal).
    with pytest.raises(InvalidInput):
        _cursor(cursor)
