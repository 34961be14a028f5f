"""zeep, knowing only the WSDL URL and a partner's credentials, against the real gateway."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import time
from typing import Any

import httpx
import pytest
import zeep
import zeep.exceptions
import zeep.transports
from zeep.wsse.username import UsernameToken

from app.domain.money import to_satang
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.people import add_person, payment_business_day
from tests.support.rest_api import replicas
from tests.support.scenarios import SCENARIOS, Outcome, Scenario, arrange, check

pytestmark = pytest.mark.db
PORTS = ["ContributionSoap11", "ContributionSoap12"]
SSO = "urn:sso:contribution:v1"


@contextmanager
def soap_service(
    live_url: str, port: str, partner: PartnerCredentials, password: str | None = None
) -> Iterator[Any]:
    transport = zeep.transports.Transport(timeout=10, operation_timeout=10)
    try:
        client = zeep.Client(
            f"{live_url}/soap/v1?wsdl",
            transport=transport,
            wsse=UsernameToken(partner.username, password or partner.password, use_digest=True),
        )
        yield client.bind("ContributionService", port)
    finally:
        transport.session.close()


def fault_code(fault: zeep.exceptions.Fault) -> str:
    assert fault.detail is not None
    code = fault.detail.find(f"{{{SSO}}}GatewayFault/{{{SSO}}}code")
    assert code is not None and code.text
    return code.text


@pytest.mark.parametrize("port", PORTS)
async def test_inquiry_confirm_status_cancel_on_the_real_gateway(
    gateway: Gateway, live_url: str, partner: PartnerCredentials, port: str, clock: PinnedClock
) -> None:
    now = clock()
    current = clock.month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn,
            section=40,
            option=3,
            coverage_start=current.minus(5),
            replicas=replicas(gateway),
        )
    txn = f"POS-{uuid.uuid4().hex[:12]}"
    with soap_service(live_url, port, partner) as service:
        inquiry = service.InquireContribution(nationalId=nid, terminalId="T-1")
        assert inquiry.section == 40 and inquiry.option == 3
        assert list(inquiry.defaultMonths.month) == [str(current)]
        receipt = service.ConfirmPayment(
            partnerTxnId=txn,
            nationalId=nid,
            section=40,
            months={"month": list(inquiry.defaultMonths.month)},
            amount=inquiry.defaultTotal,
            storeId="S-1",
            terminalId="T-1",
            shift="1",
            operatorId="op",
            businessDate=clock.business_day(),
            paidAt=now,
        )
        assert receipt.receiptNo.startswith("R") and receipt.replayed is False
        status = service.GetPaymentStatus(partnerTxnId=txn)
        assert status.state == "confirmed" and status.receiptNo == receipt.receiptNo
        again = service.InquireContribution(nationalId=nid)
        assert str(current) not in list(again.defaultMonths.month)
        posted = await payment_business_day(gateway.db.primary, txn)
        with clock.at(time(10, 0), on=posted):  # before that day's settlement cut-off
            cancelled = service.CancelPayment(partnerTxnId=txn, reason="customer asked")
        assert cancelled.state == "cancelled"
        with pytest.raises(zeep.exceptions.Fault) as refused:
            service.ConfirmPayment(
                partnerTxnId=f"{txn}-x",
                nationalId=nid,
                section=40,
                months={"month": [str(current)]},
                amount="1.00",
                businessDate=clock.business_day(),
                paidAt=now,
            )
        assert fault_code(refused.value) == "client.amount_mismatch"


@pytest.mark.parametrize("port", PORTS)
def test_a_wrong_password_is_a_client_fault(
    live_url: str, partner: PartnerCredentials, port: str
) -> None:
    with (
        soap_service(live_url, port, partner, password="wrong") as service,
        pytest.raises(zeep.exceptions.Fault) as refused,
    ):
        service.InquireContribution(nationalId="3100600445635")
    assert fault_code(refused.value) == "client.unauthenticated"


def test_the_wsdl_names_this_instance(live_url: str) -> None:
    wsdl = httpx.get(f"{live_url}/soap/v1?wsdl").text
    assert f'location="{live_url}/soap/v1"' in wsdl


def soap_outcome(call: Any) -> Outcome:
    """A zeep answer (or Fault) in the scenarios' neutral terms."""
    try:
        answer = call()
    except zeep.exceptions.Fault as fault:
        return Outcome(fault_code(fault), {})
    if hasattr(answer, "defaultTotal"):  # an inquiry
        months = answer.payableMonths.payableMonth if answer.payableMonths else []
        return Outcome(
            "ok",
            {
                "section": answer.section,
                "status": answer.status,
                "option": answer.option,
                "months": [m.month for m in months],
                "default_months": list(answer.defaultMonths.month or [])
                if answer.defaultMonths
                else [],
                "default_total_satang": to_satang(answer.defaultTotal),
            },
        )
    return Outcome(
        "ok",
        {
            "section": answer.section,
            "months": list(answer.months.month),
            "amount_satang": to_satang(answer.amount),
        },
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_shared_counter_scenarios_over_soap(
    scenario: Scenario,
    gateway: Gateway,
    live_url: str,
    partner: PartnerCredentials,
    clock: PinnedClock,
) -> None:
    async with gateway.db.primary.acquire() as conn:
        arranged = await arrange(conn, scenario, replicas=replicas(gateway))
    now = clock()
    with soap_service(live_url, "ContributionSoap11", partner) as service:
        if scenario.operation == "inquire":
            extra = {"section": scenario.section} if scenario.section else {}
            result = soap_outcome(
                lambda: service.InquireContribution(nationalId=arranged.national_id, **extra)
            )
        else:
            amount = f"{scenario.amount_satang // 100}.{scenario.amount_satang % 100:02d}"
            result = soap_outcome(
                lambda: service.ConfirmPayment(
                    partnerTxnId=uuid.uuid4().hex[:20],
                    nationalId=arranged.national_id,
                    section=scenario.section or 40,
                    months={"month": list(arranged.months)},
                    amount=amount,
                    businessDate=clock.business_day(),
                    paidAt=now,
                )
            )
    check(arranged, result)
