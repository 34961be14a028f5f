"""The gateway's ASGI app: its own edge in front of the framework.

FastAPI puts layers of its own around every request before the app's middleware sees it: a
check for an OpenTelemetry provider (three provider look-ups a call), Starlette's app, its
ServerErrorMiddleware, FastAPI's exception telemetry and body limit (none set here): some 5 %
of a REST inquiry's CPU (py-spy, bench.asgi_cost), and nothing the two hot endpoints need,
since each answers every failure itself (``app.main.hot_routes``). So the gateway's edge — the
header limits, then the HTTP metrics, then the hot routes — stands in front of the framework
rather than inside it: an HTTP request meets the edge first, and what the hot routes do not
take goes on through the whole framework, its layers as before.

What this changes for a request that goes on: the metrics and the access log now also see the
500 that ServerErrorMiddleware answers for a defect no route caught (and that answer carries
the request id, as every other does). A hot call's span: FastAPI's native telemetry, when an
OpenTelemetry provider is configured (the gateway configures none), no longer sees the two hot
calls — whose paths carry national IDs, which are never to leave the process.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


class EdgedApp(FastAPI):
    """FastAPI behind the gateway's edge: ``edge(framework)`` takes every HTTP request first,
    where ``framework`` is this app as FastAPI alone would serve it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._edge: ASGIApp | None = None

    def framework(self) -> ASGIApp:
        """This app as FastAPI serves it, without the edge: what the edge sends requests on to."""
        return super().__call__

    def set_edge(self, edge: ASGIApp) -> None:
        """The edge every HTTP request passes first (built around ``framework()``)."""
        self._edge = edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = self._edge
        if edge is not None and scope["type"] == "http":
            await edge(scope, receive, send)
        else:  # the lifespan, a websocket
            await super().__call__(scope, receive, send)
