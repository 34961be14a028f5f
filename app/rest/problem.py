"""Errors as ``application/problem+json`` (RFC 9457), for every failure of an ``/api/v1`` route.

Every ``ServiceError`` keeps its stable code and HTTP status, and the answer carries the code,
the English message (``detail``), the code's Thai message (``messageTh``, for the person at the
counter) and ``retryable``; FastAPI's request validation becomes ``client.invalid_input``
naming the fields; anything unexpected becomes a 500 ``server.internal``, logged with the
request id (national IDs masked), never a stack trace in the answer. ``ProblemRoute`` does this
for each route, so the REST adapter needs nothing from the app around it.
"""

from __future__ import annotations

import logging
import math
import os
import traceback
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ClassVar, Final, Protocol

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from app.error_catalogue import catalogue, codes, thai_detail, thai_message
from app.errors import (
    ClientError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServerError,
    ServiceError,
)
from app.observability.call_context import SANE_REQUEST_ID, current_call, note_call
from app.observability.header_limits import content_length
from app.observability.logs import mask
from app.rest.json_body import DecimalJsonRequest
from app.rest.validation import validation_error
from app.rest.wire import header

log = logging.getLogger(__name__)

PROBLEM_JSON: Final = "application/problem+json"
REQUEST_ID_HEADER: Final = "X-Request-ID"
TYPE_PREFIX: Final = "urn:sso:contribution:error:"
_RESERVED: Final = frozenset(
    {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "messageTh",
        "retryable",
        "instance",
        "requestId",
        "detailTh",
    }
)
MAX_BODY_BYTES: Final = 256 * 1024  # far above any real request of this API


def _published_codes(schema: dict[str, Any]) -> None:
    """The Problem's ``code`` in the OpenAPI document: every code, and a table of them."""
    rows = "\n".join(
        f"| `{entry.code}` | {entry.http_status} | {'yes' if entry.retryable else 'no'}"
        f" | {entry.meaning} |"
        for entry in catalogue()
    )
    schema["enum"] = codes()
    schema["description"] = (
        "The stable dotted error code; every code the gateway sends is listed (the same list as"
        " the ErrorCode type of the SOAP contract, which also gives each code's Thai message)."
        " Codes starting with `client.` need a changed request; `server.` codes are the"
        " gateway's failures. A client should treat a code it does not know as a failure of"
        " its prefix's kind.\n\n| code | HTTP | retryable | meaning |\n|---|---|---|---|\n" + rows
    )


class Problem(BaseModel):
    """An error: the stable ``code`` of the gateway's vocabulary, the HTTP status, what went wrong
    for people in ``detail`` (English) and ``messageTh`` (the code's message in Thai), whether
    the same request may succeed later, and further fields that depend on the code (``field``,
    ``reason``, ``retryAfterS``, ...)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:sso:contribution:error:client.amount_mismatch",
                    "title": "The amount differs from the amount due for these months.",
                    "status": 422,
                    "detail": "The amount due is 432.00 baht, not 400.00.",
                    "code": "client.amount_mismatch",
                    "messageTh": "จำนวนเงินไม่ตรงกับยอดที่ต้องชำระ กรุณาสอบถามยอดใหม่",
                    "retryable": False,
                    "requestId": "6f1c2e0a9b8d4c3e",
                    "expectedSatang": 43200,
                    "givenSatang": 40000,
                }
            ]
        },
    )

    type: str = Field(description="A URN naming the error: the prefix and the code.")
    title: str = Field(description="The error's general meaning.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request, for people (English).")
    code: str = Field(json_schema_extra=_published_codes)
    message_th: str = Field(
        alias="messageTh",
        description="The code's message in Thai (language th), for the person at the counter.",
    )
    retryable: bool = Field(description="Whether the same request may succeed later.")
    request_id: str = Field(alias="requestId", description="The request id, for support.")
    detail_th: str | None = Field(
        default=None,
        alias="detailTh",
        description="When the refusal turns on a date: what it is about, in Thai, with the"
        " dates in the Buddhist Era (พ.ศ.); the ISO dates are in the code's own fields. Absent"
        " otherwise.",
        examples=["สิ้นสภาพตั้งแต่เดือนพฤษภาคม พ.ศ. 2567"],
    )


def request_id(request: Request) -> str:
    """The request's id: its X-Request-ID when sensible, else a fresh one (kept for the request).
    The app's HTTP middleware settles the id (of several lines, not always the first): that."""
    state = request.scope.setdefault("state", {})  # request.state's own dict, without a State
    known = state.get("request_id")
    if isinstance(known, str):
        return known
    call = current_call()
    given = request.headers.get(REQUEST_ID_HEADER) if call is None else call.request_id
    rid = given if given is not None and SANE_REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
    state["request_id"] = rid
    return rid


