"""Results written as the contract's response elements: valid, ordered, nil where empty."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
import xmlschema

from app.counter.records import CancelResult, ConfirmResult, StatusResult, TxnState
from app.soap.serialise import (
    cancel_response,
    confirm_response,
    element,
    inquiry_response,
    status_response,
    text_element,
    write_envelope,
)
from app.soap.versions import SoapVersion
from tests.unit.soap.envelopes import SSO, parse, payload, result_of
from tests.unit.soap.fake_counter import ENDED_ID, NOW, S39_ID, S40_ID, person

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

CONFIRMED = ConfirmResult(
    "POS-1", "R00000001", S40_ID, 40, ("2024-06", "2024-07"), 22_000, 2_000, NOW, date(2024, 6, 10)
)
RESPONSES: dict[str, str] = {
    "inquiry s39": inquiry_response(person(S39_ID)),
    "inquiry s40": inquiry_response(person(S40_ID)),
    "inquiry ended": inquiry_response(person(ENDED_ID)),
    "confirm": confirm_response(CONFIRMED),
    "cancel": cancel_response(
        CancelResult("POS-1", "R00000001", TxnState.CANCELLED, NOW, 22_000, ("2024-06",))
    ),
    "status unknown": status_response(StatusResult("POS-2", TxnState.UNKNOWN)),
    "status cancelled": status_response(
        StatusResult(
            "POS-1",
            TxnState.CANCELLED,
            "R1",
            S40_ID,
            40,
            ("2024-06",),
            10_000,
            0,
            NOW,
            NOW,
            date(2024, 6, 10),
        )
    ),
}


@pytest.mark.parametrize("version", list(SoapVersion))
@pytest.mark.parametrize("name", list(RESPONSES))
def test_every_response_validates_against_the_xsd(
    name: str, version: SoapVersion, schema: xmlschema.XMLSchema
) -> None:
    # xs:sequence fixes the order, so validating checks the element order too.
    schema.validate(payload(write_envelope(version, RESPONSES[name])))


def test_empty_nillable_elements_are_xsi_nil() -> None:
    element = result_of(write_envelope(SoapVersion.V11, RESPONSES["status unknown"]))
    nil = {child.tag.split("}")[1] for child in element if child.get(XSI_NIL) == "true"}
    assert nil == {
        "receiptNo", "nationalId", "section", "amount", "additionalSavings", "postedAt",
        "cancelledAt", "businessDate",
    }  # fmt: skip
    months = element.find(f"{{{SSO}}}months")
    assert months is not None and len(months) == 0 and months.get(XSI_NIL) is None


def test_a_section_40_month_has_a_nil_due_date_and_money_in_baht() -> None:
    element = result_of(write_envelope(SoapVersion.V12, RESPONSES["inquiry s40"]))
    month = element.find(f"{{{SSO}}}payableMonths/{{{SSO}}}payableMonth")
    assert month is not None
    due = month.find(f"{{{SSO}}}dueDate")
    assert due is not None and due.get(XSI_NIL) == "true" and not due.text
    assert month.findtext(f"{{{SSO}}}amount") == "100.00"
    assert month.findtext(f"{{{SSO}}}governmentShare") == "50.00"
    assert element.findtext(f"{{{SSO}}}option") == "2"
    assert element.findtext(f"{{{SSO}}}maxSavingsPerMonth") == "1000.00"
    assert element.findtext(f"{{{SSO}}}lastPaymentAmount") == "100.00"
    assert element.findtext(f"{{{SSO}}}amountDue") == "100.00"


def test_what_is_not_known_or_of_the_other_section_is_left_out_not_zero() -> None:
    s39 = result_of(write_envelope(SoapVersion.V11, RESPONSES["inquiry s39"]))
    names = [child.tag.split("}")[1] for child in s39]
    assert names[9:12] == ["effectiveDate", "returnCode", "paymentPeriod"]
    assert not {"paymentMethod", "lastPaymentDate", "lastPaymentAmount", "amountDue"} & set(names)
    months = s39.findall(f"{{{SSO}}}payableMonths/{{{SSO}}}payableMonth")
    assert months and all(m.find(f"{{{SSO}}}governmentShare") is None for m in months)
    s40 = result_of(write_envelope(SoapVersion.V11, RESPONSES["inquiry s40"]))
    assert not {"effectiveDate", "returnCode"} & {child.tag.split("}")[1] for child in s40}


def test_datetimes_go_out_in_bangkok_time_with_the_offset() -> None:
    element = result_of(write_envelope(SoapVersion.V11, RESPONSES["confirm"]))
    assert element.findtext(f"{{{SSO}}}postedAt") == "2024-06-10T09:30:00+07:00"
    assert datetime(2024, 6, 10, 2, 30, tzinfo=UTC) == NOW


def test_text_xml_cannot_carry_is_replaced_not_sent() -> None:
    broken = inquiry_response(replace(person(S39_ID), first_name="A\x00B\x1bC"))
    element = result_of(write_envelope(SoapVersion.V11, broken))
    assert element.findtext(f"{{{SSO}}}firstName") == "A\ufffdB\ufffdC"


def test_markup_in_text_is_escaped() -> None:
    body = element("sso:GatewayFault", text_element("sso:message", "</sso:message><x/>&amp;"))
    root = parse(write_envelope(SoapVersion.V11, body))
    assert root.findtext(f".//{{{SSO}}}message") == "</sso:message><x/>&amp;"
