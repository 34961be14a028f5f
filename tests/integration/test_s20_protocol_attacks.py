"""Protocol edges against the real gateway (session 20, attack c): what partners' own stacks
send on the wire, and what the HTTP server does with a connection around an early answer.

Every test here failed on the code it was written against, for the defect its docstring names.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from app.domain.months import Month
from app.main import Gateway, create_app, render_cut
from app.observability.connection_guard import ConnectionGuard, ConnectionLimits
from app.observability.guarded_http import guarded_protocol
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.reliability.soap_wire import new_request_id, read_answer, security
from tests.support.clock import PinnedClock
from tests.support.live_server import serve
from tests.support.people import add_person
from tests.support.rest_api import replicas, rest
from tests.unit.soap.envelopes import envelope, operation

pytestmark = pytest.mark.db

THAI_OPERATOR = "สมศรี"


async def _s39_person(gateway: Gateway) -> str:
    async with gateway.db.primary.acquire() as conn:
        return await add_person(
            conn, section=39, coverage_start=Month(2020, 1), replicas=replicas(gateway)
        )


def _inquiry_with_thai_operator(partner: PartnerCredentials, nid: str) -> str:
    """An inquiry envelope (text, no XML declaration) whose operatorId is Thai."""
    body = operation(
        "InquireContribution",
        f"<c:nationalId>{nid}</c:nationalId><c:operatorId>{THAI_OPERATOR}</c:operatorId>",
    )
    text = envelope(body, header=security(partner.username, partner.password)).decode()
    return text.replace('<?xml version="1.0" encoding="utf-8"?>', "")


def _elementtree_utf8(text: str) -> bytes:
    # What a partner's Python client gets from the standard library: ElementTree writes the
    # encoding name as it was given, so encoding="utf8" yields <?xml ... encoding='utf8'?>.
    data = ET.tostring(ET.fromstring(text), encoding="utf8")
    assert data.startswith(b"<?xml version='1.0' encoding='utf8'?>")
    return data


def _declared_utf16(text: str) -> bytes:
    return ("<?xml version='1.0' encoding='utf16'?>" + text).encode("utf-16")


@pytest.mark.parametrize("write", [_elementtree_utf8, _declared_utf16], ids=["utf8", "utf16"])
async def test_an_xml_declaration_naming_an_accepted_encoding_by_its_python_name_is_read(
    gateway: Gateway, live_url: str, partner: PartnerCredentials, write: object
) -> None:
    """Defect: a body sent as ``text/xml`` (no charset) whose XML declaration names UTF-8 as
    ``utf8`` (what Python's ``ET.tostring(root, encoding="utf8")`` writes) or UTF-16 as
    ``utf16`` is refused: ``client.invalid_envelope`` "not well-formed (invalid token)" as
    soon as the body holds one non-ASCII character (a Thai operatorId or cancel reason), and
    "names an encoding this endpoint does not accept" for ``utf16``. ``media_type.
    declared_codec`` accepts both names (``codec_of`` resolves them to utf-8 / utf-16, which
    are on the allow-list) and then leaves the body to expat on the belief that expat reads
    them itself; expat knows only the exact names UTF-8, UTF-16, UTF-16LE/BE, ISO-8859-1 and
    US-ASCII, and pyexpat's fallback for other names takes single-byte codecs only.
    Correct: an encoding the gateway accepts is read whatever alias of it is declared: the
    inquiry is answered and its audit record names the Thai operator."""
    assert callable(write)
    nid = await _s39_person(gateway)
    raw = write(_inquiry_with_thai_operator(partner, nid))
    request_id = new_request_id()
    async with httpx.AsyncClient(base_url=live_url, timeout=10) as http:
        response = await http.post(
            "/soap/v1",
            content=raw,
            headers={"content-type": "text/xml", "x-request-id": request_id},
        )
    answer = read_answer(response)
    assert answer.ok, (answer, response.text[:600])
    assert answer.fields["nationalId"] == nid
    operators = await gateway.db.primary.fetch(
        "SELECT operator FROM audit_log WHERE request_id = $1", request_id
    )
    assert [r["operator"] for r in operators] == [THAI_OPERATOR]


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "SEARCH"])
def test_any_other_method_on_the_soap_endpoint_is_a_soap_fault_with_allow(
    live_url: str, method: str
) -> None:
    """Defect: a method the SOAP routes do not list (TRACE, PROPFIND, SEARCH: methods
    uvicorn's parser accepts) on ``/soap/v1`` is answered by Starlette's router with
    ``application/problem+json`` and no ``Allow`` header, although ``app.soap.router``
    promises that whatever goes wrong on this path is answered as a SOAP fault, never JSON,
    and RFC 9110 (15.5.6) makes ``Allow`` a MUST on a 405. PUT, PATCH, DELETE and OPTIONS get
    the fault (``_OTHER_METHODS``); the rest fall through to ``unmatched_route``.
    Correct: 405 with ``Allow: GET, POST`` (as for PUT) and a well-formed SOAP fault."""
    response = httpx.request(method, f"{live_url}/soap/v1", timeout=10)
    assert response.status_code == 405
    assert response.headers.get("allow"), dict(response.headers)
    answer = read_answer(response)  # a SOAP envelope, not problem+json
    assert answer.code.startswith("client."), answer


@pytest.mark.parametrize("path", ["/api/v1/payments", "/api/v1/payments/POS-1"])
def test_a_405_for_a_method_no_route_lists_carries_allow(live_url: str, path: str) -> None:
    """Defect: TRACE on a REST resource is refused by Starlette's router with
    ``HTTPException(405, headers={"Allow": ...})``, but ``app.rest.problem.unmatched_route``
    renders it without the exception's headers: the 405 problem+json has no ``Allow``, which
    RFC 9110 (15.5.6) requires, and which the API's own catch-all sends for DELETE on the
    same path (``api_router.unknown``). Correct: the 405 names the methods the resource takes
    in ``Allow``, as every other 405 of the API does."""
    response = httpx.request("TRACE", f"{live_url}{path}", timeout=10)
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers.get("allow"), dict(response.headers)


@pytest.mark.parametrize("length", [65, 128])
async def test_a_request_id_of_up_to_128_characters_is_echoed_as_the_openapi_says(
    live_url: str, client_token: str, length: int
) -> None:
    """Defect: the OpenAPI document (every operation's ``X-Request-ID`` parameter, from
    ``app.rest.caller.rest_caller``) and ``app.rest.problem`` take a request id of letters,
    digits and ``._:-`` up to 128 characters, "echoed in the answer and kept in the audit
    trail"; but the HTTP middleware in front (``HttpMetricsMiddleware._SANE_ID``) takes only
    up to 64, replaces a longer one with a random id and rewrites the request's headers, so
    the caller's 65-128-character id is neither echoed nor recorded: support cannot find the
    call by the id the client logged. Correct: an id the contract accepts is the call's id
    (echoed in ``X-Request-ID`` and in the problem's ``requestId``), or the contract says 64."""
    request_id = ("r" + "0123456789abcdef" * 8)[:length]
    async with rest(live_url, client_token) as api:
        response = await api.get(
            "/api/v1/payments/does-not-matter-s20", headers={"X-Request-ID": request_id}
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == request_id


PUBLIC = "https://gateway.sso.go.th"


@pytest.mark.parametrize(("method", "path"), [("POST", "/soap/v1/"), ("GET", "/soap/v1/?wsdl")])
def test_a_trailing_slash_is_never_redirected_off_the_public_address(
    settings: Settings, clock: PinnedClock, method: str, path: str
) -> None:
    """Defect: a partner whose endpoint URL was configured with a trailing slash
    (``https://gateway.sso.go.th/soap/v1/``) is answered by Starlette's ``redirect_slashes``
    with a 307 whose ``Location`` is built from the request's own Host header and the scheme
    uvicorn saw (``http`` behind the TLS-terminating ingress), ignoring
    ``SSOGW_PUBLIC_BASE_URL`` and the trusted proxy's X-Forwarded-Proto, which the served WSDL
    honours (``SoapEndpoint.address``). Here: ``Location: http://evil.example/soap/v1``. A
    toolkit that follows a 307 with its body (zeep, through requests) sends the signed
    envelope, with a PasswordText password if the partner uses one, in clear text to whatever
    host the Host header named. Correct: no answer on the SOAP path points anywhere but the
    public address: a SOAP fault (the path is not the endpoint), or a redirect to
    ``{public base URL}/soap/v1``."""
    own = {"instance_id": f"{settings.instance_id}-s20r"}
    changes = {"public_base_url": f"{PUBLIC}/", "trusted_proxies": ["127.0.0.0/8"]}
    checked = Settings.model_validate(settings.model_dump() | own | changes)
    with serve(create_app(checked, clock=clock)) as base:
        response = httpx.request(
            method,
            f"{base}{path}",
            content=b"<e:Envelope/>" if method == "POST" else None,
            headers={
                "content-type": "text/xml; charset=utf-8",
                "host": "evil.example",
                "x-forwarded-proto": "https",
                "x-forwarded-host": "gateway.sso.go.th",
            },
            timeout=10,
        )
    location = response.headers.get("location", "")
    assert not response.is_redirect or location.startswith(f"{PUBLIC}/"), (
        response.status_code,
        location,
    )


# --- the server `ssogw serve` runs: uvicorn with the guarded HTTP protocol ---------------------


@contextlib.contextmanager
def _guarded_server(settings: Settings, clock: PinnedClock) -> Iterator[int]:
    """The whole app served as ``ssogw serve`` serves it (``guarded_protocol`` with
    ``render_cut``), on a free loopback port, in a thread; yields the port."""
    live = settings.model_copy(update={"instance_id": f"{settings.instance_id}-s20g"})
    app = create_app(live, clock=clock)
    guard = ConnectionGuard(ConnectionLimits(max_head_bytes=4 * live.max_header_bytes))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        http=guarded_protocol(guard, answer=render_cut),
        lifespan="on",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the guarded test server did not start")
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def guarded_port(settings: Settings, clock: PinnedClock) -> Iterator[int]:
    with _guarded_server(settings, clock) as port:
        yield port


async def _read_answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """One HTTP answer: its status line, headers (lower-case names) and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head[:-4].split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def _soap_post(body: bytes, content_type: str) -> bytes:
    return (
        b"POST /soap/v1 HTTP/1.1\r\nhost: gateway.test\r\n"
        + f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
    )


async def test_an_answer_given_before_the_body_arrived_says_the_connection_closes(
    guarded_port: int,
) -> None:
    """Defect: when the gateway answers a request before its body has all arrived (a 415
    for a charset it does not take, a 413, a fault for XML refused in its first chunk, the
    SOAP read bound), ``GuardedHttpProtocol.on_response_complete`` closes the connection,
    but the answer does not say ``Connection: close``. Under RFC 9112 (9.3) an HTTP/1.1
    answer without the close option tells the client the connection persists, so a partner's
    pooled client may send its next call (a confirm) on a connection the server has already
    closed and meet a reset, not an answer, with no way to know whether the call was taken
    (here: the next request on the connection gets no answer at all).
    Correct: either the answer carries ``Connection: close`` (uvicorn writes it when the
    cycle's ``keep_alive`` is cleared before the answer starts), or the connection stays
    usable (the rest of the body read and dropped, as plain uvicorn does)."""
    envelope_text = b"<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/'>" + (
        b"<e:Body/>" + b" " * 4000 + b"</e:Envelope>"
    )
    # A Windows POS stack labelling its Thai code page windows-1252: refused (415) at once.
    first = _soap_post(envelope_text, "text/xml; charset=windows-1252")
    reader, writer = await asyncio.open_connection("127.0.0.1", guarded_port)
    try:
        # As many HTTP stacks write it: the head, then the body in pieces.
        writer.write(first + envelope_text[:100])
        await writer.drain()
        async with asyncio.timeout(10):
            status, headers, _ = await _read_answer(reader)
        assert status.startswith(b"HTTP/1.1 415"), status
        if "close" in headers.get("connection", "").lower():
            return  # told: the client opens a new connection for its next call
        # Not told: the connection is a persistent one; the client finishes its body and
        # sends its next call on it, and must get an answer.
        second = _soap_post(b"<x/>", "text/xml; charset=utf-8") + b"<x/>"
        try:
            writer.write(envelope_text[100:] + second)
            await writer.drain()
            async with asyncio.timeout(10):
                next_status, _, _ = await _read_answer(reader)
        except (ConnectionError, asyncio.IncompleteReadError) as lost:
            pytest.fail(
                f"the 415 said nothing of closing ({headers}), but the next request on the"
                f" connection got no answer: {lost!r}"
            )
        assert next_status.startswith(b"HTTP/1.1 "), next_status
    finally:
        writer.close()
