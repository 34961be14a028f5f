"""Every field of the source system in the counter inquiry, over SOAP and REST alike: each
section's own fields for a person of that section only, and what is not known left out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
import zeep
import zeep.transports
from zeep.wsse.username import UsernameToken

from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.people import SourceFields, add_person
from tests.support.rest_api import bearer, replicas

pytestmark = pytest.mark.db
SSO = "urn:sso:contribution:v1"

# What the source system gives, for both sections alike: each section must show only its own.
SOURCE = SourceFields(
    return_code="07",
    period_of_payment="monthly",
    payment_method="counter",
    last_paid_on=date(2024, 5, 20),
    last_paid_satang=10_000,
)
S39_ONLY = {"effectiveDate", "returnCode"}
S40_ONLY = {"paymentMethod", "lastPaymentDate", "lastPaymentAmount", "amountDue"}


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=live_url, headers=bearer(client_token), timeout=30
    ) as client:
        yield client


def soap_result(live_url: str, partner: PartnerCredentials, nid: str) -> ET.Element:
    """The ``result`` of a SOAP 1.1 inquiry by zeep, as sent (so absent and nil differ)."""
    transport = zeep.transports.Transport(timeout=10, operation_timeout=10)
    try:
        client = zeep.Client(
            f"{live_url}/soap/v1?wsdl",
            transport=transport,
            wsse=UsernameToken(partner.username, partner.password, use_digest=True),
        )
        service = client.bind("ContributionService", "ContributionSoap11")
        with client.settings(raw_response=True):
            response = service.InquireContribution(nationalId=nid)
    finally:
        transport.session.close()
    assert response.status_code == 200, response.text
    result = ET.fromstring(response.content).find(
        f".//{{{SSO}}}InquireContributionResponse/{{{SSO}}}result"
    )
    assert result is not None, response.text
    return result


def fields(result: ET.Element) -> dict[str, str]:
    return {child.tag.split("}")[1]: child.text or "" for child in result}


def government_shares(result: ET.Element) -> list[str | None]:
    months = result.iterfind(f"{{{SSO}}}payableMonths/{{{SSO}}}payableMonth")
    return [m.findtext(f"{{{SSO}}}governmentShare") for m in months]


async def test_a_section_39_inquiry_carries_every_section_39_field(
    gateway: Gateway,
    api: httpx.AsyncClient,
    live_url: str,
    partner: PartnerCredentials,
    clock: PinnedClock,
) -> None:
    current = clock.month()
    effective = current.first_day.replace(day=2)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn,
            section=39,
            coverage_start=current,
            effective_date=effective,
            title="นาย",
            first_name="สมปอง",
            last_name="มั่นคง",
            source=SOURCE,
            replicas=replicas(gateway),
        )

    soap = soap_result(live_url, partner, nid)
    sent = fields(soap)
    assert {k: sent[k] for k in ("title", "firstName", "familyName", "section", "status")} == {
        "title": "นาย",
        "firstName": "สมปอง",
        "familyName": "มั่นคง",
        "section": "39",
        "status": "active",
    }
    assert (sent["effectiveDate"], sent["returnCode"], sent["paymentPeriod"]) == (
        effective.isoformat(),
        "07",
        "monthly",
    )
    assert not S40_ONLY & set(sent), sent  # the source's Section 40 fields stay out
    assert government_shares(soap) == [None]  # the S39 share is not known: absent, not 0.00

    response = await api.get(f"/api/v1/insured/{nid}/contributions")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert {k: body[k] for k in ("title", "firstName", "familyName", "section", "status")} == {
        "title": "นาย",
        "firstName": "สมปอง",
        "familyName": "มั่นคง",
        "section": 39,
        "status": "active",
    }
    assert (body["effectiveDate"], body["returnCode"], body["paymentPeriod"]) == (
        effective.isoformat(),
        "07",
        "monthly",
    )
    assert not S40_ONLY & set(body) and "lastName" not in body, body
    assert [m["month"] for m in body["months"]] == [str(current)]
    assert ["governmentAmount" in m for m in body["months"]] == [False]


async def test_a_section_40_inquiry_carries_every_section_40_field(
    gateway: Gateway,
    api: httpx.AsyncClient,
    live_url: str,
    partner: PartnerCredentials,
    clock: PinnedClock,
) -> None:
    current = clock.month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn,
            section=40,
            option=2,
            coverage_start=current.minus(12),
            source=SourceFields(
                return_code="07",
                period_of_payment="202405",
                payment_method="counter",
                last_paid_on=date(2024, 5, 20),
                last_paid_satang=10_000,
            ),
            replicas=replicas(gateway),
        )

    soap = soap_result(live_url, partner, nid)
    sent = fields(soap)
    # The monthly amount due is the rate of the current month at the option held.
    current_amount = soap.findtext(f"{{{SSO}}}payableMonths/{{{SSO}}}payableMonth/{{{SSO}}}amount")
    assert soap.findtext(f"{{{SSO}}}payableMonths/{{{SSO}}}payableMonth/{{{SSO}}}month") == str(
        current
    )
    assert {k: sent[k] for k in ("familyName", "section", "status", "option")} == {
        "familyName": "ใจดี",
        "section": "40",
        "status": "active",
        "option": "2",
    }
    assert {k: sent[k] for k in ("paymentMethod", "lastPaymentDate", "paymentPeriod")} == {
        "paymentMethod": "counter",
        "lastPaymentDate": "2024-05-20",
        "paymentPeriod": "202405",
    }
    assert (sent["lastPaymentAmount"], sent["amountDue"]) == ("100.00", current_amount)
    assert not S39_ONLY & set(sent), sent  # the source's Section 39 fields stay out
    shares = government_shares(soap)
    assert shares and None not in shares

    response = await api.get(f"/api/v1/insured/{nid}/contributions")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert (body["familyName"], body["section"], body["status"], body["option"]) == (
        "ใจดี",
        40,
        "active",
        2,
    )
    assert {k: body[k] for k in ("paymentMethod", "lastPaymentDate", "paymentPeriod")} == {
        "paymentMethod": "counter",
        "lastPaymentDate": "2024-05-20",
        "paymentPeriod": "202405",
    }
    assert (body["lastPaymentAmount"], body["amountDue"]) == ("100.00", current_amount)
    assert body["months"][0]["month"] == str(current)
    assert body["months"][0]["amount"] == current_amount
    assert not S39_ONLY & set(body), body
    assert [m["governmentAmount"] for m in body["months"]] == shares


async def test_unknown_source_fields_are_left_out_not_empty(
    gateway: Gateway,
    api: httpx.AsyncClient,
    live_url: str,
    partner: PartnerCredentials,
    clock: PinnedClock,
) -> None:
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=40, option=1, coverage_start=clock.month(), replicas=replicas(gateway)
        )
    sent = fields(soap_result(live_url, partner, nid))
    body = (await api.get(f"/api/v1/insured/{nid}/contributions")).json()
    for answer in (sent, body):
        absent = {"paymentPeriod", "paymentMethod", "lastPaymentDate", "lastPaymentAmount"}
        assert not (absent | S39_ONLY) & set(answer), answer
        assert "amountDue" in answer  # from the rate table: known for every Section 40 person
