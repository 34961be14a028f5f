"""Which requests take the hot routes, and that everything else goes on to the app."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from app.main.hot_routes import HotRoutes


class _Seen:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls.append(("app", scope["method"], scope["path"]))
        await PlainTextResponse("app")(scope, receive, send)

    async def soap(self, scope: Scope, receive: Receive) -> Response:
        self.calls.append(("soap", scope["method"]))
        return PlainTextResponse("soap")

    async def inquiry(self, request: Request, national_id: str, section: int | None) -> Response:
        self.calls.append(("inquiry", national_id, section))
        return PlainTextResponse("inquiry")


async def _call(method: str, path: str, query: bytes = b"") -> list[tuple[Any, ...]]:
    seen = _Seen()
    hot = HotRoutes(
        seen.app,
        soap_path="/soap/v1",
        soap=seen.soap,
        inquiry_prefix="/api/v1/insured/",
        inquiry_suffix="/contributions",
        inquiry=seen.inquiry,
    )
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [],
    }
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await hot(scope, receive, send)
    assert sent[0]["status"] == 200
    return seen.calls


async def test_a_soap_post_goes_to_the_soap_endpoint() -> None:
    assert await _call("POST", "/soap/v1") == [("soap", "POST")]


@pytest.mark.parametrize(
    ("query", "section"), [(b"", None), (b"section=39", 39), (b"section=40", 40)]
)
async def test_a_plain_inquiry_goes_to_the_inquiry(query: bytes, section: int | None) -> None:
    path = "/api/v1/insured/3100600445635/contributions"
    assert await _call("GET", path, query) == [("inquiry", "3100600445635", section)]


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "/soap/v1", b"wsdl"),  # the contract: the router's
        ("PUT", "/soap/v1", b""),
        ("POST", "/soap/v1/", b""),
        ("POST", "/api/v1/insured/3100600445635/contributions", b""),
        ("GET", "/api/v1/insured//contributions", b""),  # no ID: the router refuses it
        ("GET", "/api/v1/insured/" + "1" * 65 + "/contributions", b""),  # over the bound
        ("GET", "/api/v1/insured/31006/00445635/contributions", b""),
        ("GET", "/api/v1/insured/3100600445635/contributions", b"section=41"),
        ("GET", "/api/v1/insured/3100600445635/contributions", b"section=40&x=1"),
        ("GET", "/api/v1/insured/3100600445635/contributions", b"section=40%00"),
        ("GET", "/api/v1/insured/3100600445635", b""),
        ("GET", "/metrics", b""),
    ],
)
async def test_anything_else_goes_the_long_way(method: str, path: str, query: bytes) -> None:
    assert await _call(method, path, query) == [("app", method, path)]
