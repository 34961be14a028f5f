"""A call handed to an ASGI endpoint directly, without a server: its scope and receive."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope


def soap_post(body: bytes) -> tuple[Scope, Receive]:
    """The ASGI scope and receive of a SOAP 1.1 POST of ``body`` from 127.0.0.1."""
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/soap/v1",
        "headers": [
            (b"content-type", b"text/xml; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return scope, receive
