"""The partners' two hot calls straight to their endpoints, past the framework's routing.

Nearly all traffic is two calls: the SOAP endpoint's POST and the REST inquiry's GET. On their
way through FastAPI they pass Starlette's exception middleware, FastAPI's body-limit and
exit-stack middleware, the router's matching of every route, and the route's request and
response wrappers: about 60 µs a call under load (bench/RESULTS.md), and nothing these two
need, since each endpoint answers every failure itself. ``HotRoutes`` is the innermost layer of
the app's edge (``app.main.edge``: inside the header limits and the HTTP metrics, which still
see every call, and in front of the whole framework) and sends those two straight to their
endpoints; every other request goes on to FastAPI, its outer layers and all.

Only a plain REST inquiry is taken (a national ID of at most 64 characters without a slash, and
no query but ``section=39`` or ``section=40``): any other shape goes the long way, so the
route's validation and refusals stay the only ones.

A hot call's ``scope["route"]`` names its route's path template, as the router would: the
metrics and logs fall back to it for a call refused before its operation is known.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

#: The SOAP endpoint: reads the request from the raw scope and messages itself, answers every
#: failure itself; its answer is any ASGI app.
Endpoint = Callable[[Scope, Receive], Awaitable[ASGIApp]]
#: The plain REST inquiry: the request, its national ID and its section (or None); its answer
#: is any ASGI app (a Response or lighter).
Inquiry = Callable[[Request, str, int | None], Awaitable[ASGIApp]]

_SECTIONS: Final = {b"": None, b"section=39": 39, b"section=40": 40}
_MAX_ID: Final = 64  # the route's own bound on the path's national ID


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    """What is read of ``scope["route"]`` after a call (app.observability.http_metrics): the
    path template of the route the call would have taken."""

    path: str


class HotRoutes:
    """ASGI middleware: POST ``soap_path`` to ``soap``, a plain GET of
    ``{inquiry_prefix}{nationalId}{inquiry_suffix}`` to ``inquiry``, the rest to ``app``."""

    __slots__ = (
        "_app",
        "_inquiry",
        "_inquiry_route",
        "_prefix",
        "_soap",
        "_soap_path",
        "_soap_route",
        "_suffix",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        soap_path: str,
        soap: Endpoint,
        inquiry_prefix: str,
        inquiry_suffix: str,
        inquiry: Inquiry,
    ) -> None:
        self._app = app
        self._soap_path = soap_path
        self._soap = soap
        self._prefix = inquiry_prefix
        self._suffix = inquiry_suffix
        self._inquiry = inquiry
        self._soap_route = RouteTemplate(soap_path)
        self._inquiry_route = RouteTemplate(f"{inquiry_prefix}{{nationalId}}{inquiry_suffix}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            method: str = scope["method"]
            if method == "POST" and path == self._soap_path:
                scope["route"] = self._soap_route
                answer = await self._soap(scope, receive)
                await answer(scope, receive, send)
                return
            if method == "GET" and path.startswith(self._prefix) and path.endswith(self._suffix):
                national_id = path[len(self._prefix) : len(path) - len(self._suffix)]
                query = scope.get("query_string", b"")
                if (
                    0 < len(national_id) <= _MAX_ID
                    and "/" not in national_id
                    and query in _SECTIONS
                ):
                    scope["route"] = self._inquiry_route
                    request = Request(scope, receive)
                    answer = await self._inquiry(request, national_id, _SECTIONS[query])
                    await answer(scope, receive, send)
                    return
        await self._app(scope, receive, send)
