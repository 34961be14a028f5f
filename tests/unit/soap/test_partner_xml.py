"""Requests real SOAP toolkits may legally send, unusual ones, and a few hostile ones, driven
through the real router over a fake service: each is read as sent, or refused with a client
fault that names the problem, and none is answered as a server error.

The first group were defects when found (2026-12-06): a server fault, a value misread, a
namespace taken for another. The second pins refusals that are strict but clear (a form the
XSD allows that the gateway does not take). The third pins what toolkits were seen to send.

Note: the fake service echoes the request's businessDate into its ConfirmResult, so a confirm
without businessDate fails inside the *fake* (server.internal): every confirm below keeps one.
"""

from __future__ import annotations

import gzip

import httpx
import pytest

from app.counter.records import ConfirmRequest
from app.soap.media_type import read_media_type
from app.soap.xml_reader import BodyGuard, XmlLimits
from tests.unit.soap.envelopes import (
    CREATED,
    CT11,
    CT12,
    NONCE,
    PROFILE,
    SOAP11,
    SOAP12,
    SSO,
    WSSE,
    WSU,
    confirm,
    confirm_fields,
    envelope,
    fault_code,
    inquire,
    operation,
    post,
    result_of,
    soap_fault_code,
    text_token,
)
from tests.unit.soap.fake_counter import PASSWORD, S39_ID, USERNAME, FakeCounter, digest

XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
WSA = "http://www.w3.org/2005/08/addressing"
BASE64 = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
INQUIRY_ACTION = "urn:sso:contribution:v1/InquireContribution"


def _doc(
    body: str,
    *,
    header: str | None = None,
    ns: str = SOAP11,
    decl: str = '<?xml version="1.0" encoding="utf-8"?>',
) -> str:
    header = text_token() if header is None else header
    return (
        f'{decl}<e:Envelope xmlns:e="{ns}"><e:Header>{header}</e:Header>'
        f"<e:Body>{body}</e:Body></e:Envelope>"
    )


def _not_a_server_error(response: httpx.Response) -> None:
    assert b"server.internal" not in response.content, response.text
    if response.status_code != 200:
        assert soap_fault_code(response.content) not in ("soap:Server", "env:Receiver")


def _confirmed(fake: FakeCounter) -> ConfirmRequest:
    [(name, _caller, _credentials, request)] = fake.calls
    assert name == "confirm", fake.calls
    return request


# ============================================================ ONCE DEFECTS, NOW HELD


@pytest.mark.parametrize("field", ["amount", "additionalSavings"])
async def test_an_amount_with_4300_trailing_zeros_is_that_amount(
    client: httpx.AsyncClient, fake: FakeCounter, field: str
) -> None:
    # Schema-valid xs:decimal (fractionDigits constrains the value, 432 has none): ~4.3 KB.
    value = "432." + "0" * 4300
    overrides = {field: value} if field == "amount" else {field: value, "amount": "864.00"}
    response = await post(client, envelope(confirm(**overrides)))
    assert response.status_code == 200, response.text  # trailing zeros: the amount as written
    confirmed = _confirmed(fake)
    assert (confirmed.amount_satang, confirmed.savings_satang) == (
        (43_200, 0) if field == "amount" else (86_400, 43_200)
    )


async def test_a_long_amount_without_credentials_is_refused_as_unauthenticated(
    client: httpx.AsyncClient,
) -> None:
    body = envelope(confirm(amount="1." + "0" * 4300), header="")
    response = await post(client, body)
    assert fault_code(response.content) == "client.unauthenticated"


@pytest.mark.parametrize("space", ["\u00a0", "\u3000", "\u2003", "\u0085"])
async def test_a_non_xml_space_at_the_end_of_a_string_is_kept(
    client: httpx.AsyncClient, fake: FakeCounter, space: str
) -> None:
    sent = f"POS-0001{space}"
    response = await post(client, envelope(confirm(partnerTxnId=sent)))
    assert response.status_code == 200, response.text
    assert _confirmed(fake).partner_txn_id == sent