def _detail_fields(details: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in details.items():
        name = to_camel(key) if "_" in key else key
        if name in _RESERVED:
            name = f"{name}Detail"
        fields[name] = value
    encoded: dict[str, Any] = jsonable_encoder(fields)
    return encoded


def problem_response(
    error: ServiceError,
    rid: str,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The problem+json answer for ``error`` (with the class's status unless told otherwise)."""
    status = status or error.http_status
    body = {
        **_detail_fields(error.details),
        "type": TYPE_PREFIX + error.code,
        "title": error.default_message,
        "status": status,
        "detail": error.message,
        "code": error.code,
        "messageTh": thai_message(error),
        "retryable": error.retryable,
        "requestId": rid,
    }
    if (detail_th := thai_detail(error)) is not None:
        body["detailTh"] = detail_th
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ssogw"'
    retry_after = error.details.get("retry_after_s")
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    elif error.retryable:
        headers["Retry-After"] = "1"
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def http_error(exc: HTTPException) -> ServiceError:
    """A Starlette HTTP error (body too large, unreadable body, ...) in the vocabulary."""
    if exc.status_code == 413:
        return PayloadTooLarge()
    if exc.status_code == 404:
        return NotFound()
    if exc.status_code == 405:
        return MethodNotAllowed()
    if exc.status_code < 500:
        error: ServiceError = ClientError(str(exc.detail))
    else:
        error = ServerError()
    error.details["http_status"] = exc.status_code
    return error


def _translate(exc: Exception, request: Request, rid: str) -> ServiceError:
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, RequestValidationError):
        return validation_error(exc, content_type=request.headers.get("content-type"))
    if isinstance(exc, HTTPException):
        # FastAPI wraps a failure while reading the body (e.g. our size limit) in a 400.
        cause = exc.__cause__
        return cause if isinstance(cause, ServiceError) else http_error(exc)
    route = getattr(request.scope.get("route"), "path", "?")
    text = mask("".join(traceback.format_exception(exc)))
    log.error("unhandled error in %s %s (request %s)\n%s", request.method, route, rid, text)
    return ServerError()


def failure_response(exc: Exception, request: Request, rid: str) -> JSONResponse:
    """What a route answers when its handler failed with ``exc``: its problem+json, noted as
    the call's outcome (a defect is logged and answered as ``server.internal``)."""
    error = _translate(exc, request, rid)
    note_call(outcome=error.code)  # the metrics' outcome label
    return problem_response(error, rid)


def refuse_declared_body(request: Request, limit: int = MAX_BODY_BYTES) -> None:
    """PayloadTooLarge when the request declares a body over ``limit`` bytes (read or not)."""
    declared = content_length(header(request, b"content-length") or "")
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"The body is over {limit} bytes.", limit=limit)


def _limited(request: Request, limit: int) -> Receive:
    """The request's receive channel, refusing a body over ``limit`` bytes as it arrives."""
    refuse_declared_body(request, limit)
    received = 0
    receive = request.receive

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise PayloadTooLarge(f"The body is over {limit} bytes.", limit=limit)
        return message

    return limited


class UnreadableRequests(Protocol):
    """What a route answers a request it could not read (its path, query or body did not
    validate), given the error that says why: that error, or one that comes first."""

    async def answer(
        self, request: Request, route: APIRoute, exc: Exception, error: ServiceError
    ) -> ServiceError:
        """The error to answer; ``exc`` is the failure, ``error`` it in the vocabulary."""
        ...


class ProblemRoute(APIRoute):
    """An API route whose every failure is answered as problem+json carrying the request id."""

    #: Where a request this route could not read goes before it is answered (None: answered
    #: at once); ``app.rest.caller.admitting_first`` makes routes that admit its caller first.
    unreadable: ClassVar[UnreadableRequests | None] = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def problem_handler(request: Request) -> Response:
            rid = request_id(request)
            try:
                limited = _limited(request, MAX_BODY_BYTES)
                return await handler(DecimalJsonRequest(request.scope, limited))
            except Exception as exc:
                error = _translate(exc, request, rid)
                if self.unreadable is not None and _unreadable(exc):
                    try:
                        error = await self.unreadable.answer(request, self, exc, error)
                    except Exception as failure:
                        error = _translate(failure, request, rid)
                note_call(outcome=error.code)  # the metrics' outcome label
                return problem_response(error, rid)

        return problem_handler


def _unreadable(exc: Exception) -> bool:
    """Whether the request did not validate or parse (not: too large, nor the handler's own)."""
    if isinstance(exc, RequestValidationError):
        return True
    unparsed = isinstance(exc, HTTPException) and exc.status_code == 400
    return unparsed and not isinstance(exc.__cause__, ServiceError)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem answers a route can give."""
    meaning = {
        400: "The request cannot be read (client.bad_request).",
        401: "No valid bearer token (client.unauthenticated).",
        403: "Token disabled, address not allowed or scope missing (client.scope_not_allowed).",
        404: "Not found (client.not_found, client.person_not_found, ...).",
        409: "Conflict with the current state (client.already_paid, ...).",
        413: "The body is too large (client.payload_too_large).",
        422: "Invalid input or refused by the contribution rules (client.invalid_input, ...).",
        429: "Rate limit exceeded; retry after the Retry-After header (client.rate_limited).",
        500: "The gateway failed (server.internal).",
        503: "A store is unavailable; retry the same request (server.store_unavailable).",
    }
    headers = {
        401: {"WWW-Authenticate": "Bearer (RFC 6750)."},
        429: {"Retry-After": "Seconds to wait before retrying."},
        503: {"Retry-After": "Seconds to wait before retrying."},
    }
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": meaning[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status in headers:
            entry["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in headers[status].items()
            }
        responses[status] = entry
    return responses


async def unmatched_route(request: Request, exc: Exception) -> JSONResponse:
    """App-wide handler: routing errors outside the routers (unknown paths) as problem+json,
    with the exception's headers (a 405's ``Allow``)."""
    assert isinstance(exc, HTTPException)
    error = http_error(exc)
    return problem_response(error, request_id(request), status=exc.status_code, headers=exc.headers)


def add_problem_schema(app: FastAPI) -> None:
    """Put the Problem schema into the app's OpenAPI components (the error answers refer to it
    under application/problem+json, where a response ``model`` would not register it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}"
            )
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]
