"""Golden envelopes: each request file answered exactly as its response or fault file says.

Files are compared after canonicalisation, and every answer's payload is validated against the
XSD. To accept a deliberate change of the contract, run with SSOGW_UPDATE_GOLDEN=1, then read
the diff of the golden files before committing it.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
import xmlschema
from fastapi import FastAPI

from app.errors import ClockSkew, Overloaded
from app.soap import soap_router
from tests.contract.conftest import GOLDEN, canonical, pretty
from tests.unit.soap.envelopes import SSO
from tests.unit.soap.fake_counter import FakeCounter

UPDATE = os.environ.get("SSOGW_UPDATE_GOLDEN") == "1"
CONTENT_TYPES = {"soap11": "text/xml; charset=utf-8", "soap12": "application/soap+xml"}


@dataclass(frozen=True)
class Case:
    name: str  # the golden answer: responses/<name>.xml, or faults/<name>.xml
    request: str  # the golden request: requests/<request>.xml
    status: int = 200
    seeds: tuple[str, ...] = ()  # requests sent first, each expected to succeed
    content_type: str | None = None  # else from the request's name (.soap11 / .soap12)
    fail_with: Exception | None = None  # the fake service raises this

    @property
    def answer(self) -> str:
        return f"{'responses' if self.status == 200 else 'faults'}/{self.name}.xml"


CONFIRMED = ("confirm_s39.soap11",)
CASES = [
    Case("inquire_s39.soap11", "inquire_s39.soap11"),
    Case("inquire_s40.soap12", "inquire_s40.soap12"),
    Case("inquire_ended.soap11", "inquire_ended.soap11"),
    Case("inquire_returned.soap11", "inquire_returned.soap11"),  # contract 1.1's elements
    Case("confirm_s39.soap11", "confirm_s39.soap11"),
    Case("confirm_s40.soap12", "confirm_s40.soap12"),
    Case("confirm_replayed.soap11", "confirm_s39.soap11", seeds=CONFIRMED),
    Case("status_confirmed.soap11", "status_confirmed.soap11", seeds=CONFIRMED),
    Case("status_unknown.soap12", "status_unknown.soap12"),
    Case(
        "status_cancelled.soap11",
        "status_confirmed.soap11",
        seeds=(*CONFIRMED, "cancel.soap12"),
    ),
    Case("cancel.soap12", "cancel.soap12", seeds=CONFIRMED),
    Case("already_paid.soap11", "fault_already_paid.soap11", 500, seeds=CONFIRMED),
    Case("wrong_password.soap12", "fault_wrong_password.soap12", 400),
    Case("missing_amount.soap11", "fault_missing_amount.soap11", 500),
    Case("bad_body_wrong_password.soap11", "fault_bad_body_wrong_password.soap11", 500),
    Case(
        "clock_skew.soap12",
        "inquire_s40.soap12",
        400,
        fail_with=ClockSkew(
            "Created is 3600 s behind the gateway's clock; at most 300 s either way is"
            " allowed: set the terminal's clock.",
            gatewayTime=datetime(2024, 6, 10, 2, 30, tzinfo=UTC),
            allowedSkewS=300,
            skewS=-3600,
        ),
    ),
    Case("unknown_operation.soap12", "fault_unknown_operation.soap12", 400),
    Case("transaction_not_found.soap12", "cancel.soap12", 400),
    Case(
        "version_mismatch.soap12",
        "fault_version_mismatch.soap12",
        500,
        content_type=CONTENT_TYPES["soap11"],
    ),
    Case("must_understand.soap12", "fault_must_understand.soap12", 500),
    Case("not_soap.soap11", "inquire_s39.soap11", 415, content_type="application/json"),
    Case("internal.soap11", "inquire_s39.soap11", 500, fail_with=RuntimeError("disk on fire")),
    Case("overloaded.soap12", "inquire_s40.soap12", 500, fail_with=Overloaded()),
]


async def _post(
    client: httpx.AsyncClient, request: str, content_type: str | None
) -> httpx.Response:
    content_type = content_type or CONTENT_TYPES[request.rsplit(".", 1)[1]]
    return await client.post(
        "/soap/v1",
        content=(GOLDEN / "requests" / f"{request}.xml").read_bytes(),
        headers={"content-type": content_type, "x-request-id": "golden-1"},
    )


def _answer_payload(xml: bytes) -> ET.Element:
    """The response element, or for a fault its GatewayFault."""
    root = ET.fromstring(xml)
    fault = root.find(f".//{{{SSO}}}GatewayFault")
    if fault is not None:
        return fault
    body = root[-1]
    assert body.tag.endswith("}Body") and len(body) == 1
    return body[0]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_golden(case: Case, schema: xmlschema.XMLSchema) -> None:
    fake = FakeCounter()
    app = FastAPI()
    app.include_router(soap_router(counter=fake))
    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        for seed in case.seeds:
            assert (await _post(client, seed, None)).status_code == 200
        fake.fail_with = case.fail_with
        response = await _post(client, case.request, case.content_type)
    assert response.status_code == case.status, response.text
    answer = GOLDEN / case.answer
    if UPDATE:
        answer.write_bytes(pretty(response.content))
    assert canonical(response.content) == canonical(answer.read_bytes())
    schema.validate(_answer_payload(response.content))


def test_every_golden_file_is_used() -> None:
    used = {f"requests/{c.request}.xml" for c in CASES} | {c.answer for c in CASES}
    used |= {f"requests/{seed}.xml" for c in CASES for seed in c.seeds}
    on_disk = {str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*.xml")}
    assert on_disk == used
