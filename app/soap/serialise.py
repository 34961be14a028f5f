"""Service results written as the contract's response elements, and envelopes around them.

Elements come out in the order of their XSD sequence (dicts keep insertion order); an empty
nillable element is written ``xsi:nil="true"``; money is baht with 2 decimals; dateTimes carry
their +07:00 offset. Every string is made safe for XML 1.0 on the way out, so text from the
store can never break the envelope.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, TypeAlias

import xmltodict

from app.service.models import (
    CancelResult,
    ConfirmResult,
    InquiryResult,
    PayableMonth,
    StatusResult,
)
from app.soap.namespaces import CONTRIBUTION, XSI
from app.soap.versions import SoapVersion
from app.soap.xsd_values import format_baht, format_boolean, format_date, format_datetime

Node: TypeAlias = "str | dict[str, Node] | list[Node]"
Element: TypeAlias = dict[str, Node]

# Characters XML 1.0 cannot carry at all (C0 controls but tab, CR and LF; surrogates; FFFE/F).
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _nil() -> Element:
    return {"@xsi:nil": "true"}


def _nillable(text: str | None) -> Node:
    return _nil() if text is None else text


def _months(months: Iterable[str]) -> Element:
    return {"sso:month": list(months)}


def _payable(month: PayableMonth) -> Element:
    return {
        "sso:month": month.month,
        "sso:amount": format_baht(month.amount_satang),
        "sso:dueDate": _nil() if month.due_date is None else format_date(month.due_date),
        "sso:overdue": format_boolean(month.overdue),
        "sso:governmentShare": format_baht(month.government_satang),
    }


def inquiry_response(result: InquiryResult) -> Element:
    """An InquireContributionResponse element."""
    return {
        "sso:InquireContributionResponse": {
            "sso:nationalId": result.national_id,
            "sso:title": result.title,
            "sso:firstName": result.first_name,
            "sso:lastName": result.last_name,
            "sso:section": str(result.section),
            "sso:status": result.status,
            "sso:statusReason": _nillable(result.status_reason),
            "sso:endedMonth": _nillable(result.ended_month),
            "sso:option": _nillable(None if result.option is None else str(result.option)),
            "sso:payableMonths": {"sso:payableMonth": [_payable(m) for m in result.months]},
            "sso:defaultMonths": _months(result.default_months),
            "sso:defaultTotal": format_baht(result.default_total_satang),
            "sso:savingsAllowed": format_boolean(result.savings_allowed),
            "sso:maxSavingsPerMonth": format_baht(result.max_savings_per_month_satang),
            "sso:asOf": format_datetime(result.as_of),
            "sso:servedBy": result.served_by.value,
        }
    }


def confirm_response(result: ConfirmResult) -> Element:
    """A ConfirmPaymentResponse element."""
    return {
        "sso:ConfirmPaymentResponse": {
            "sso:partnerTxnId": result.partner_txn_id,
            "sso:receiptNo": result.receipt_no,
            "sso:nationalId": result.national_id,
            "sso:section": str(result.section),
            "sso:months": _months(result.months),
            "sso:amount": format_baht(result.amount_satang),
            "sso:additionalSavings": format_baht(result.savings_satang),
            "sso:postedAt": format_datetime(result.posted_at),
            "sso:businessDate": format_date(result.business_date),
            "sso:replayed": format_boolean(result.replayed),
        }
    }


def cancel_response(result: CancelResult) -> Element:
    """A CancelPaymentResponse element."""
    return {
        "sso:CancelPaymentResponse": {
            "sso:partnerTxnId": result.partner_txn_id,
            "sso:receiptNo": result.receipt_no,
            "sso:state": result.state.value,
            "sso:cancelledAt": format_datetime(result.cancelled_at),
            "sso:amount": format_baht(result.amount_satang),
            "sso:months": _months(result.months),
        }
    }


def status_response(result: StatusResult) -> Element:
    """A GetPaymentStatusResponse element."""

    def baht(satang: int | None) -> Node:
        return _nil() if satang is None else format_baht(satang)

    return {
        "sso:GetPaymentStatusResponse": {
            "sso:partnerTxnId": result.partner_txn_id,
            "sso:state": result.state.value,
            "sso:receiptNo": _nillable(result.receipt_no),
            "sso:nationalId": _nillable(result.national_id),
            "sso:section": _nillable(None if result.section is None else str(result.section)),
            "sso:months": _months(result.months),
            "sso:amount": baht(result.amount_satang),
            "sso:additionalSavings": baht(result.savings_satang),
            "sso:postedAt": _nil()
            if result.posted_at is None
            else format_datetime(result.posted_at),
            "sso:cancelledAt": (
                _nil() if result.cancelled_at is None else format_datetime(result.cancelled_at)
            ),
            "sso:businessDate": (
                _nil() if result.business_date is None else format_date(result.business_date)
            ),
        }
    }


def xml_safe(node: Node) -> Node:
    """The same tree with every string stripped of characters XML 1.0 cannot carry."""
    if isinstance(node, str):
        return _NOT_XML.sub("\ufffd", node)
    if isinstance(node, list):
        return [xml_safe(item) for item in node]
    return {key: xml_safe(value) for key, value in node.items()}


def write_envelope(version: SoapVersion, body: Element, *, header: Element | None = None) -> bytes:
    """A whole SOAP message of ``version`` around ``body`` (and ``header``), as UTF-8."""
    prefix = version.write_prefix
    envelope: Element = {
        f"@xmlns:{prefix}": version.envelope_namespace,
        "@xmlns:sso": CONTRIBUTION,
        "@xmlns:xsi": XSI,
    }
    if header is not None:
        envelope[f"{prefix}:Header"] = header
    envelope[f"{prefix}:Body"] = body
    text: str = xmltodict.unparse(
        xml_safe({f"{prefix}:Envelope": envelope}), encoding="utf-8", short_empty_elements=True
    )
    return text.encode("utf-8")
