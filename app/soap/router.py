"""The SOAP endpoint: ``POST /soap/v1`` for calls, ``GET /soap/v1?wsdl`` (and ``?xsd``) for the
contract. Whatever goes wrong on this path, the answer is a SOAP fault, never HTML or JSON.

When the HTTP middleware has opened a call context, the endpoint takes its request id and
notes the operation and outcome there (for metrics and logs); without one it makes and echoes
its own request id.

The served WSDL names the address partners reach: the configured public base URL
(``SSOGW_PUBLIC_BASE_URL``) when set; else, when the TCP peer is a trusted proxy (the rule that
decides whether its X-Forwarded-For is believed), the scheme and host it forwards
(X-Forwarded-Proto, X-Forwarded-Host: the last value, the one that proxy wrote); else the
request's own scheme and Host. Forwarded headers from any other peer are ignored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.admission.source_address import forwarded_for
from app.counter.operations import CounterOperations
from app.errors import InvalidSoapEnvelope, ServerError, ServiceError
from app.observability.call_context import (
    BODY_WHOLE,
    SANE_REQUEST_ID,
    current_call,
    note_call,
)
from app.observability.header_limits import content_length
from app.observability.logs import mask
from app.soap.contract import DEFAULT_CONTRACT_DIR, Contract, load_contract
from app.soap.envelope import Envelope, read_envelope
from app.soap.faults import FaultResponse, render_fault, render_refusal
from app.soap.media_type import action_parameter, read_media_type, version_of
from app.soap.operations import check_soap_action, operation_of, perform
from app.soap.refusals import EnvelopeRefused
from app.soap.serialise import write_envelope
from app.soap.versions import SoapVersion
from app.soap.xml_reader import XmlLimits, check_expat

logger = logging.getLogger(__name__)

_CONTRACT_TYPE: Final = "text/xml; charset=utf-8"
SOAP_PATH: Final = "/soap/v1"
# A forwarded host: a DNS name or an IPv4 address, or a bracketed IPv6 one; an optional port.
_HOST: Final = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?"
)


def request_id_of(request: Request) -> str:
    """The request id: the middleware's, else a sane X-Request-ID from the client, else new."""
    return _request_id(request.headers.get("x-request-id", ""))


def _request_id(given: str) -> str:
    call = current_call()
    if call is not None:
        return call.request_id
    return given if SANE_REQUEST_ID.fullmatch(given) else os.urandom(16).hex()


def _id_header(request_id: str) -> list[tuple[bytes, bytes]]:
    # The HTTP middleware echoes the request id itself; say it only when it is not there.
    return [] if current_call() is not None else [(b"x-request-id", request_id.encode())]


@dataclass(slots=True)
class _Head:
    """What a call reads of its request's headers, taken in one pass over the raw list (names
    are lower case in ASGI; the first of a repeated single header counts, as Starlette's)."""

    content_type: str | None = None
    content_length: str = ""
    given_id: str | None = None
    actions: list[str] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, scope: Scope) -> _Head:
        head = cls()
        for name, value in scope["headers"]:
            if name == b"content-type":
                if head.content_type is None:
                    head.content_type = value.decode("latin-1")
            elif name == b"content-length":
                if not head.content_length:
                    head.content_length = value.decode("latin-1")
            elif name == b"soapaction":
                head.actions.append(value.decode("latin-1"))
            elif name == b"x-forwarded-for":
                head.forwarded.append(value.decode("latin-1"))
            elif name == b"x-request-id" and head.given_id is None:
                head.given_id = value.decode("latin-1")
        return head

    def request_id(self) -> str:
        return _request_id(self.given_id or "")

    def declared_length(self) -> int | None:
        return content_length(self.content_length)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives (``ClientDisconnect`` if the client goes first)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


