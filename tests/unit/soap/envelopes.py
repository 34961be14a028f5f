"""Request envelopes for the SOAP adapter's tests, how they are posted, and readers for what
comes back."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx

from tests.unit.soap.fake_counter import PASSWORD, S39_ID, USERNAME, digest

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SSO = "urn:sso:contribution:v1"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
CT11 = "text/xml; charset=utf-8"
CT12 = "application/soap+xml; charset=utf-8"
NONCE = "MTIzNDU2Nzg5MDEyMzQ1Ng=="
CREATED = "2024-06-10T02:30:00Z"


async def post(
    client: httpx.AsyncClient, body: bytes, content_type: str | None = CT11, **headers: str
) -> httpx.Response:
    """``body`` posted to the SOAP endpoint as ``content_type`` (None: no Content-Type)."""
    if content_type is not None:
        headers["content-type"] = content_type
    return await client.post("/soap/v1", content=body, headers=headers)


def text_token(username: str = USERNAME, password: str = PASSWORD) -> str:
    return (
        f'<wsse:Security xmlns:wsse="{WSSE}"><wsse:UsernameToken>'
        f"<wsse:Username>{username}</wsse:Username>"
        f'<wsse:Password Type="{PROFILE}#PasswordText">{password}</wsse:Password>'
        "</wsse:UsernameToken></wsse:Security>"
    )


def digest_token(password: str = PASSWORD, nonce: str = NONCE, created: str = CREATED) -> str:
    return (
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f"<wsse:Username>{USERNAME}</wsse:Username>"
        f'<wsse:Password Type="{PROFILE}#PasswordDigest">'
        f"{digest(nonce, created, password)}</wsse:Password>"
        f"<wsse:Nonce>{nonce}</wsse:Nonce><wsu:Created>{created}</wsu:Created>"
        "</wsse:UsernameToken></wsse:Security>"
    )


def envelope(body: str, *, version: str = "1.1", header: str | None = None) -> bytes:
    """A request envelope; the header defaults to a valid PasswordText token."""
    ns = SOAP11 if version == "1.1" else SOAP12
    header = text_token() if header is None else header
    return (
        f'<?xml version="1.0" encoding="utf-8"?><e:Envelope xmlns:e="{ns}">'
        f"<e:Header>{header}</e:Header><e:Body>{body}</e:Body></e:Envelope>"
    ).encode()


def operation(name: str, fields: str) -> str:
    return f'<c:{name} xmlns:c="{SSO}">{fields}</c:{name}>'


def inquire(national_id: str = S39_ID, extra: str = "") -> str:
    return operation("InquireContribution", f"<c:nationalId>{national_id}</c:nationalId>{extra}")


def confirm_fields(**overrides: str | None) -> str:
    """The fields of a valid ConfirmPayment for the S39 person; None leaves one out."""
    fields: dict[str, str | None] = {
        "partnerTxnId": "POS-0001",
        "nationalId": S39_ID,
        "section": "39",
        "months": "<c:month>2024-04</c:month>",
        "amount": "432.00",
        "additionalSavings": None,
        "storeId": "S-0042",
        "terminalId": "T-07",
        "shift": "2",
        "operatorId": "OP-9",
        "businessDate": "2024-06-10",
        "paidAt": "2024-06-10T09:30:00",
    }
    fields.update(overrides)
    return "".join(f"<c:{k}>{v}</c:{k}>" for k, v in fields.items() if v is not None)


def confirm(**overrides: str | None) -> str:
    return operation("ConfirmPayment", confirm_fields(**overrides))


def parse(body: bytes) -> ET.Element:
    return ET.fromstring(body)


def fault_code(body: bytes) -> str:
    """The stable code in a fault's GatewayFault detail."""
    code = parse(body).find(f".//{{{SSO}}}GatewayFault/{{{SSO}}}code")
    assert code is not None and code.text, body
    return code.text


def fault_entries(body: bytes) -> dict[str, str]:
    entries = parse(body).iterfind(f".//{{{SSO}}}GatewayFault/{{{SSO}}}entry")
    return {e.findtext(f"{{{SSO}}}key", ""): e.findtext(f"{{{SSO}}}value", "") for e in entries}


def soap_fault_code(body: bytes) -> str:
    """faultcode (SOAP 1.1) or Code/Value (SOAP 1.2), as written."""
    root = parse(body)
    code = root.findtext(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault/faultcode")
    if code is None:
        code = root.findtext(
            f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault/{{{SOAP12}}}Code/{{{SOAP12}}}Value"
        )
    assert code is not None, body
    return code


def payload(body: bytes) -> ET.Element:
    """The one element of a response's Body."""
    root = parse(body)
    ns = root.tag[1:].split("}")[0]
    body_element = root.find(f"{{{ns}}}Body")
    assert body_element is not None and len(body_element) == 1
    return body_element[0]


def result_of(body: bytes) -> ET.Element:
    """The ``result`` a response element holds: its one child, where its fields are."""
    response = payload(body)
    assert [child.tag for child in response] == [f"{{{SSO}}}result"], response
    return response[0]
