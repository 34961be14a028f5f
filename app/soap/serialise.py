"""Service results and faults written as XML text, and the envelope around them: the one writer.

Each response is written straight from its result, in the order of its XSD sequence, with no
element tree in between (the inquiry, the call counters make most, is the largest answer: five
elements per payable month). A response element holds one ``result`` element, the return value
of wrapper-style toolkits (JAX-WS, .NET), whose children are the result's fields. An empty
nillable element is written ``xsi:nil="true"``; an optional one (``minOccurs="0"``) with no
value is left out; money is baht with 2 decimals; dateTimes carry their +07:00 offset; an
element with no content is ``<x/>``. Every string is made safe for XML 1.0 and escaped on the
way out (``escape_text``, ``quote_attribute``), so text from the store or a client can never
break the envelope; numbers, dates and booleans are formatted here and need no escaping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Final

from app.counter.records import (
    CancelResult,
    ConfirmResult,
    EndedMembership,
    InquiryResult,
    PayableMonth,
    StatusResult,
)
from app.soap.namespaces import CONTRIBUTION, XSI
from app.soap.versions import SoapVersion
from app.soap.xsd_values import format_baht, format_boolean, format_date, format_datetime

# Characters XML 1.0 cannot carry at all (C0 controls but tab, CR and LF; surrogates; FFFE/F).
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Anything escape_text() must change: a character XML cannot carry, or one it escapes.
_NOT_PLAIN: Final = re.compile("[&<>\r]|" + _NOT_XML.pattern)


def escape_text(value: str) -> str:
    """Character data: made XML-safe, then ``&``, ``>`` and ``<`` escaped (as saxutils), and
    a carriage return written as ``&#13;``: a parser reads a raw one as a line feed."""
    if _NOT_PLAIN.search(value) is None:
        return value
    value = _NOT_XML.sub("\ufffd", value)
    value = value.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
    return value.replace("\r", "&#13;")


def quote_attribute(value: str) -> str:
    """An attribute value, escaped and quoted as ``xml.sax.saxutils.quoteattr`` does it."""
    value = escape_text(value).replace("\n", "&#10;").replace("\t", "&#9;")  # CR: escape_text
    if '"' in value:
        if "'" in value:
            return '"' + value.replace('"', "&quot;") + '"'
        return "'" + value + "'"
    return '"' + value + '"'


def element(name: str, content: str = "", attributes: str = "") -> str:
    """Element ``name`` around ``content`` (XML text already written); ``<name/>`` when empty.

    ``attributes`` is written into the start tag as given (each with its leading space).
    """
    if content:
        return f"<{name}{attributes}>{content}</{name}>"
    return f"<{name}{attributes}/>"


def text_element(name: str, text: str, attributes: str = "") -> str:
    """Element ``name`` holding ``text``, escaped."""
    return element(name, escape_text(text), attributes)


def _sso(name: str, text: str) -> str:
    # The hot path's element (the inquiry writes dozens): text_element, inlined.
    return f"<sso:{name}>{escape_text(text)}</sso:{name}>" if text else f"<sso:{name}/>"


def _nil(name: str) -> str:
    return f'<sso:{name} xsi:nil="true"/>'


def _nillable(name: str, text: str | None) -> str:
    return _nil(name) if text is None else _sso(name, text)


def _optional(name: str, text: str | None) -> str:
    return "" if text is None else _sso(name, text)


def _optional_baht(name: str, satang: int | None) -> str:
    return "" if satang is None else f"<sso:{name}>{format_baht(satang)}</sso:{name}>"


def _response(name: str, *fields: str) -> str:
    """Response element ``name`` around its one ``result`` holding ``fields`` (XML text)."""
    return "".join((f"<sso:{name}><sso:result>", *fields, f"</sso:result></sso:{name}>"))


def _months(name: str, months: Iterable[str]) -> str:
    return element(f"sso:{name}", "".join([_sso("month", month) for month in months]))


@lru_cache(maxsize=4096)  # every inquiry offers the same dozen months at the same amounts
def _payable(month: PayableMonth) -> str:
    due = (
        '<sso:dueDate xsi:nil="true"/>'
        if month.due_date is None
        else f"<sso:dueDate>{format_date(month.due_date)}</sso:dueDate>"
    )
    return (
        f"<sso:payableMonth>{_sso('month', month.month)}"
        f"<sso:amount>{format_baht(month.amount_satang)}</sso:amount>{due}"
        f"<sso:overdue>{format_boolean(month.overdue)}</sso:overdue>"
        f"{_optional_baht('governmentShare', month.government_satang)}</sso:payableMonth>"
    )


def _ended(membership: EndedMembership) -> str:
    option = None if membership.option is None else str(membership.option)
    return (
        f"<sso:membership><sso:section>{membership.section}</sso:section>"
        f"<sso:coverageStart>{format_date(membership.coverage_start)}</sso:coverageStart>"
        f"{_sso('endedMonth', membership.ended_month)}"
        f"{_optional('endReason', membership.end_reason)}{_optional('option', option)}"
        "</sso:membership>"
    )


def _previous(memberships: tuple[EndedMembership, ...]) -> str:
    if not memberships:
        return ""
    return element("sso:previousMemberships", "".join([_ended(m) for m in memberships]))