async def test_two_ids_differing_by_a_no_break_space_are_two_transactions(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    first = await post(client, envelope(confirm(partnerTxnId="POS-1")))
    assert first.status_code == 200
    second = await post(client, envelope(confirm(partnerTxnId="POS-1\u00a0")))
    # The fake refuses a second payment of the same month; any answer but a replay will do.
    assert b"<sso:replayed>true</sso:replayed>" not in second.content, second.text


async def test_a_national_id_with_a_no_break_space_is_not_taken_as_valid(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    response = await post(client, envelope(inquire(national_id=S39_ID + "\u00a0")))
    assert response.status_code != 200
    if fake.calls:  # refused by the service: it must at least see what was sent
        assert fake.calls[0][3] != S39_ID


@pytest.mark.parametrize("alias", ["op", "envelope", "security"])
async def test_a_namespace_named_like_a_fixed_prefix_is_not_that_namespace(
    client: httpx.AsyncClient, fake: FakeCounter, alias: str
) -> None:
    if alias == "op":
        body = envelope(inquire()).replace(SSO.encode(), b"sso")
    elif alias == "envelope":
        body = envelope(inquire()).replace(SOAP11.encode(), b"s11")
    else:
        body = envelope(inquire()).replace(WSSE.encode(), b"wsse")
    response = await post(client, body)
    if alias == "security":  # a header in another namespace: no credentials at all
        assert fault_code(response.content) == "client.unauthenticated"
    else:
        assert response.status_code != 200, "a request outside the contract was performed"


async def test_a_carriage_return_in_an_echoed_value_round_trips(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    response = await post(client, envelope(confirm(partnerTxnId="POS&#13;1")))
    assert _confirmed(fake).partner_txn_id == "POS\r1"
    assert result_of(response.content).findtext(f"{{{SSO}}}partnerTxnId") == "POS\r1"


async def test_a_nul_in_the_charset_is_a_415_not_a_crash(client: httpx.AsyncClient) -> None:
    response = await post(client, envelope(inquire()), "text/xml; charset=utf-8\x00")
    assert response.status_code == 415


async def test_a_non_ascii_digit_content_length_is_not_a_crash(app) -> None:  # type: ignore[no-untyped-def]
    body = envelope(inquire())
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/soap/v1", "raw_path": b"/soap/v1", "query_string": b"",
        "root_path": "", "client": ("203.0.113.7", 1), "server": ("gateway.test", 80),
        "headers": [(b"host", b"gateway.test"), (b"content-type", CT11.encode()),
                    (b"content-length", b"\xb2")],
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    # A length that is not a number declares nothing: the body is read as it comes.
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200]


# ============================================ STRICT BUT CLEAR: REFUSED AS THE CLIENT'S


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("additionalSavings", "-0.00"),  # xs:decimal -0.00 == 0 (minInclusive 0): zeep Decimal
        ("section", "00000000039"),  # xs:int allows any number of leading zeros
        ("paidAt", "2024-06-10T24:00:00"),  # XSD 1.0 end-of-day form
    ],
)
async def test_debatable_schema_valid_forms_refused_with_a_clear_client_fault(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    overrides = {field: value}
    response = await post(client, envelope(confirm(**overrides)))
    assert fault_code(response.content) in ("client.invalid_amount", "client.invalid_input")


async def test_debatable_bomless_big_endian_utf16_labelled_utf16_is_refused(
    client: httpx.AsyncClient,
) -> None:
    # RFC 2781 4.3: UTF-16 without a BOM SHOULD be read big-endian; Python's codec reads it
    # little-endian (by platform) and the body is refused as not valid utf-16.
    body = _doc(confirm()).encode("utf-16-be")
    response = await post(client, body, "text/xml; charset=utf-16")
    assert fault_code(response.content) == "client.invalid_envelope"


async def test_debatable_wsa_action_with_must_understand_is_a_must_understand_fault(
    client: httpx.AsyncClient,
) -> None:
    # WCF Soap12WSAddressing10 bindings mark wsa:Action/To mustUnderstand; the WSDL declares
    # no WS-Addressing, so a MustUnderstand fault is what SOAP 1.2 asks for.
    header = (
        f'<wsa:Action xmlns:wsa="{WSA}" xmlns:e="{SOAP12}" e:mustUnderstand="1">'
        f"{INQUIRY_ACTION}</wsa:Action>" + text_token()
    )
    response = await post(client, envelope(inquire(), header=header, version="1.2"), CT12)
    assert response.status_code == 500
    assert soap_fault_code(response.content) == "env:MustUnderstand"


async def test_debatable_gzip_request_body_is_refused_as_not_utf8(
    client: httpx.AsyncClient,
) -> None:
    # Content-Encoding is ignored: a gzip body (CXF GZIPFeature, forced) is refused as bytes
    # that are not UTF-8 rather than with a 415 naming the coding.
    response = await post(
        client, gzip.compress(envelope(inquire())), CT11, **{"content-encoding": "gzip"}
    )
    assert fault_code(response.content) == "client.invalid_envelope"


# ======================================================== WHAT TOOLKITS SEND, READ RIGHT


def _sec(inner: str, attributes: str = "") -> str:
    namespaces = f'xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"'
    return f"<wsse:Security {namespaces}{attributes}>{inner}</wsse:Security>"


_DIGEST = digest(NONCE, CREATED, PASSWORD)
_UT_DIGEST = (
    f'<wsse:UsernameToken wsu:Id="UsernameToken-1"><wsse:Username>{USERNAME}</wsse:Username>'
    f'<wsse:Password Type="{PROFILE}#PasswordDigest">{_DIGEST}</wsse:Password>'
    f'<wsse:Nonce EncodingType="{BASE64}">{NONCE}</wsse:Nonce>'
    f"<wsu:Created>{CREATED}</wsu:Created></wsse:UsernameToken>"
)
_TIMESTAMP = (
    '<wsu:Timestamp wsu:Id="TS-1"><wsu:Created>2024-06-10T02:30:00Z</wsu:Created>'
    "<wsu:Expires>2024-06-10T02:35:00Z</wsu:Expires></wsu:Timestamp>"
)
_PLAIN_FIELDS = confirm_fields().replace("<c:", "<").replace("</c:", "</")

ACCEPTED: dict[str, tuple[bytes, str]] = {
    "default namespace on the operation (.NET asmx)": (
        envelope(f'<ConfirmPayment xmlns="{SSO}">{_PLAIN_FIELDS}</ConfirmPayment>'),
        CT11,
    ),
    "default namespace on the envelope": (
        (
            f'<Envelope xmlns="{SOAP11}"><Header>{text_token()}</Header>'
            f"<Body>{confirm()}</Body></Envelope>"
        ).encode(),
        CT11,
    ),
    "a prefix redeclared for the operation": (
        (
            f'<c:Envelope xmlns:c="{SOAP11}"><c:Header>{text_token()}</c:Header><c:Body>'
            f'<c:ConfirmPayment xmlns:c="{SSO}">{confirm_fields()}</c:ConfirmPayment>'
            "</c:Body></c:Envelope>"
        ).encode(),
        CT11,
    ),
    "the namespace under two prefixes": (
        envelope(
            f'<a:ConfirmPayment xmlns:a="{SSO}" xmlns:c="{SSO}">{confirm_fields()}'
            "</a:ConfirmPayment>"
        ),
        CT11,
    ),
    "namespaces declared on the Envelope (PHP SoapClient, gSOAP)": (
        (
            f'<S:Envelope xmlns:S="{SOAP11}" xmlns:ns1="{SSO}" xmlns:xsi="{XSI}" xmlns:xsd="{XSD}">'
            f"<S:Header>{text_token()}</S:Header><S:Body><ns1:ConfirmPayment>"
            f"{confirm_fields().replace('c:', 'ns1:')}</ns1:ConfirmPayment></S:Body>"
            "</S:Envelope>"
        ).encode(),
        CT11,
    ),
    "xsi:type on fields": (
        envelope(
            f'<c:ConfirmPayment xmlns:c="{SSO}" xmlns:xsi="{XSI}" xmlns:xsd="{XSD}">'
            + confirm_fields()
            .replace("<c:amount>", '<c:amount xsi:type="xsd:decimal">')
            .replace("<c:partnerTxnId>", '<c:partnerTxnId xsi:type="xsd:string">')
            + "</c:ConfirmPayment>"
        ),
        CT11,
    ),
    "xsi:nil on optional fields": (
        envelope(
            f'<c:ConfirmPayment xmlns:c="{SSO}" xmlns:xsi="{XSI}">'
            + confirm_fields(storeId=None)
            + '<c:storeId xsi:nil="true"/><c:additionalSavings xsi:nil="1"/>'
            "</c:ConfirmPayment>"
        ),
        CT11,
    ),
    "xml:lang and xml:space": (
        envelope(
            confirm()
            .replace("<c:storeId>", '<c:storeId xml:lang="th">')
            .replace("<c:partnerTxnId>", '<c:partnerTxnId xml:space="preserve">')
        ),
        CT11,
    ),
    "foreign attributes on Envelope, Header, Body": (
        (
            f'<e:Envelope xmlns:e="{SOAP11}" xmlns:f="urn:f" f:a="1" '
            'e:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">'
            f'<e:Header f:b="2">{text_token()}</e:Header>'
            f'<e:Body f:c="3" xmlns:wsu="{WSU}" wsu:Id="Body-1">{confirm()}</e:Body>'
            "</e:Envelope>"
        ).encode(),
        CT11,
    ),
    "comments and whitespace everywhere": (
        (
            '<?xml version="1.0"?>\n<!-- a -->\n'
            f'<e:Envelope xmlns:e="{SOAP11}">\n <!-- b -->\n <e:Header>\n  {text_token()}\n'
            " </e:Header>\r\n\t<e:Body>\n"
            + confirm().replace("><", ">\n  <!-- c -->\n  <")
            + "\n</e:Body>\n</e:Envelope>\n<!-- d -->\n"
        ).encode(),
        CT11,
    ),
    "CDATA, character references, a comment inside a value": (
        envelope(
            confirm(
                partnerTxnId="<![CDATA[POS-<1>&]]>",
                storeId="&#x0E01;&#3585;",
                amount="43<!-- x -->2.00",
            )
        ),
        CT11,
    ),
    "fields in reverse order": (
        envelope(
            operation(
                "ConfirmPayment",
                "".join(
                    reversed(
                        [
                            f"<c:{k}>{v}</c:{k}>"
                            for k, v in {
                                "partnerTxnId": "POS-0001",
                                "nationalId": S39_ID,
                                "section": "39",
                                "months": "<c:month>2024-04</c:month>",
                                "amount": "432.00",
                                "businessDate": "2024-06-10",
                                "paidAt": "2024-06-10T09:30:00",
                            }.items()
                        ]
                    )
                ),
            )
        ),
        CT11,
    ),
    "foreign header blocks, mustUnderstand 0/false, another actor's mandatory one": (
        envelope(
            confirm(),
            header=text_token()
            + f'<x:A xmlns:x="urn:x" xmlns:e="{SOAP11}" e:mustUnderstand="0">1</x:A>'
            + f'<x:B xmlns:x="urn:x" xmlns:e="{SOAP11}" e:mustUnderstand="false"><x:c/></x:B>'
            + f'<x:C xmlns:x="urn:x" xmlns:e="{SOAP11}" e:mustUnderstand="1" '
            'e:actor="urn:someone-else"/>',
        ),
        CT11,
    ),
    "WS-Addressing headers without mustUnderstand (Metro, CXF)": (
        envelope(
            confirm(),
            header=f'<wsa:Action xmlns:wsa="{WSA}">urn:sso:contribution:v1/'
            f'ConfirmPayment</wsa:Action><wsa:MessageID xmlns:wsa="{WSA}">urn:uuid:1'
            f'</wsa:MessageID><wsa:ReplyTo xmlns:wsa="{WSA}"><wsa:Address>'
            f"{WSA}/anonymous</wsa:Address></wsa:ReplyTo>" + text_token(),
        ),
        CT11,
    ),
    "Timestamp beside a digest token, Security mustUnderstand (WSS4J, node-soap)": (
        envelope(
            inquire(),
            header=_sec(_TIMESTAMP + _UT_DIGEST, f' xmlns:e="{SOAP11}" e:mustUnderstand="1"'),
        ),
        CT11,
    ),
    "Nonce without EncodingType": (
        envelope(inquire(), header=_sec(_UT_DIGEST.replace(f' EncodingType="{BASE64}"', ""))),
        CT11,
    ),
    "Password without Type": (
        envelope(
            inquire(),
            header=_sec(
                f"<wsse:UsernameToken><wsse:Username>{USERNAME}</wsse:Username>"
                f"<wsse:Password>{PASSWORD}</wsse:Password></wsse:UsernameToken>"
            ),
        ),
        CT11,
    ),
    "a pretty-printed digest token": (
        envelope(
            inquire(),
            header=_sec(_UT_DIGEST.replace("><", ">\n    <").replace(_DIGEST, f"\n {_DIGEST}\n")),
        ),
        CT11,
    ),
    "WCF basicHttpBinding TransportWithMessageCredential": (
        (
            f'<s:Envelope xmlns:s="{SOAP11}" xmlns:u="{WSU}"><s:Header>'
            f'<o:Security s:mustUnderstand="1" xmlns:o="{WSSE}"><u:Timestamp u:Id="_0">'
            "<u:Created>2024-06-10T02:30:00.123Z</u:Created><u:Expires>2024-06-10T02:35:00.123Z"
            '</u:Expires></u:Timestamp><o:UsernameToken u:Id="uuid-1-1">'
            f"<o:Username>{USERNAME}</o:Username><o:Password "
            f'Type="{PROFILE}#PasswordText">{PASSWORD}</o:Password></o:UsernameToken>'
            f'</o:Security></s:Header><s:Body xmlns:xsi="{XSI}" xmlns:xsd="{XSD}">'
            f'<InquireContribution xmlns="{SSO}"><nationalId>{S39_ID}</nationalId>'
            "</InquireContribution></s:Body></s:Envelope>"
        ).encode(),
        CT11,
    ),
    "SOAP 1.2 Security mustUnderstand=true, role ultimateReceiver": (
        envelope(
            inquire(),
            version="1.2",
            header=_sec(
                _UT_DIGEST,
                f' xmlns:e="{SOAP12}" e:mustUnderstand="true" '
                'e:role="http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"',
            ),
        ),
        f'{CT12}; action="{INQUIRY_ACTION}"',
    ),
    "UTF-16 with BOM, charset utf-16": (
        _doc(confirm(storeId="ร้าน"), decl='<?xml version="1.0" encoding="UTF-16"?>').encode(
            "utf-16"
        ),
        "text/xml; charset=utf-16",
    ),
    "UTF-16 with BOM, no charset": (
        _doc(confirm(storeId="ร้าน"), decl='<?xml version="1.0" encoding="UTF-16"?>').encode(
            "utf-16"
        ),
        "text/xml",
    ),
    "UTF-16LE with BOM, charset utf-16le": (
        b"\xff\xfe" + _doc(confirm(storeId="ร้าน")).encode("utf-16-le"),
        "text/xml; charset=utf-16le",
    ),
    "UTF-8 BOM, charset utf-8": (b"\xef\xbb\xbf" + _doc(confirm(storeId="ร้าน")).encode(), CT11),
    "UTF-8 BOM, no charset": (b"\xef\xbb\xbf" + _doc(confirm(storeId="ร้าน")).encode(), "text/xml"),
    "charset in odd case and quotes": (
        _doc(confirm(storeId="ร้าน")).encode(),
        'Text/XML ; Charset = "Utf-8" ',
    ),
    "windows-874 declared, no charset": (
        _doc(confirm(storeId="ร้าน"), decl='<?xml version="1.0" encoding="windows-874"?>').encode(
            "cp874"
        ),
        "text/xml",
    ),
    "XML 1.1 declaration": (
        _doc(confirm(), decl='<?xml version="1.1" encoding="UTF-8"?>').encode(),
        CT11,
    ),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
async def test_legal_toolkit_requests_are_performed(
    client: httpx.AsyncClient, fake: FakeCounter, case: str
) -> None:
    body, content_type = ACCEPTED[case]
    response = await post(client, body, content_type)
    assert response.status_code == 200, response.text
    assert fake.calls and fake.calls[0][0] in ("confirm", "inquire")


async def test_utf16_and_windows_874_values_are_read_exactly(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    for body, content_type in (
        (_doc(confirm(partnerTxnId="T1", storeId="ร้าน-๑", terminalId="\U0001f600"))
         .encode("utf-16"), "text/xml; charset=utf-16"),
        (_doc(confirm(partnerTxnId="T2", storeId="ร้าน-๑", months="<c:month>2024-05</c:month>"),
              decl='<?xml version="1.0" encoding="windows-874"?>').encode("cp874"), "text/xml"),
    ):  # fmt: skip
        response = await post(client, body, content_type)
        assert response.status_code == 200, response.text
    stores = [request.counter.store_id for _n, _c, _cr, request in fake.calls]
    assert stores == ["ร้าน-๑", "ร้าน-๑"]
    assert fake.calls[0][3].counter.terminal_id == "\U0001f600"


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        ("amount", "432", 43_200),
        ("amount", "432.0", 43_200),
        ("amount", " 432.00 ", 43_200),
        ("amount", "432.", 43_200),
        ("amount", "+0432.000", 43_200),
        ("paidAt", "2024-06-10T09:30:00+07:00", "2024-06-10T09:30:00+07:00"),
        ("paidAt", "2024-06-10T02:30:00Z", "2024-06-10T02:30:00+00:00"),
        ("paidAt", "\n\t2024-06-10T09:30:00.1234567+07:00\n", "2024-06-10T09:30:00.123456+07:00"),
        ("section", " +039 ", 39),
    ],
)
async def test_values_are_read_as_sent(
    client: httpx.AsyncClient, fake: FakeCounter, field: str, text: str, expected: object
) -> None:
    response = await post(client, envelope(confirm(**{field: text})))
    assert response.status_code == 200, response.text
    request = _confirmed(fake)
    value = {
        "amount": request.amount_satang,
        "paidAt": request.paid_at.isoformat(),
        "section": request.section,
    }[field]
    assert value == expected


HOSTILE: dict[str, tuple[bytes, str]] = {
    "DOCTYPE": (b"<!DOCTYPE e:Envelope>" + envelope(inquire()).split(b"?>", 1)[1], CT11),
    "processing instruction": (
        envelope(inquire()).replace(b"?>", b'?><?xml-stylesheet href="a"?>', 1),
        CT11,
    ),
    "NUL character reference": (envelope(inquire(national_id="&#0;")), CT11),
    "surrogate character reference": (envelope(inquire(national_id="&#xD800;")), CT11),
    "xmlns:xml rebound": (
        envelope(inquire(), header=text_token() + '<x:B xmlns:x="urn:x" xmlns:xml="urn:y"/>'),
        CT11,
    ),
    "xmlns:xmlns declared": (
        envelope(inquire(), header=text_token() + '<x:B xmlns:x="urn:x" xmlns:xmlns="urn:y"/>'),
        CT11,
    ),
    "prefix undeclared (xmlns:p='')": (
        envelope(inquire(), header=text_token() + '<x:B xmlns:x="urn:x"><x:C xmlns:x=""/></x:B>'),
        CT11,
    ),
    "namespace URI with a space": (
        envelope(inquire(), header=text_token() + '<x:B xmlns:x="urn:a b"/>'),
        CT11,
    ),
    "duplicate attribute through two prefixes": (
        envelope(
            inquire(),
            header=text_token() + '<x:B xmlns:x="urn:x" xmlns:y="urn:x" x:a="1" y:a="2"/>',
        ),
        CT11,
    ),
    "namespace URI over 1024": (
        envelope(inquire(), header=text_token() + f'<x:B xmlns:x="urn:{"a" * 1100}"/>'),
        CT11,
    ),
    "nesting 40 deep": (
        envelope(inquire(), header=text_token() + '<x:d xmlns:x="urn:x">' * 40 + "</x:d>" * 40),
        CT11,
    ),
    "UTF-7 declared": (
        b'<?xml version="1.0" encoding="utf-7"?>' + envelope(inquire()).split(b"?>", 1)[1],
        "text/xml",
    ),
    "UTF-32 with BOM": (
        _doc(inquire(), decl='<?xml version="1.0" encoding="UTF-32"?>').encode("utf-32"),
        "text/xml",
    ),
    "invalid UTF-8": (envelope(inquire(national_id="QQQ")).replace(b"QQQ", b"\xff\xfe"), CT11),
    "empty body": (b"", CT11),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_xml_is_a_client_fault(client: httpx.AsyncClient, case: str) -> None:
    body, content_type = HOSTILE[case]
    response = await post(client, body, content_type)
    _not_a_server_error(response)
    assert fault_code(response.content).startswith("client."), response.text


async def test_huge_numbers_of_attributes_and_namespace_declarations_are_read(
    client: httpx.AsyncClient,
) -> None:
    declarations = "".join(f' xmlns:p{i}="urn:p{i}" p{i}:a="&lt;"' for i in range(1200))
    body = (
        f'<e:Envelope xmlns:e="{SOAP11}"{declarations}><e:Header>{text_token()}</e:Header>'
        f"<e:Body>{inquire()}</e:Body></e:Envelope>"
    ).encode()
    response = await post(client, body)
    assert response.status_code == 200, response.text
    unicode_names = '<ก:ข้อมูล xmlns:ก="urn:ไทย" ก:คุณสมบัติ="ค่า">ทดสอบ</ก:ข้อมูล>'
    response = await post(client, envelope(inquire(), header=text_token() + unicode_names))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("size", [1, 2, 3, 7])
async def test_a_body_streamed_in_tiny_chunks_reads_the_same(size: int) -> None:
    for data, charset in (
        (b"\xef\xbb\xbf" + _doc(confirm(storeId="ร้าน")).encode(), None),
        (_doc(confirm(storeId="ร้าน")).encode("utf-16"), "utf-16"),
        (_doc(confirm(storeId="ร้าน"), decl='<?xml version="1.0" encoding="windows-874"?>')
         .encode("cp874"), None),
    ):  # fmt: skip
        guard = BodyGuard(XmlLimits(), charset)
        for i in range(0, len(data), size):
            guard.feed(data[i : i + size])
        tree = guard.close().tree
        assert tree is not None
        body = tree["s11:Envelope"]["s11:Body"]  # type: ignore[index]
        assert body["sso:ConfirmPayment"]["sso:storeId"] == "ร้าน"


def test_charset_spellings() -> None:
    for charset in ("utf8", "'utf-8'", "UTF-16BE", "x-windows-874"):
        content_type = f"text/xml; charset={charset}"
        assert read_media_type(content_type).charset is not None
