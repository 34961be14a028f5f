"""Service results written as the contract's response elements, and envelopes around them.

Elements come out in the order of their XSD sequence (dicts keep insertion order); an empty
nillable element is written ``xsi:nil="true"``; money is baht with 2 decimals; dateTimes carry
their +07:00 offset. Every string is made safe for XML 1.0 on the way out, so text from the
store can never break the envelope.

The tree is written by a small emitter of its own (``_emit``), byte for byte as
``xmltodict.unparse(..., short_empty_elements=True)`` writes it (attributes ``@name``, text
``#text``, a list repeats its element, an empty list writes nothing, an empty element is
``<x/>``): the same bytes for a fraction of the time, since the envelope is written for every
call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Final, TypeAlias

from app.counter.records import (
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


class _Nil(dict[str, Node]):
    """An empty nillable element: ``{"@xsi:nil": "true"}``, which ``_emit`` writes at once."""


def _nil() -> Element:
    return _Nil({"@xsi:nil": "true"})


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


_NIL_ATTRIBUTES: Final = {"@xsi:nil": "true"}

# Anything escape_text() must change: a character XML cannot carry, or one it escapes.
_NOT_PLAIN: Final = re.compile("[&<>]|" + _NOT_XML.pattern)


def escape_text(value: str) -> str:
    """Character data: made XML-safe, then ``&``, ``>`` and ``<`` escaped (as saxutils)."""
    if _NOT_PLAIN.search(value) is None:
        return value
    value = _NOT_XML.sub("\ufffd", value)
    return value.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")


def _attribute(value: str) -> str:
    """An attribute value, quoted as ``xml.sax.saxutils.quoteattr`` quotes it."""
    value = escape_text(value).replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    if '"' in value:
        if "'" in value:
            return '"' + value.replace('"', "&quot;") + '"'
        return "'" + value + "'"
    return '"' + value + '"'


_FORBIDDEN_IN_NAMES: Final = re.compile(r"[<>/\"'=\s]")


@lru_cache(maxsize=1024)  # names come from this package: a few dozen, checked once each
def _check_name(name: str) -> str:
    if name.startswith(("?", "!")) or _FORBIDDEN_IN_NAMES.search(name) is not None:
        raise ValueError(f"Invalid XML name: {name!r}")
    return name


def _emit(name: str, node: Node, out: list[str]) -> None:
    """Append element ``name`` holding ``node`` (a list: one element per item) to ``out``."""
    if isinstance(node, list):
        for item in node:
            # As xmltodict: a list directly inside a list is written as its text.
            _emit(name, str(xml_safe(item)) if isinstance(item, list) else item, out)
        return
    _check_name(name)
    if node is None:
        out.append(f"<{name}/>")
        return
    if isinstance(node, str):
        out.append(f"<{name}>{escape_text(node)}</{name}>" if node else f"<{name}/>")
        return
    head = "<" + name
    text: str | None = None
    body: list[str] = []  # the children, in order (attributes all go into the start tag)
    for key, value in node.items():
        if key == "#text":
            text = value if isinstance(value, str) else None
        elif key.startswith("@"):
            head += f" {_check_name(key[1:])}={_attribute(value if isinstance(value, str) else '')}"
        elif isinstance(value, str):  # the common child: text only, written here
            _check_name(key)
            body.append(f"<{key}>{escape_text(value)}</{key}>" if value else f"<{key}/>")
        elif type(value) is _Nil and value == _NIL_ATTRIBUTES:  # the next most common
            body.append(f'<{_check_name(key)} xsi:nil="true"/>')
        elif not (isinstance(value, list) and not value):
            _emit(key, value, body)
    if not body and not text:
        out.append(head + "/>")
        return
    out.append(head + ">")
    out.extend(body)
    if text:
        out.append(escape_text(text))
    out.append(f"</{name}>")


def element_xml(element: Element) -> str:
    """``element`` (one name and its content) as XML text, as ``write_envelope`` writes it."""
    out: list[str] = []
    for name, node in element.items():
        _emit(name, node, out)
    return "".join(out)


@lru_cache(maxsize=len(SoapVersion))
def _envelope_ends(version: SoapVersion) -> tuple[str, str]:
    start = write_envelope(version, {"sso:x": ""}).decode("utf-8")
    opening, _, closing = start.partition("<sso:x/>")
    return opening, closing


def envelope_around(version: SoapVersion, body_xml: str) -> bytes:
    """A whole SOAP message of ``version`` with ``body_xml`` (written already) as its Body."""
    opening, closing = _envelope_ends(version)
    return (opening + body_xml + closing).encode("utf-8")


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
    out = ['<?xml version="1.0" encoding="utf-8"?>\n']
    _emit(f"{prefix}:Envelope", envelope, out)
    return "".join(out).encode("utf-8")
