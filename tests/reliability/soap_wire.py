"""Raw SOAP on the wire, the way a partner's counter system sends it: envelopes with a real
WS-Security PasswordDigest token, and a strict reader of whatever comes back."""

from __future__ import annotations

import base64
import os
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from xml.sax.saxutils import escape

import httpx

from app.admission.credential_vault import password_digest
from tests.unit.soap.envelopes import (
    CT11,
    CT12,
    PROFILE,
    SOAP11,
    SOAP12,
    SSO,
    WSSE,
    WSU,
    envelope,
    operation,
)

BASE64 = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
CONTENT_TYPES = {"1.1": CT11, "1.2": CT12}
SOAP_MEDIA = ("text/xml", "application/soap+xml")
CLIENT_FAULTS = {
    "soap:Client",
    "env:Sender",
    "soap:VersionMismatch",
    "env:VersionMismatch",
    "soap:MustUnderstand",
    "env:MustUnderstand",
}


@dataclass(frozen=True)
class Partner:
    """A registered partner's credentials."""

    name: str
    username: str
    password: str


def created_now(skew: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + skew).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def security(
    username: str,
    password: str,
    *,
    nonce: bytes | None = None,
    created: str | None = None,
) -> str:
    """A wsse:Security header block with a PasswordDigest UsernameToken (fresh nonce, now)."""
    nonce = nonce if nonce is not None else os.urandom(16)
    created = created or created_now()
    digest = password_digest(nonce=nonce, created=created, password=password)
    return (
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f"<wsse:Username>{escape(username)}</wsse:Username>"
        f'<wsse:Password Type="{PROFILE}#PasswordDigest">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{BASE64}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f"<wsu:Created>{created}</wsu:Created>"
        "</wsse:UsernameToken></wsse:Security>"
    )


def _fields(**values: str | None) -> str:
    return "".join(f"<c:{k}>{v}</c:{k}>" for k, v in values.items() if v is not None)


def inquire_body(national_id: str, *, section: int | None = None) -> str:
    return operation(
        "InquireContribution",
        _fields(nationalId=escape(national_id), section=None if section is None else str(section)),
    )


def confirm_body(
    *,
    txn: str,
    national_id: str,
    section: int,
    months: list[str],
    amount: str,
    business_date: date,
    paid_at: datetime,
) -> str:
    month_list = "".join(f"<c:month>{m}</c:month>" for m in months)
    return operation(
        "ConfirmPayment",
        _fields(
            partnerTxnId=escape(txn),
            nationalId=escape(national_id),
            section=str(section),
            months=month_list,
            amount=amount,
            storeId="S-REL",
            terminalId="T-1",
            shift="1",
            operatorId="op-rel",
            businessDate=business_date.isoformat(),
            paidAt=paid_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
    )


def status_body(txn: str) -> str:
    return operation("GetPaymentStatus", _fields(partnerTxnId=escape(txn)))


def cancel_body(txn: str, reason: str = "customer asked") -> str:
    return operation("CancelPayment", _fields(partnerTxnId=escape(txn), reason=escape(reason)))


def signed(partner: Partner, body: str, *, version: str = "1.1") -> bytes:
    """``body`` in an envelope of ``version`` carrying ``partner``'s fresh digest token."""
    return envelope(body, version=version, header=security(partner.username, partner.password))


def new_request_id() -> str:
    return f"rel-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class SoapAnswer:
    """A gateway answer read strictly: a well-formed SOAP envelope, a response or a fault."""

    status: int
    version: str
    element: str  # local name of the Body's element: "...Response" or "Fault"
    fault: str | None = None  # faultcode (1.1) or Code/Value (1.2) as written
    code: str = "ok"  # the GatewayFault code, "ok" for a response
    retryable: bool | None = None
    reason: str | None = None  # the GatewayFault entry "reason", when there is one
    fields: dict[str, str] = field(default_factory=dict)  # response children by local name
    request_id: str = ""

    @property
    def ok(self) -> bool:
        return self.fault is None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def read_answer(response: httpx.Response) -> SoapAnswer:
    """Read a /soap/v1 answer; AssertionError if it is anything but a well-formed SOAP message."""
    media = response.headers.get("content-type", "")
    assert media.startswith(SOAP_MEDIA), (response.status_code, media, response.text[:300])
    assert b"<html" not in response.content.lower(), response.text[:300]
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError as exc:
        raise AssertionError(f"not well-formed XML: {exc}: {response.text[:300]}") from exc
    assert root.tag in (f"{{{SOAP11}}}Envelope", f"{{{SOAP12}}}Envelope"), root.tag
    ns = SOAP11 if root.tag.startswith(f"{{{SOAP11}}}") else SOAP12
    version = "1.1" if ns == SOAP11 else "1.2"
    body = root.find(f"{{{ns}}}Body")
    assert body is not None and len(body) == 1, response.text[:300]
    element = body[0]
    request_id = response.headers.get("x-request-id", "")
    if element.tag != f"{{{ns}}}Fault":
        assert response.status_code == 200, (response.status_code, response.text[:300])
        # A response element holds one result; its children are the answer's fields.
        result = element.find(f"{{{SSO}}}result")
        assert result is not None and len(element) == 1, response.text[:300]
        fields = {_local(child.tag): (child.text or "") for child in result}
        return SoapAnswer(
            response.status_code,
            version,
            _local(element.tag),
            fields=fields,
            request_id=request_id,
        )
    if ns == SOAP11:
        fault = element.findtext("faultcode")
    else:
        fault = element.findtext(f"{{{SOAP12}}}Code/{{{SOAP12}}}Value")
    detail = element.find(f".//{{{SSO}}}GatewayFault")
    assert fault and detail is not None, response.text[:500]
    entries = {
        e.findtext(f"{{{SSO}}}key", ""): e.findtext(f"{{{SSO}}}value", "")
        for e in detail.iterfind(f"{{{SSO}}}entry")
    }
    detail_id = detail.findtext(f"{{{SSO}}}requestId", "")
    assert not request_id or detail_id == request_id, (detail_id, request_id)
    return SoapAnswer(
        status=response.status_code,
        version=version,
        element="Fault",
        fault=fault.strip(),
        code=detail.findtext(f"{{{SSO}}}code", ""),
        retryable=detail.findtext(f"{{{SSO}}}retryable") == "true",
        reason=entries.get("reason"),
        request_id=request_id or detail_id,
    )


def describe(answer: SoapAnswer) -> str:
    """A short account of an answer, for the run summary."""
    if answer.ok:
        return f"{answer.status} {answer.element}"
    reason = f" ({answer.reason})" if answer.reason else ""
    return f"{answer.status} {answer.fault} {answer.code}{reason}"
