"""Every ``ServiceError`` rendered as a SOAP fault, with the stable code in its detail.

SOAP 1.1: ``faultcode`` (unqualified) ``soap:Client`` or ``soap:Server``, ``faultstring`` (in
English) and a ``detail``; always HTTP 500 (WS-I BP R1126). SOAP 1.2: ``env:Sender`` (HTTP 400)
or ``env:Receiver`` (HTTP 500) with the code also as a Subcode, the Reason in English and in Thai
(``env:Text xml:lang="en"`` and ``xml:lang="th"``) and ``Detail``. In both the detail is a
``sso:GatewayFault`` (contribution.xsd): the code, the English message, the code's Thai message
(``messageTh``, for the person at the counter), retryable, the request id and the details,
then, when the refusal turns on a date, what it is about in Thai with Buddhist-era dates
(``detailTh``; the Thai Reason of a SOAP 1.2 fault carries it too, in brackets).
Transport problems keep their own status (413, 415, 405); a fault body still says what went wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Final

from app.error_catalogue import thai_detail, thai_message
from app.errors import ServiceError
from app.soap.namespaces import SOAP11_ENVELOPE
from app.soap.refusals import EnvelopeRefused, FaultKind
from app.soap.serialise import element, quote_attribute, text_element, write_envelope
from app.soap.versions import SoapVersion
from app.soap.xsd_values import format_boolean, format_date, format_datetime

_NCNAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_SOAP11_CODES: Final = {
    FaultKind.SENDER: "Client",
    FaultKind.RECEIVER: "Server",
    FaultKind.VERSION_MISMATCH: "VersionMismatch",
    FaultKind.MUST_UNDERSTAND: "MustUnderstand",
}


@dataclass(frozen=True, slots=True)
class FaultResponse:
    """A fault ready to send: the envelope, the HTTP status and the Content-Type."""

    body: bytes
    status_code: int
    content_type: str


def _detail_value(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return format_boolean(value)
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def gateway_fault(error: ServiceError, *, request_id: str) -> str:
    """The sso:GatewayFault detail element of an error, as XML text."""
    detail_th = thai_detail(error)
    entries = "".join(
        element(
            "sso:entry",
            text_element("sso:key", str(key)) + text_element("sso:value", _detail_value(value)),
        )
        for key, value in error.details.items()
    )
    return element(
        "sso:GatewayFault",
        text_element("sso:code", error.code)
        + text_element("sso:message", error.message)
        + text_element("sso:messageTh", thai_message(error))
        + text_element("sso:retryable", format_boolean(error.retryable))
        + text_element("sso:requestId", request_id)
        + entries
        + ("" if detail_th is None else text_element("sso:detailTh", detail_th)),
    )


def _soap11(error: ServiceError, kind: FaultKind, request_id: str) -> str:
    return element(
        "soap:Fault",
        text_element("faultcode", f"soap:{_SOAP11_CODES[kind]}")
        + text_element("faultstring", error.message)
        + element("detail", gateway_fault(error, request_id=request_id)),
    )


def _thai_reason(error: ServiceError) -> str:
    detail = thai_detail(error)
    return thai_message(error) if detail is None else f"{thai_message(error)} ({detail})"


def _soap12(error: ServiceError, kind: FaultKind, request_id: str) -> str:
    code = text_element("env:Value", f"env:{kind.value}")
    if kind in (FaultKind.SENDER, FaultKind.RECEIVER) and _NCNAME.fullmatch(error.code):
        code += element("env:Subcode", text_element("env:Value", f"sso:{error.code}"))
    return element(
        "env:Fault",
        element("env:Code", code)
        + element(
            "env:Reason",
            text_element("env:Text", error.message, ' xml:lang="en"')
            + text_element("env:Text", _thai_reason(error), ' xml:lang="th"'),
        )
        + element("env:Detail", gateway_fault(error, request_id=request_id)),
    )


def _soap12_header(kind: FaultKind, not_understood: tuple[tuple[str, str], ...]) -> str | None:
    if kind is FaultKind.VERSION_MISMATCH:
        soap11 = f" xmlns:soap11={quote_attribute(SOAP11_ENVELOPE)}"
        return element(
            "env:Upgrade",
            element("env:SupportedEnvelope", attributes=' qname="env:Envelope"')
            + element("env:SupportedEnvelope", attributes=f' qname="soap11:Envelope"{soap11}'),
        )
    if kind is FaultKind.MUST_UNDERSTAND and not_understood:
        return "".join(
            element(
                "env:NotUnderstood",
                attributes=(
                    f" qname={quote_attribute(f'h{i}:{local}')}"
                    f" xmlns:h{i}={quote_attribute(namespace)}"
                    if namespace
                    else f" qname={quote_attribute(local)}"
                ),
            )
            for i, (namespace, local) in enumerate(not_understood)
        )
    return None


def render_fault(
    error: ServiceError,
    *,
    version: SoapVersion,
    request_id: str,
    kind: FaultKind | None = None,
    http_status: int | None = None,
    not_understood: tuple[tuple[str, str], ...] = (),
) -> FaultResponse:
    """The fault of ``error`` in ``version``."""
    kind = kind or FaultKind.of(error)
    if version is SoapVersion.V11:
        body = write_envelope(version, _soap11(error, kind, request_id))
        status = 500
    else:
        header = _soap12_header(kind, not_understood)
        body = write_envelope(version, _soap12(error, kind, request_id), header=header)
        status = 400 if kind is FaultKind.SENDER else 500
    return FaultResponse(body, http_status or status, version.content_type)


def render_refusal(
    refused: EnvelopeRefused, *, version: SoapVersion, request_id: str
) -> FaultResponse:
    """The fault of a refusal the SOAP layer decided, in its own version if it names one."""
    return render_fault(
        refused.error,
        version=refused.version or version,
        request_id=request_id,
        kind=refused.kind,
        http_status=refused.http_status,
        not_understood=refused.not_understood,
    )
