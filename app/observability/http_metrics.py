"""ASGI middleware: request id, in-flight gauge, request metrics and one JSON log line per call.

Labels come from the call context the service layer fills in (operation, partner, outcome) or,
for routes that do not reach a counter use case, from the route template and status code —
never from the raw path, which may carry a national ID.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.call_context import SANE_REQUEST_ID, begin_call
from app.observability.logs import FieldsLogger
from app.observability.metrics import Metrics

log = logging.getLogger("ssogw.access")
_access_line = FieldsLogger(log, "request")
REQUEST_ID_HEADER = b"x-request-id"


def _protocol(path: str) -> str:
    if path.startswith("/soap/"):
        return "soap"
    if path.startswith("/api/"):
        return "rest"
    return "ops"


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path", None)
    return str(template) if template else "unmatched"


class HttpMetricsMiddleware:
    """Wraps the app; measures and logs every HTTP request."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled children by label values: ``labels()`` validates and locks on every
        # call; the label sets are few (bounded by design), so each is looked up once.
        self._children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self._in_flight: dict[str, Any] = {}

    def _observed(self, labels: tuple[str, str, str, str]) -> tuple[Any, Any]:
        children = self._children.get(labels)
        if children is None:
            if len(self._children) > 10_000:
                self._children.clear()
            children = self._children[labels] = (
                self.metrics.requests.labels(*labels),
                self.metrics.request_seconds.labels(*labels[:3]),  # no partner on a histogram
            )
        return children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or ()
        given = dict(headers).get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = given if SANE_REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        # Adapters read the request id from the headers: make sure it is there.
        if given != request_id:
            scope["headers"] = [*(h for h in headers if h[0] != REQUEST_ID_HEADER), id_header]
        protocol = _protocol(scope.get("path", ""))
        ctx = begin_call(request_id, protocol)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        in_flight = self._in_flight.get(protocol)
        if in_flight is None:
            in_flight = self._in_flight[protocol] = self.metrics.in_flight.labels(protocol)
        in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            in_flight.dec()
            elapsed = time.perf_counter() - started
            operation = ctx.operation or f"{scope.get('method', 'GET')} {_route_template(scope)}"
            outcome = ctx.outcome or ("ok" if status < 400 else f"http_{status}")
            partner = ctx.partner or "anonymous"
            if protocol != "ops":
                count, seconds = self._observed((protocol, operation, outcome, partner))
                count.inc()
                seconds.observe(elapsed)
            line: dict[str, Any] = {
                "protocol": protocol,
                "operation": operation,
                "outcome": outcome,
                "partner": partner,
            }
            if ctx.reason is not None:  # why a refused caller was refused, told only here
                line["reason"] = ctx.reason
            line["status"] = status
            line["durationMs"] = round(elapsed * 1000, 2)
            _access_line.info(line)
