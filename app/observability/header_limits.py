"""Refuses requests whose headers are too many or too large, before any route sees them.

uvicorn's httptools parser has no limit of its own, so a request with a megabyte of headers or
thousands of them would otherwise be served. The answer is rendered by the caller's function,
so a partner on /soap/v1 still gets a SOAP Fault and an internal client problem+json.
``content_length`` reads the body length a request declares, for the adapters that refuse one
over their cap before reading it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import HeadersTooLarge, ServiceError


def content_length(text: str) -> int | None:
    """A Content-Length's value; None unless ASCII digits (``int()`` takes others). Past 18
    digits, ``sys.maxsize``: more than any cap, without an ``int()`` of thousands of digits."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else sys.maxsize


# (path, request content type, error, request id) -> (status, content type, body)
Render = Callable[[str, str, ServiceError, str], tuple[int, str, bytes]]


class HeaderLimitsMiddleware:
    """Answers 431 when the headers pass ``max_bytes`` in all or ``max_count`` in number."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_count: int, render: Render) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_count = max_count
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers") or []
            size = sum(len(name) + len(value) for name, value in headers)
            if len(headers) > self.max_count or size > self.max_bytes:
                await self._refuse(scope, send, count=len(headers), size=size)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, *, count: int, size: int) -> None:
        error = HeadersTooLarge(
            f"The request has {count} headers of {size} bytes; the limits are"
            f" {self.max_count} headers and {self.max_bytes} bytes.",
            max_count=self.max_count,
            max_bytes=self.max_bytes,
        )
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
        request_id = os.urandom(16).hex()
        status, media_type, body = self.render(
            scope.get("path", ""), content_type.decode("latin-1"), error, request_id
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", media_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
