"""create_app(settings): the gateway as an ASGI app, its routers and edge middleware."""

from __future__ import annotations

from collections.abc import (
    AsyncIterator,
    Callable,
)
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.access_report.routes import access_report_router
from app.audit.admin_gate import (
    ADMIN_SCOPE,
    AUDIT_SCOPE,
)
from app.complaints.routes import complaints_router
from app.counter.routes import PlainInquiry
from app.errors import HeadersTooLarge, InvalidInput, InvalidSoapEnvelope, ServiceError
from app.feed.routes import feed_router
from app.main.edge import EdgedApp
from app.main.gateway import build_gateway, wall_clock
from app.main.hot_routes import HotRoutes
from app.main.lifecycle import start_gateway, stop_gateway
from app.observability.header_limits import HeaderLimitsMiddleware
from app.observability.health import health_router
from app.observability.http_metrics import HttpMetricsMiddleware
from app.observability.metrics_route import metrics_router
from app.rest.api import (
    PREFIX as API_PREFIX,
)
from app.rest.api import (
    api_router,
    gated_routes,
)
from app.rest.api_docs import add_api_docs
from app.rest.problem import (
    PROBLEM_JSON,
    add_problem_schema,
    http_error,
    problem_response,
    unmatched_route,
)
from app.settings import Settings
from app.settlement.routes import settlements_router
from app.soap.faults import render_fault
from app.soap.router import SOAP_PATH, request_id_of, soap_endpoint, soap_routes
from app.soap.versions import SoapVersion
from app.workers.link import WorkerLink


def render_edge_refusal(
    path: str, content_type: str, error: ServiceError, request_id: str
) -> tuple[int, str, bytes]:
    """A refusal made before routing, in the caller's protocol: a SOAP Fault on /soap, else
    problem+json."""
    if path.startswith("/soap/"):
        soap12 = "application/soap+xml" in content_type.lower()
        fault = render_fault(
            error,
            version=SoapVersion.V12 if soap12 else SoapVersion.V11,
            request_id=request_id,
            http_status=error.http_status,
        )
        return fault.status_code, fault.content_type, fault.body
    problem = problem_response(error, request_id)
    return problem.status_code, PROBLEM_JSON, bytes(problem.body)


def render_cut(
    reason: str, path: str, content_type: str, request_id: str
) -> tuple[int, str, bytes]:
    """What ``ssogw serve`` tells a request it cuts (``app.observability.guarded_http``), in
    the caller's protocol: a body that did not arrive in time (``body_timeout``, in the words
    of the SOAP endpoint's own read bound), or a request line and headers without end
    (``header_too_large``)."""
    if reason == "header_too_large":
        error: ServiceError = HeadersTooLarge(
            "The request line and headers are too large; the connection is closed."
        )
        return render_edge_refusal(path, content_type, error, request_id)
    message = "The request body did not arrive in time; the connection is closed."
    if not path.startswith("/soap/"):
        error = InvalidInput(message, reason="timeout")
        return render_edge_refusal(path, content_type, error, request_id)
    # As the SOAP endpoint answers a body it stopped waiting for: a Client/Sender fault.
    soap12 = "application/soap+xml" in content_type.lower()
    fault = render_fault(
        InvalidSoapEnvelope(message, reason="timeout"),
        version=SoapVersion.V12 if soap12 else SoapVersion.V11,
        request_id=request_id,
    )
    return fault.status_code, fault.content_type, fault.body


