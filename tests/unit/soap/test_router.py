"""The endpoint as a partner meets it: every answer a SOAP message, every failure a fault."""

from __future__ import annotations

import asyncio
import logging
import re

import httpx
import pytest
from fastapi import FastAPI

from app.admission.credentials import UsernameToken
from app.admission.records import Caller, Protocol
from app.counter.records import CancelRequest
from app.errors import Overloaded, RateLimited
from app.observability.call_context import BODY_WHOLE, begin_call
from app.soap import soap_router
from app.soap.contract import DEFAULT_CONTRACT_DIR
from tests.unit.soap.envelopes import (
    CT11,
    CT12,
    SSO,
    envelope,
    fault_code,
    inquire,
    operation,
    payload,
    post,
    soap_fault_code,
)
from tests.unit.soap.fake_counter import S39_ID, FakeCounter

COUNTER = "<c:terminalId>T-07</c:terminalId><c:operatorId>OP-9</c:operatorId>"


async def test_an_inquiry_reaches_the_service_with_the_caller_as_seen(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    response = await post(
        client,
        envelope(inquire(extra=COUNTER)),
        **{"x-request-id": "pos-42.abc", "x-forwarded-for": "198.51.100.1, 10.0.0.2"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.headers["x-request-id"] == "pos-42.abc"
    assert payload(response.content).tag == f"{{{SSO}}}InquireContributionResponse"
    [(name, caller, credentials, _)] = fake.calls
    assert name == "inquire"
    assert caller == Caller(
        protocol=Protocol.SOAP,
        source_ip="203.0.113.7",
        request_id="pos-42.abc",
        operator="OP-9",
        terminal="T-07",
        forwarded_for="198.51.100.1, 10.0.0.2",
    )
    assert isinstance(credentials, UsernameToken)


@pytest.mark.parametrize("given", ["", "has space", "x" * 129, "<script>", "ไทย"])
async def test_an_insane_request_id_is_replaced(
    client: httpx.AsyncClient, fake: FakeCounter, given: str
) -> None:
    headers = {"x-request-id": given} if given.isascii() else {}
    response = await post(client, envelope(inquire()), **headers)
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert fake.calls[0][1].request_id == request_id


async def test_a_request_id_of_128_characters_is_kept(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    given = "pos-42:" + "0123456789abcdef" * 7 + "." * 9  # 128 characters, the bound
    response = await post(client, envelope(inquire()), **{"x-request-id": given})
    assert response.headers["x-request-id"] == given
    assert fake.calls[0][1].request_id == given


INQUIRY_ACTION = "urn:sso:contribution:v1/InquireContribution"


@pytest.mark.parametrize("action", [None, "", '""', f'"{INQUIRY_ACTION}"', INQUIRY_ACTION])
async def test_a_soapaction_absent_empty_or_the_operations_own_is_accepted(
    client: httpx.AsyncClient, action: str | None
) -> None:
    headers = {} if action is None else {"soapaction": action}
    response = await post(client, envelope(inquire()), **headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "action",
    [
        '"urn:sso:contribution:v1/ConfirmPayment"',  # another operation: a filtering proxy
        '"urn:sso:contribution:v1/X"',  # let a ConfirmPayment through as an inquiry, say
        "InquireContribution",  # not the WSDL's soapAction
        "anything",
    ],
)
async def test_a_soapaction_naming_anything_else_is_refused_before_the_service(
    client: httpx.AsyncClient, fake: FakeCounter, action: str
) -> None:
    response = await post(client, envelope(inquire()), soapaction=action)
    assert response.status_code == 500  # SOAP 1.1: a Client fault, HTTP 500
    assert fault_code(response.content) == "client.invalid_envelope"
    assert soap_fault_code(response.content) == "soap:Client"
    assert INQUIRY_ACTION in response.text  # it says what to send
    assert fake.calls == [], "refused before anything reaches the service"


async def test_soap12_with_an_action_parameter(client: httpx.AsyncClient) -> None:
    content_type = f'{CT12}; action="{INQUIRY_ACTION}"'
    response = await post(client, envelope(inquire(), version="1.2"), content_type)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/soap+xml; charset=utf-8"


async def test_soap12_with_another_operations_action_is_refused(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    content_type = f'{CT12}; action="urn:sso:contribution:v1/CancelPayment"'
    response = await post(client, envelope(inquire(), version="1.2"), content_type)
    assert response.status_code == 400  # SOAP 1.2: a Sender fault, HTTP 400
    assert fault_code(response.content) == "client.invalid_envelope"
    assert fake.calls == []


async def test_the_content_type_charset_is_honoured(client: httpx.AsyncClient) -> None:
    body = envelope(inquire(extra="<c:operatorId>José</c:operatorId>")).decode()
    response = await post(client, body.encode("iso-8859-1"), "text/xml; charset=ISO-8859-1")
    assert response.status_code == 200


# A Windows POS terminal's Thai: TIS-620 letters and the marks only windows-874 has.
OPERATOR_874 = "สมศรี “กะดึก”"
REASON_874 = "ลูกค้าขอยกเลิก… ชำระซ้ำ – ยอด ๔๓๒ บาท"


def _windows_874(body: str, *, declared: bool) -> bytes:
    declaration = '<?xml version="1.0" encoding="windows-874"?>' if declared else ""
    text = body.replace('<?xml version="1.0" encoding="utf-8"?>', declaration)
    return text.encode("cp874")


@pytest.mark.parametrize(
    ("content_type", "declared"),
    [
        ("text/xml; charset=windows-874", False),  # the Content-Type names it
        ("text/xml", True),  # the XML declaration names it
        ("text/xml; charset=Windows-874", True),  # both
    ],
)
async def test_windows_874_thai_arrives_intact(
    client: httpx.AsyncClient, fake: FakeCounter, content_type: str, declared: bool
) -> None:
    inquiry = envelope(inquire(extra=f"<c:operatorId>{OPERATOR_874}</c:operatorId>")).decode()
    response = await post(client, _windows_874(inquiry, declared=declared), content_type)
    assert response.status_code == 200, response.text
    cancel = operation(
        "CancelPayment", f"<c:partnerTxnId>POS-1</c:partnerTxnId><c:reason>{REASON_874}</c:reason>"
    )
    body = _windows_874(envelope(cancel).decode(), declared=declared)
    assert fault_code((await post(client, body, content_type)).content) == (
        "client.transaction_not_found"  # the fake knows no POS-1; the reason reached it
    )
    [(_, caller, _, _), (_, _, _, request)] = fake.calls
    assert caller.operator == OPERATOR_874
    assert request == CancelRequest("POS-1", REASON_874)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "faultcode"),
    [
        (envelope(inquire()), "application/json", 415, "client.invalid_envelope", "soap:Client"),
        (envelope(inquire()), None, 415, "client.invalid_envelope", "soap:Client"),
        (b"", CT11, 500, "client.invalid_envelope", "soap:Client"),
        (b"{}", CT12, 400, "client.invalid_envelope", "env:Sender"),
        (b"<a>", CT11, 500, "client.invalid_envelope", "soap:Client"),
        (
            envelope(operation("DeletePerson", ""), version="1.2"),
            CT12,
            400,
            "client.unknown_operation",
            "env:Sender",
        ),
        (
            envelope(inquire(), version="1.2"),
            CT11,
            500,
            "client.invalid_envelope",
            "env:VersionMismatch",
        ),
        (envelope(inquire(), header=""), CT11, 500, "client.unauthenticated", "soap:Client"),
        (
            envelope(inquire("0000000000000"), version="1.2"),
            CT12,
            400,
            "client.person_not_found",
            "env:Sender",
        ),
        (
            envelope(operation("ConfirmPayment", "<c:amount>1</c:amount>")),
            CT11,
            500,
            "client.invalid_input",
            "soap:Client",
        ),
    ],
)
async def test_every_failure_is_a_fault(
    client: httpx.AsyncClient,
    body: bytes,
    content_type: str | None,
    status: int,
    code: str,
    faultcode: str,
) -> None:
    response = await post(client, body, content_type, **{"x-request-id": "r-1"})
    assert response.status_code == status
    assert response.headers["x-request-id"] == "r-1"
    assert fault_code(response.content) == code
    assert soap_fault_code(response.content) == faultcode


async def test_a_declared_length_over_the_cap_is_refused_with_413(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, b"<a>" + b"x" * 70_000 + b"</a>", CT12)
    assert response.status_code == 413
    assert fault_code(response.content) == "client.payload_too_large"
    assert soap_fault_code(response.content) == "env:Sender"


async def test_the_size_cap_stops_reading_an_endless_stream(app: FastAPI) -> None:
    reads = 0
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        nonlocal reads
        reads += 1
        return {
            "type": "http.request",
            "body": b"<a>" if reads == 1 else b"x" * 16_384,
            "more_body": True,
        }

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/soap/v1", "raw_path": b"/soap/v1", "root_path": "",
        "query_string": b"", "headers": [(b"content-type", b"text/xml")],
        "client": ("127.0.0.1", 5000), "server": ("gateway.test", 80),
    }  # fmt: skip
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert reads <= 6  # 64 KiB in 16 KiB chunks, then no more


async def test_an_unexpected_exception_is_logged_and_answered_server_internal(
    client: httpx.AsyncClient, fake: FakeCounter, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_with = RuntimeError("boom at the bottom")
    with caplog.at_level(logging.ERROR, logger="app.soap.router"):
        response = await post(client, envelope(inquire(), version="1.2"), CT12)
    assert response.status_code == 500
    assert fault_code(response.content) == "server.internal"
    assert soap_fault_code(response.content) == "env:Receiver"
    assert b"boom" not in response.content
    assert "boom at the bottom" in caplog.text


@pytest.mark.parametrize(
    ("error", "status", "retryable"), [(Overloaded(), 500, b"true"), (RateLimited(), 400, b"true")]
)
async def test_overload_and_rate_limit_say_retry(
    client: httpx.AsyncClient, fake: FakeCounter, error: Exception, status: int, retryable: bytes
) -> None:
    fake.fail_with = error
    response = await post(client, envelope(inquire(), version="1.2"), CT12)
    assert response.status_code == status
    assert f"<sso:retryable>{retryable.decode()}</sso:retryable>".encode() in response.content


async def test_the_wsdl_names_the_address_the_client_reached(client: httpx.AsyncClient) -> None:
    for query in ("wsdl", "WSDL", "wsdl="):
        response = await client.get(f"/soap/v1?{query}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/xml; charset=utf-8"
        text = response.text
        assert text.count('location="http://gateway.test/soap/v1"') == 2
        assert 'schemaLocation="http://gateway.test/soap/v1?xsd"' in text
        assert 'location="http://localhost:8000' not in text


def _addresses(wsdl: str) -> set[str]:
    """Every address the WSDL names: the ports' locations and the schema's."""
    return set(re.findall(r'(?:location|schemaLocation)="([^"]*)"', wsdl))


async def _wsdl_from(app: FastAPI, peer: str, **headers: str) -> str:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        response = await client.get("/soap/v1?wsdl", headers=headers)
    assert response.status_code == 200
    return response.text


PROXY = "10.0.0.2"
FORWARDED = {"x-forwarded-proto": "https", "x-forwarded-host": "partners.sso.example"}


def _app(fake: FakeCounter, public_base_url: str | None = None) -> FastAPI:
    app = FastAPI()
    app.include_router(
        soap_router(
            counter=fake, public_base_url=public_base_url, trusts_proxy=lambda p: p == PROXY
        )
    )
    return app


async def test_the_wsdl_names_the_public_base_url_when_one_is_set(fake: FakeCounter) -> None:
    app = _app(fake, "https://gateway.sso.go.th")
    for peer in (PROXY, "203.0.113.7"):  # whatever a proxy forwards
        assert _addresses(await _wsdl_from(app, peer, **FORWARDED)) == {
            "https://gateway.sso.go.th/soap/v1",
            "https://gateway.sso.go.th/soap/v1?xsd",
        }


async def test_the_wsdl_names_what_a_trusted_proxy_forwards(fake: FakeCounter) -> None:
    app = _app(fake)
    assert _addresses(await _wsdl_from(app, PROXY, **FORWARDED)) == {
        "https://partners.sso.example/soap/v1",
        "https://partners.sso.example/soap/v1?xsd",
    }
    # Chained proxies: the last value is the one the trusted peer wrote.
    chained = {"x-forwarded-proto": "http, https", "x-forwarded-host": "a.example, b.example:8443"}
    assert "https://b.example:8443/soap/v1" in _addresses(await _wsdl_from(app, PROXY, **chained))
    # Nothing forwarded, or nonsense: the request's own scheme and host.
    assert "http://gateway.test/soap/v1" in _addresses(await _wsdl_from(app, PROXY))
    junk = {"x-forwarded-proto": "javascript", "x-forwarded-host": 'x.example/"><evil'}
    assert "http://gateway.test/soap/v1" in _addresses(await _wsdl_from(app, PROXY, **junk))


async def test_an_untrusted_peer_cannot_choose_the_wsdls_addresses(fake: FakeCounter) -> None:
    wsdl = await _wsdl_from(_app(fake), "203.0.113.7", **FORWARDED)
    assert _addresses(wsdl) == {"http://gateway.test/soap/v1", "http://gateway.test/soap/v1?xsd"}
    assert "partners.sso.example" not in wsdl


async def test_head_answers_like_get(client: httpx.AsyncClient) -> None:
    response = await client.head("/soap/v1?wsdl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"


async def test_the_xsd_is_served_as_it_is_in_the_repository(client: httpx.AsyncClient) -> None:
    response = await client.get("/soap/v1?xsd")
    assert response.status_code == 200
    assert response.content == (DEFAULT_CONTRACT_DIR / "contribution.xsd").read_bytes()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_get_a_fault_not_json(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/soap/v1")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert fault_code(response.content) == "client.invalid_envelope"


async def test_with_the_http_middlewares_call_context_the_adapter_reports_into_it(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    # What the HTTP middleware does before the request reaches the route.
    context = begin_call("ctx-req-1", "soap")
    response = await post(client, envelope(inquire("0000000000000")), **{"x-request-id": "other"})
    assert fault_code(response.content) == "client.person_not_found"
    assert (context.operation, context.outcome) == (
        "InquireContribution",
        "client.person_not_found",
    )
    assert fake.calls[0][1].request_id == "ctx-req-1"
    assert "x-request-id" not in response.headers  # the middleware adds it, once
    assert b"<sso:requestId>ctx-req-1</sso:requestId>" in response.content

    context = begin_call("ctx-req-2", "soap")
    await post(client, envelope(operation("Nope", "")))
    assert (context.operation, context.outcome) == (None, "client.unknown_operation")
    context = begin_call("ctx-req-3", "soap")
    await post(client, envelope(inquire()))
    assert (context.operation, context.outcome) == ("InquireContribution", "ok")


def test_the_soap_routes_stay_out_of_the_openapi_spec(app: FastAPI) -> None:
    assert "/soap/v1" not in app.openapi()["paths"]


async def test_a_digest_and_a_text_token_both_reach_the_service(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    from tests.unit.soap.envelopes import digest_token

    response = await post(client, envelope(inquire(S39_ID), header=digest_token()))
    assert response.status_code == 200, response.text
    bad = await post(client, envelope(inquire(S39_ID), header=digest_token(password="wrong")))
    assert fault_code(bad.content) == "client.unauthenticated"


def _scope(**extra: object) -> dict[str, object]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/soap/v1", "raw_path": b"/soap/v1", "root_path": "",
        "query_string": b"", "headers": [(b"content-type", CT11.encode())],
        "client": ("127.0.0.1", 5000), "server": ("gateway.test", 80), **extra,
    }  # fmt: skip


@pytest.mark.parametrize("whole", [False, True], ids=["arriving", "whole"])
async def test_the_read_bound_times_a_body_only_while_it_is_arriving(
    fake: FakeCounter, whole: bool
) -> None:
    """A body that comes slower than ``read_timeout_s`` is refused (``timeout``); a body the
    server says it holds whole (``BODY_WHOLE``) is read without that bound (no timer is set
    for it), however its ``receive()`` goes: here one that takes longer than the bound."""
    app = FastAPI()
    app.include_router(soap_router(counter=fake, read_timeout_s=0.05))
    body = envelope(inquire())
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        await asyncio.sleep(0.2)
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = _scope(**{BODY_WHOLE: True}) if whole else _scope()
    await app(scope, receive, send)
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")  # type: ignore[misc]
    if whole:
        assert sent[0]["status"] == 200, answer
        assert payload(answer).tag == f"{{{SSO}}}InquireContributionResponse"
    else:
        assert sent[0]["status"] == 500, answer  # SOAP 1.1: every fault is a 500
        assert fault_code(answer) == "client.invalid_envelope"
        assert b"did not arrive within 0.05 s" in answer


async def test_a_header_block_in_no_namespace_is_read_like_any_other(
    client: httpx.AsyncClient, fake: FakeCounter
) -> None:
    # xmlns="" undeclares the default namespace: legal XML, written by some toolkits.
    trace = '<Trace xmlns=""><id>42</id></Trace>'
    body = envelope(inquire()).replace(b"<e:Header>", f"<e:Header>{trace}".encode())
    response = await post(client, body)
    assert response.status_code == 200, response.text
    assert [name for name, *_ in fake.calls] == ["inquire"]
    unqualified = envelope(inquire()).replace(
        f"<c:nationalId>{S39_ID}</c:nationalId>".encode(),
        f'<nationalId xmlns="">{S39_ID}</nationalId>'.encode(),
    )
    response = await post(client, unqualified)
    assert fault_code(response.content) == "client.invalid_input"
    assert "nationalId (in no namespace)" in response.text