class SoapAnswer(Response):
    """An answer sent as ``Response(body, status, headers, media_type)`` sends it (the given
    headers, then Content-Length and Content-Type), made without its header handling."""

    def __init__(  # not Response's: the headers are already raw
        self, body: bytes, status: int, headers: list[tuple[bytes, bytes]], media_type: str
    ) -> None:
        headers.append((b"content-length", b"%d" % len(body)))
        headers.append((b"content-type", media_type.encode("latin-1")))
        self.body = body
        self.status_code = status
        self.media_type = media_type
        self.background = None
        self.raw_headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})  # fmt: skip
        await send({"type": "http.response.body", "body": self.body})


def _last_forwarded(request: Request, name: str) -> str:
    """The last value of a forwarded header: the one the nearest proxy wrote."""
    values = ",".join(request.headers.getlist(name)).split(",")
    return values[-1].strip()


def _never_trusted(_peer: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class SoapEndpoint:
    service: CounterOperations
    limits: XmlLimits
    contract: Contract
    read_timeout_s: float
    public_base_url: str | None = None
    trusts_proxy: Callable[[str], bool] = _never_trusted

    def address(self, request: Request) -> str:
        """This endpoint's address as partners reach it (see the module docstring)."""
        if self.public_base_url is not None:
            return self.public_base_url + request.url.path
        url = request.url.replace(query="", fragment="")
        peer = request.client.host if request.client else ""
        if peer and self.trusts_proxy(peer):
            scheme = _last_forwarded(request, "x-forwarded-proto").lower()
            host = _last_forwarded(request, "x-forwarded-host")
            if scheme in ("http", "https"):
                url = url.replace(scheme=scheme)
            if _HOST.fullmatch(host):
                url = url.replace(netloc=host)
        return str(url)

    @staticmethod
    def _send(fault: FaultResponse, request_id: str, code: str) -> SoapAnswer:
        note_call(outcome=code)
        headers = _id_header(request_id)
        if fault.status_code == 405:
            headers.append((b"allow", b"GET, POST"))
        return SoapAnswer(fault.body, fault.status_code, headers, fault.content_type)

    def _fail(self, error: ServiceError, version: SoapVersion, request_id: str) -> SoapAnswer:
        fault = render_fault(error, version=version, request_id=request_id)
        return self._send(fault, request_id, error.code)

    async def _bounded(self, reading: Awaitable[Envelope]) -> Envelope:
        """``reading`` within ``read_timeout_s``: a client that stops sending half-way must not
        hold its connection for ever. A body the server already holds whole (``BODY_WHOLE``:
        most requests arrive in one read) is read without this bound, which would only cost
        a timer set and cancelled on the event loop."""
        try:
            async with asyncio.timeout(self.read_timeout_s):
                return await reading
        except TimeoutError:
            raise InvalidSoapEnvelope(
                f"The request body did not arrive within {self.read_timeout_s:g} s.",
                reason="timeout",
            ) from None

    async def call(self, request: Request) -> SoapAnswer:
        """Answer one SOAP call (as a Starlette endpoint)."""
        return await self.answer(request.scope, request.receive)

    async def answer(self, scope: Scope, receive: Receive) -> SoapAnswer:
        """Answer one SOAP call, read from the raw ASGI scope and messages."""
        head = _Head.of(scope)
        request_id = head.request_id()
        content_type = head.content_type
        version = version_of(content_type)
        try:
            media = read_media_type(content_type)
            reading = read_envelope(
                _chunks(receive),
                media=media,
                limits=self.limits,
                declared_length=head.declared_length(),
            )
            envelope = await (reading if scope.get(BODY_WHOLE) else self._bounded(reading))
            version = envelope.version
            operation = operation_of(envelope)
            note_call(operation=operation.value)
            check_soap_action(operation, [*head.actions, action_parameter(content_type)])
            client = scope.get("client")
            body = await perform(
                operation,
                envelope,
                service=self.service,
                source_ip=client[0] if client else "",
                forwarded_for=forwarded_for(head.forwarded),
                request_id=request_id,
            )
            content = write_envelope(version, body)
        except EnvelopeRefused as refused:
            fault = render_refusal(refused, version=version, request_id=request_id)
            return self._send(fault, request_id, refused.error.code)
        except ServiceError as error:
            return self._fail(error, version, request_id)
        except ClientDisconnect:
            disconnected = InvalidSoapEnvelope("The request body did not arrive whole.")
            return self._fail(disconnected, version, request_id)
        except Exception as exc:
            # A database error's text may quote a row, and with it a national ID: masked.
            trace = mask("".join(traceback.format_exception(exc)))
            logger.error("SOAP call failed\n%s", trace, extra={"request_id": request_id})
            return self._fail(ServerError(), version, request_id)
        note_call(outcome="ok")
        return SoapAnswer(content, 200, _id_header(request_id), version.content_type)

    async def describe(self, request: Request) -> Response:
        """The WSDL (``?wsdl``) or the XSD (``?xsd``), naming this instance's address."""
        asked = {key.lower() for key in request.query_params}
        if "wsdl" in asked:
            wsdl = self.contract.wsdl_for(self.address(request))
            return Response(wsdl, media_type=_CONTRACT_TYPE)
        if "xsd" in asked:
            return Response(self.contract.xsd, media_type=_CONTRACT_TYPE)
        return await self.not_allowed(request)

    async def not_allowed(self, request: Request) -> SoapAnswer:
        """Any other method, or a GET that asks for neither the WSDL nor the XSD."""
        request_id = request_id_of(request)
        error = InvalidSoapEnvelope(
            "SOAP calls are sent with POST; GET ?wsdl returns the WSDL and GET ?xsd its schema.",
            reason="method",
        )
        fault = render_fault(error, version=SoapVersion.V11, request_id=request_id, http_status=405)
        return self._send(fault, request_id, error.code)


def soap_endpoint(
    *,
    counter: CounterOperations,
    max_body_bytes: int = 64 * 1024,
    max_depth: int = 32,
    max_elements: int = 2_000,
    contract_dir: Path = DEFAULT_CONTRACT_DIR,
    read_timeout_s: float = 10.0,
    public_base_url: str | None = None,
    trusts_proxy: Callable[[str], bool] = _never_trusted,
) -> SoapEndpoint:
    """The SOAP endpoint over ``counter``; checks expat and loads the contract at once.

    ``public_base_url`` (a checked setting) and ``trusts_proxy`` (whether a TCP peer is a
    trusted proxy) decide the address the served WSDL names.
    """
    check_expat()
    return SoapEndpoint(
        service=counter,
        limits=XmlLimits(
            max_body_bytes=max_body_bytes, max_depth=max_depth, max_elements=max_elements
        ),
        contract=load_contract(contract_dir),
        read_timeout_s=read_timeout_s,
        public_base_url=public_base_url,
        trusts_proxy=trusts_proxy,
    )


@dataclass(frozen=True, slots=True)
class _AnyOtherMethod:
    """The endpoint's 405 fault as an ASGI app: Starlette gives a route to a function GET
    alone when it names no methods, and one to an ASGI app every method."""

    endpoint: SoapEndpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await self.endpoint.not_allowed(Request(scope, receive))
        await answer(scope, receive, send)


def soap_routes(endpoint: SoapEndpoint, path: str = SOAP_PATH) -> APIRouter:
    """The endpoint's routes: POST for calls, GET/HEAD for the contract, a fault for the rest."""
    # Plain Starlette routes: the endpoint reads the raw request and writes raw bytes, so
    # FastAPI's dependency solving and response validation would only cost time per call.
    router = APIRouter()
    router.add_route(path, endpoint.call, methods=["POST"], include_in_schema=False)
    router.add_route(path, endpoint.describe, methods=["GET", "HEAD"], include_in_schema=False)
    # Every other method, whatever its name (PUT, TRACE, PROPFIND, ...), after those two.
    router.routes.append(Route(path, _AnyOtherMethod(endpoint), include_in_schema=False))
    return router


def soap_router(*, counter: CounterOperations, path: str = SOAP_PATH, **limits: Any) -> APIRouter:
    """The SOAP endpoint over ``counter`` and its routes (``soap_endpoint``'s keywords)."""
    return soap_routes(soap_endpoint(counter=counter, **limits), path)