def inquiry_response(result: InquiryResult) -> str:
    """The InquireContributionResponse element of ``result``, as XML text."""
    option = None if result.option is None else str(result.option)
    effective, last_paid = result.effective_date, result.last_payment_date
    return _response(
        "InquireContributionResponse",
        _sso("nationalId", result.national_id),
        _sso("title", result.title),
        _sso("firstName", result.first_name),
        _sso("familyName", result.family_name),
        f"<sso:section>{result.section}</sso:section>",
        _sso("status", result.status),
        _nillable("statusReason", result.status_reason),
        _nillable("endedMonth", result.ended_month),
        _nillable("option", option),
        _optional("effectiveDate", None if effective is None else format_date(effective)),
        _optional("returnCode", result.return_code),
        _optional("paymentPeriod", result.payment_period),
        _optional("paymentMethod", result.payment_method),
        _optional("lastPaymentDate", None if last_paid is None else format_date(last_paid)),
        _optional_baht("lastPaymentAmount", result.last_payment_satang),
        _optional_baht("amountDue", result.amount_due_satang),
        element("sso:payableMonths", "".join([_payable(m) for m in result.months])),
        _months("defaultMonths", result.default_months),
        f"<sso:defaultTotal>{format_baht(result.default_total_satang)}</sso:defaultTotal>",
        f"<sso:savingsAllowed>{format_boolean(result.savings_allowed)}</sso:savingsAllowed>",
        "<sso:maxSavingsPerMonth>"
        f"{format_baht(result.max_savings_per_month_satang)}</sso:maxSavingsPerMonth>",
        f"<sso:asOf>{format_datetime(result.as_of)}</sso:asOf>",
        _sso("servedBy", result.served_by.value),
        _optional("eligibility", result.eligibility),  # contract 1.1: appended, optional
        _previous(result.previous_memberships),
    )


def confirm_response(result: ConfirmResult) -> str:
    """The ConfirmPaymentResponse element of ``result``, as XML text."""
    return _response(
        "ConfirmPaymentResponse",
        _sso("partnerTxnId", result.partner_txn_id),
        _sso("receiptNo", result.receipt_no),
        _sso("nationalId", result.national_id),
        f"<sso:section>{result.section}</sso:section>",
        _months("months", result.months),
        f"<sso:amount>{format_baht(result.amount_satang)}</sso:amount>",
        f"<sso:additionalSavings>{format_baht(result.savings_satang)}</sso:additionalSavings>",
        f"<sso:postedAt>{format_datetime(result.posted_at)}</sso:postedAt>",
        f"<sso:businessDate>{format_date(result.business_date)}</sso:businessDate>",
        f"<sso:replayed>{format_boolean(result.replayed)}</sso:replayed>",
    )


def cancel_response(result: CancelResult) -> str:
    """The CancelPaymentResponse element of ``result``, as XML text."""
    return _response(
        "CancelPaymentResponse",
        _sso("partnerTxnId", result.partner_txn_id),
        _sso("receiptNo", result.receipt_no),
        _sso("state", result.state.value),
        f"<sso:cancelledAt>{format_datetime(result.cancelled_at)}</sso:cancelledAt>",
        f"<sso:amount>{format_baht(result.amount_satang)}</sso:amount>",
        _months("months", result.months),
    )


def status_response(result: StatusResult) -> str:
    """The GetPaymentStatusResponse element of ``result``, as XML text."""

    def baht(name: str, satang: int | None) -> str:
        return _nil(name) if satang is None else _sso(name, format_baht(satang))

    section = None if result.section is None else str(result.section)
    posted, cancelled, day = result.posted_at, result.cancelled_at, result.business_date
    return _response(
        "GetPaymentStatusResponse",
        _sso("partnerTxnId", result.partner_txn_id),
        _sso("state", result.state.value),
        _nillable("receiptNo", result.receipt_no),
        _nillable("nationalId", result.national_id),
        _nillable("section", section),
        _months("months", result.months),
        baht("amount", result.amount_satang),
        baht("additionalSavings", result.savings_satang),
        _nillable("postedAt", None if posted is None else format_datetime(posted)),
        _nillable("cancelledAt", None if cancelled is None else format_datetime(cancelled)),
        _nillable("businessDate", None if day is None else format_date(day)),
    )


@lru_cache(maxsize=len(SoapVersion))
def _envelope_parts(version: SoapVersion) -> tuple[str, str, str, str]:
    """The envelope's start tag (with the XML declaration), the Body's start and end tags,
    and the envelope's end tag: the same for every message of a version, so written once."""
    prefix = version.write_prefix
    start = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<{prefix}:Envelope xmlns:{prefix}={quote_attribute(version.envelope_namespace)}"
        f" xmlns:sso={quote_attribute(CONTRIBUTION)} xmlns:xsi={quote_attribute(XSI)}>"
    )
    return start, f"<{prefix}:Body>", f"</{prefix}:Body>", f"</{prefix}:Envelope>"


def write_envelope(version: SoapVersion, body: str, *, header: str | None = None) -> bytes:
    """A whole SOAP message of ``version`` around ``body`` (and ``header``, XML text), as UTF-8."""
    start, body_start, body_end, end = _envelope_parts(version)
    if header is not None:
        start += element(f"{version.write_prefix}:Header", header)
    if not body:
        return (start + element(f"{version.write_prefix}:Body") + end).encode("utf-8")
    return (start + body_start + body + body_end + end).encode("utf-8")