async def unmatched(request: Request, exc: Exception) -> Response:
    """Routing errors outside the routers (an unknown path), in the caller's protocol: a SOAP
    fault under /soap/ (a partner's toolkit reads no JSON), else problem+json."""
    assert isinstance(exc, StarletteHTTPException)
    path: str = request.scope["path"]
    if not path.startswith("/soap/"):
        return await unmatched_route(request, exc)
    content_type = request.headers.get("content-type", "")
    status, media_type, body = render_edge_refusal(
        path, content_type, http_error(exc), request_id_of(request)
    )
    return Response(body, status, headers=exc.headers, media_type=media_type)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    worker: WorkerLink | None = None,
) -> FastAPI:
    """The gateway as an ASGI app; settings default to the environment and the local pair,
    the business clock to the wall clock (``build_gateway``). ``worker``: this app is one
    worker of ``ssogw serve --workers N`` (its line to the supervisor: /metrics answers for
    the whole group, /livez names the worker)."""
    settings = settings or Settings()
    settings.refuse_published_secret_key()  # PublishedSecretKey: beyond loopback, a known key
    gw = build_gateway(settings, clock=clock or wall_clock)
    state: dict[str, Any] = {"draining": False}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await start_gateway(gw)
        if worker is not None:
            await worker.start(own_exposition)  # tells the supervisor this worker serves
        try:
            yield
        finally:
            state["draining"] = True
            try:
                await stop_gateway(gw)
            finally:
                if worker is not None:
                    await worker.stop()

    def audit_path() -> str | None:
        # Where an inquiry's audit record would be committed now: the primary (the router's
        # last probe), else this instance's spool.
        if gw.db.router.primary_up:
            return "primary"
        return "spool" if gw.audit.spool_writable() else None

    async def readiness() -> tuple[bool, dict[str, Any]]:
        # Ready = this instance can answer inquiries: a fresh read path and a writable audit
        # path. The primary's own state is ssogw_primary_up (and SsogwPrimaryDown): without
        # it confirms answer the retryable server.store_unavailable, and the instance stays in
        # the load balancer for inquiries (docs/operations.md, "Failover").
        if state["draining"]:
            return False, {"reason": "draining"}
        router = gw.db.router
        # Only when the probe knows no path: ask the primary now (its pool reconnects).
        read_path = router.has_fresh_read_path() or await gw.db.primary_reachable()
        audit = audit_path()
        ready = read_path and audit is not None
        gw.metrics.ready.set(1 if ready else 0)
        return ready, {
            "readPath": read_path,
            "auditPath": audit,
            "primary": router.primary_up,
            "replicas": router.status(),
        }

    app = EdgedApp(
        title="SSO Contribution Gateway",
        version="1.0.0",
        description=(
            "Section 39 and Section 40 social-security contributions through partner counters."
        ),
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load from a CDN: add_api_docs serves them from here
        redoc_url=None,
        # Starlette's redirect of /soap/v1/ to /soap/v1 names the request's own Host and
        # scheme (http behind the ingress), not the public address: an unknown path is refused.
        redirect_slashes=False,
    )
    add_api_docs(app)
    app.state.gateway = gw
    app.state.begin_drain = lambda: state.update(draining=True)
    soap = soap_endpoint(
        counter=gw.counter,
        max_body_bytes=settings.soap_max_body_bytes,
        max_depth=settings.soap_max_depth,
        max_elements=settings.soap_max_elements,
        read_timeout_s=settings.soap_read_timeout_s,
        public_base_url=settings.public_base_url,
        trusts_proxy=gw.admission.is_trusted_proxy,
    )
    # Every HTTP request meets the header limits, then the metrics (which see every call the
    # limits let through), then the hot routes; the rest goes on to the framework.
    app.set_edge(
        HeaderLimitsMiddleware(
            HttpMetricsMiddleware(
                HotRoutes(
                    app.framework(),
                    soap_path=SOAP_PATH,
                    soap=soap.answer,
                    inquiry_prefix=f"{API_PREFIX}/insured/",
                    inquiry_suffix="/contributions",
                    inquiry=PlainInquiry(gw.counter),
                ),
                metrics=gw.metrics,
            ),
            max_bytes=settings.max_header_bytes,
            max_count=settings.max_header_count,
            render=render_edge_refusal,
        )
    )
    app.add_exception_handler(StarletteHTTPException, unmatched)
    add_problem_schema(app)
    # Routes are matched in order and partners' calls are most of the traffic, so the SOAP
    # endpoint comes first (no other router has a path under /soap).
    app.include_router(soap_routes(soap, SOAP_PATH))
    app.include_router(health_router(readiness, worker=None if worker is None else worker.index))
    # Before the API router: its catch-all answers 404/405 for anything under /api/v1.
    # Each router's requests that do not validate are refused once the caller is admitted.
    admin_routes = gated_routes(gw.api.gate, ADMIN_SCOPE)
    app.include_router(settlements_router(gw.settlements, route_class=admin_routes))
    app.include_router(
        access_report_router(
            reports=gw.access_reports, route_class=gated_routes(gw.api.gate, AUDIT_SCOPE)
        )
    )
    app.include_router(complaints_router(complaints=gw.complaints, route_class=admin_routes))
    app.include_router(feed_router(feeds=gw.feeds, route_class=admin_routes))
    app.include_router(api_router(gw.api))

    def refresh_gauges() -> None:
        # From the router's last probe and the writer's own counts: never the database.
        db, metrics = gw.db, gw.metrics
        for name, (size, in_use, most) in db.pool_sizes().items():
            metrics.pool_size.labels(name).set(size)
            metrics.pool_in_use.labels(name).set(in_use)
            metrics.pool_max.labels(name).set(most)
        primary_up = db.router.primary_up
        metrics.primary_up.set(1 if primary_up else 0)
        ready = (
            not state["draining"] and db.router.has_fresh_read_path() and audit_path() is not None
        )
        metrics.ready.set(1 if ready else 0)
        metrics.audit_queued.set(gw.audit.queued())
        metrics.audit_spool_bytes.set(gw.audit.spooled_bytes())

    async def own_exposition() -> bytes:
        refresh_gauges()
        return await gw.metrics.exposition()

    group = worker.group_exposition if worker is not None else None
    app.include_router(metrics_router(gw.metrics, refresh_gauges, group=group))
    return app
