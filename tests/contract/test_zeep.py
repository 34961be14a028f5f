"""A real SOAP client that knows only the WSDL URL: zeep, sync and async, both SOAP versions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
import zeep
import zeep.exceptions
import zeep.transports
import zeep.xsd
from lxml import etree
from zeep.wsse.username import UsernameToken

from app.admission.credentials import PasswordType
from app.admission.credentials import UsernameToken as UsernameTokenCredentials
from app.counter.records import ConfirmRequest
from app.errors import Overloaded
from tests.contract.conftest import LiveServer
from tests.unit.soap.envelopes import SSO
from tests.unit.soap.fake_counter import PASSWORD, S39_ID, S40_ID, USERNAME

PORTS = ["ContributionSoap11", "ContributionSoap12"]
SERVICE = "ContributionService"


@contextmanager
def _service(live_server: LiveServer, port: str, password: str = PASSWORD) -> Iterator[Any]:
    transport = zeep.transports.Transport(timeout=10, operation_timeout=10)
    try:
        client = zeep.Client(
            live_server.wsdl_url,
            transport=transport,
            wsse=UsernameToken(USERNAME, password, use_digest=True),
        )
        yield client.bind(SERVICE, port)
    finally:
        transport.session.close()


def _gateway_code(fault: zeep.exceptions.Fault) -> str:
    assert fault.detail is not None
    code = fault.detail.find(f"{{{SSO}}}GatewayFault/{{{SSO}}}code")
    assert code is not None and code.text is not None, etree.tostring(fault.detail)
    return code.text


@pytest.mark.parametrize("port", PORTS)
def test_inquiry_confirm_status_cancel(live_server: LiveServer, port: str) -> None:
    with _service(live_server, port) as service:
        inquiry = service.InquireContribution(
            nationalId=S39_ID, terminalId="T-07", operatorId="OP-9"
        )
        # zeep unwraps the one result of the response: its fields are the answer's.
        assert (inquiry.firstName, inquiry.familyName) == ("สมชาย", "ใจดี")
        assert (inquiry.section, inquiry.option) == (39, None)
        assert (inquiry.effectiveDate, inquiry.returnCode, inquiry.paymentPeriod) == (
            date(2019, 3, 1),
            "00",
            "monthly",
        )
        assert (inquiry.paymentMethod, inquiry.amountDue) == (None, None)  # Section 40 only
        months = inquiry.payableMonths.payableMonth
        assert [m.amount for m in months] == [Decimal("432.00")] * 2
        assert [m.governmentShare for m in months] == [None, None]  # not known: absent
        assert inquiry.asOf == datetime.fromisoformat("2024-06-10T09:29:58.5+07:00")

        receipt = service.ConfirmPayment(
            partnerTxnId="POS-77",
            nationalId=S39_ID,
            section=39,
            months={"month": inquiry.defaultMonths.month},
            amount=inquiry.defaultTotal,
            storeId="S-0042",
            terminalId="T-07",
            shift="2",
            operatorId="OP-9",
            businessDate=date(2024, 6, 10),
            paidAt=datetime(2024, 6, 10, 9, 29, 41),
        )
        assert receipt.amount == Decimal("864.00") and receipt.replayed is False

        status = service.GetPaymentStatus(partnerTxnId="POS-77")
        assert status.state == "confirmed" and status.receiptNo == receipt.receiptNo
        assert status.cancelledAt is None

        cancelled = service.CancelPayment(partnerTxnId="POS-77", reason="wrong person")
        assert cancelled.state == "cancelled"
        assert service.GetPaymentStatus(partnerTxnId="POS-77").state == "cancelled"
        assert service.GetPaymentStatus(partnerTxnId="POS-78").state == "unknown"

    calls = live_server.fake.calls
    assert [name for name, *_ in calls] == [
        "inquire",
        "confirm",
        "status",
        "cancel",
        "status",
        "status",
    ]
    _, caller, token, request = calls[1]
    assert (caller.terminal, caller.operator, caller.source_ip) == ("T-07", "OP-9", "127.0.0.1")
    assert isinstance(token, UsernameTokenCredentials)
    assert token.password_type is PasswordType.DIGEST
    assert isinstance(request, ConfirmRequest)
    assert (request.amount_satang, request.months) == (86_400, ("2024-04", "2024-05"))
    assert request.paid_at == datetime.fromisoformat("2024-06-10T09:29:41+07:00")


@pytest.mark.parametrize("port", PORTS)
def test_faults_reach_zeep_with_the_code_in_the_detail(live_server: LiveServer, port: str) -> None:
    client_code, server_code = (
        ("soap:Client", "soap:Server") if port.endswith("11") else ("env:Sender", "env:Receiver")
    )
    confirm: dict[str, Any] = {
        "partnerTxnId": "POS-1",
        "nationalId": S40_ID,
        "section": 40,
        "months": {"month": ["2024-06"]},
        "amount": Decimal("100.00"),
        "businessDate": date(2024, 6, 10),
        "paidAt": datetime(2024, 6, 10, 9, 0),
    }
    with _service(live_server, port) as service:
        service.ConfirmPayment(**confirm)
        duplicate = {**confirm, "amount": Decimal("200.00")}
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("client.already_paid", "ConfirmPayment", {**confirm, "partnerTxnId": "POS-2"}),
            ("client.duplicate_transaction", "ConfirmPayment", duplicate),
            ("client.transaction_not_found", "CancelPayment", {"partnerTxnId": "?", "reason": "x"}),
            ("client.person_not_found", "InquireContribution", {"nationalId": "1" * 13}),
            ("client.invalid_input", "ConfirmPayment", {**confirm, "amount": zeep.xsd.SkipValue}),
        ]
        for expected, operation, arguments in cases:
            with pytest.raises(zeep.exceptions.Fault) as fault:
                getattr(service, operation)(**arguments)
            assert (_gateway_code(fault.value), fault.value.code) == (expected, client_code)

        live_server.fake.fail_with = Overloaded()
        with pytest.raises(zeep.exceptions.Fault) as fault:
            service.GetPaymentStatus(partnerTxnId="POS-1")
        assert (_gateway_code(fault.value), fault.value.code) == ("server.overloaded", server_code)

        live_server.fake.fail_with = RuntimeError("the disk is on fire")
        with pytest.raises(zeep.exceptions.Fault) as fault:
            service.GetPaymentStatus(partnerTxnId="POS-1")
        assert (_gateway_code(fault.value), fault.value.code) == ("server.internal", server_code)
        assert "fire" not in fault.value.message

    with _service(live_server, port, password="not-the-password") as service:
        with pytest.raises(zeep.exceptions.Fault) as fault:
            service.InquireContribution(nationalId=S39_ID)
        assert _gateway_code(fault.value) == "client.unauthenticated"


@pytest.mark.parametrize("port", PORTS)
async def test_async_zeep_calls_every_operation(live_server: LiveServer, port: str) -> None:
    transport = zeep.transports.AsyncTransport(timeout=10, operation_timeout=10)
    try:
        client = zeep.AsyncClient(
            live_server.wsdl_url,
            transport=transport,
            wsse=UsernameToken(USERNAME, PASSWORD, use_digest=True),
        )
        service = client.bind(SERVICE, port)
        inquiry = await service.InquireContribution(nationalId=S40_ID)
        assert inquiry.option == 2 and inquiry.savingsAllowed is True
        assert (inquiry.paymentMethod, inquiry.lastPaymentDate) == ("counter", date(2024, 5, 20))
        assert (inquiry.lastPaymentAmount, inquiry.amountDue) == (Decimal("100.00"),) * 2
        assert inquiry.payableMonths.payableMonth[0].governmentShare == Decimal("50.00")
        receipt = await service.ConfirmPayment(
            partnerTxnId="POS-A",
            nationalId=S40_ID,
            section=40,
            months={"month": ["2024-06", "2024-07"]},
            amount=Decimal("210.00"),
            additionalSavings=Decimal("10.00"),
            businessDate=date(2024, 6, 10),
            paidAt=datetime.fromisoformat("2024-06-10T02:00:00+00:00"),
        )
        assert receipt.additionalSavings == Decimal("10.00")
        assert (await service.GetPaymentStatus(partnerTxnId="POS-A")).state == "confirmed"
        assert (await service.CancelPayment(partnerTxnId="POS-A", reason="x")).state == "cancelled"
        again = await service.CancelPayment(partnerTxnId="POS-A", reason="again")
        assert again.state == "cancelled"  # a cancel is idempotent
        with pytest.raises(zeep.exceptions.Fault) as fault:  # a cancelled receipt is void
            await service.ConfirmPayment(
                partnerTxnId="POS-A",
                nationalId=S40_ID,
                section=40,
                months={"month": ["2024-06", "2024-07"]},
                amount=Decimal("210.00"),
                additionalSavings=Decimal("10.00"),
                businessDate=date(2024, 6, 10),
                paidAt=datetime.fromisoformat("2024-06-10T02:00:00+00:00"),
            )
        assert _gateway_code(fault.value) == "client.transaction_cancelled"
    finally:
        await transport.aclose()
        transport.wsdl_client.close()
