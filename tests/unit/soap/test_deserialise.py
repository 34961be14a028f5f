"""Request elements read into service models, with schema violations refused."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from app.counter.records import CancelRequest, ConfirmRequest, CounterInfo, InquiryRequest
from app.errors import InvalidAmount, InvalidInput
from app.soap.deserialise import read_cancel, read_confirm, read_inquiry, read_status
from app.soap.envelope import parse_envelope
from app.soap.versions import SoapVersion
from app.soap.xml_reader import Document
from tests.unit.soap.envelopes import confirm, envelope, inquire, operation
from tests.unit.soap.fake_counter import S39_ID


def _payload(body: str) -> object:
    parsed = parse_envelope(Document(envelope(body), None), expected=SoapVersion.V11)
    return parsed.payload


def _refusal(body: str) -> dict[str, object]:
    with pytest.raises(InvalidInput) as refused:
        read_confirm(_payload(body))
    return refused.value.details


def test_a_whole_confirm() -> None:
    body = confirm(
        additionalSavings="20.00",
        months="<c:month>2024-04</c:month><c:month>2024-05</c:month>",
        amount="884.00",
    )
    assert read_confirm(_payload(body)) == ConfirmRequest(
        partner_txn_id="POS-0001",
        national_id=S39_ID,
        section=39,
        months=("2024-04", "2024-05"),
        amount_satang=88_400,
        savings_satang=2_000,
        business_date=date(2024, 6, 10),
        paid_at=datetime(2024, 6, 10, 9, 30, tzinfo=timezone(timedelta(hours=7))),
        counter=CounterInfo(store_id="S-0042", terminal_id="T-07", shift="2", operator_id="OP-9"),
    )


def test_optional_elements_may_be_left_out_or_nil() -> None:
    nil = '<c:operatorId xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/>'
    body = confirm(storeId=None, terminalId=None, shift=None, operatorId=None)
    request = read_confirm(
        _payload(body.replace("</c:ConfirmPayment>", nil + "</c:ConfirmPayment>"))
    )
    assert request.counter == CounterInfo()
    assert request.savings_satang == 0


def test_element_order_is_not_enforced() -> None:
    fields = "<c:section>40</c:section><c:nationalId>1</c:nationalId>"
    request, _ = read_inquiry(_payload(operation("InquireContribution", fields)))
    assert request == InquiryRequest("1", 40)


def test_inquiry_cancel_and_status_with_their_counter_fields() -> None:
    counter = "<c:storeId>S</c:storeId><c:terminalId>T</c:terminalId><c:operatorId>O</c:operatorId>"
    assert read_inquiry(_payload(inquire(extra=counter))) == (
        InquiryRequest(S39_ID),
        CounterInfo(store_id="S", terminal_id="T", operator_id="O"),
    )
    cancel = operation("CancelPayment", "<c:partnerTxnId>P</c:partnerTxnId><c:reason>R</c:reason>")
    assert read_cancel(_payload(cancel)) == (CancelRequest("P", "R"), CounterInfo())
    status = operation("GetPaymentStatus", f"<c:partnerTxnId>P</c:partnerTxnId>{counter}")
    assert read_status(_payload(status))[0] == "P"


@pytest.mark.parametrize(
    ("overrides", "element", "problem"),
    [
        ({"amount": None}, "amount", "missing"),
        ({"months": None}, "months", "missing"),
        ({"partnerTxnId": ""}, "partnerTxnId", "length"),
        ({"partnerTxnId": "x" * 65}, "partnerTxnId", "length"),
        ({"storeId": "s" * 65}, "storeId", "length"),
        ({"section": "41"}, "section", "invalid"),
        ({"section": "thirty-nine"}, "section", "invalid"),
        ({"businessDate": "10/06/2024"}, "businessDate", "invalid"),
        ({"paidAt": "yesterday"}, "paidAt", "invalid"),
        ({"paidAt": ""}, "paidAt", "invalid"),
        ({"months": "<c:month/>"}, "month", "invalid"),
        ({"months": "2024-04"}, "months", "text"),
        ({"months": "<c:notAMonth>1</c:notAMonth>"}, "notAMonth", "unexpected"),
        ({"nationalId": "<c:digits>1</c:digits>"}, "nationalId", "invalid"),
    ],
)
def test_schema_violations(overrides: dict[str, str | None], element: str, problem: str) -> None:
    assert _refusal(confirm(**overrides)) == {"element": element, "problem": problem}


def test_a_repeated_element_is_refused() -> None:
    body = confirm().replace("<c:amount>", "<c:amount>1.00</c:amount><c:amount>")
    assert _refusal(body) == {"element": "amount", "problem": "repeated"}


def test_an_unknown_or_unqualified_element_is_refused() -> None:
    body = confirm().replace("<c:amount>", "<c:tip>5.00</c:tip><c:amount>")
    assert _refusal(body) == {"element": "tip", "problem": "unexpected"}
    body = confirm().replace("<c:amount>432.00</c:amount>", '<amount xmlns="">432.00</amount>')
    assert _refusal(body) == {"element": "amount (in no namespace)", "problem": "unexpected"}
    body = confirm().replace("<c:amount>", '<o:amount xmlns:o="urn:other">')
    body = body.replace("</c:amount>", "</o:amount>")
    assert _refusal(body)["element"] == "{urn:other}amount"


def test_a_bad_amount_is_an_invalid_amount_naming_the_element() -> None:
    with pytest.raises(InvalidAmount) as refused:
        read_confirm(_payload(confirm(additionalSavings="0.001")))
    assert refused.value.details == {"element": "additionalSavings", "reason": "decimals"}


def test_text_directly_in_the_operation_element_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        read_inquiry(_payload(operation("InquireContribution", "hello")))
    assert refused.value.details["problem"] == "text"
