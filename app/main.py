"""create_app(settings): the one place that wires pools, stores, services and adapters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.access_report.repository import AccessReportRepository
from app.access_report.routes import access_report_router
from app.access_report.service import AccessReportAccess, AccessReportService
from app.admission.credential_checks import CredentialChecks
from app.admission.credential_vault import SecretBox
from app.admission.nonce_cache import NonceCache
from app.admission.rate_limiter import RateLimiter
from app.admission.service import Admission
from app.audit.access import AuditAccess
from app.audit.admin_gate import ADMIN_SCOPE, AUDIT_SCOPE, AdminGate
from app.audit.queries import AuditQueries
from app.audit.refusals.tally import RefusalTally
from app.audit.seals.checkpoint_dir import CheckpointDir
from app.audit.seals.seal_key import configured_keys, signing_key
from app.audit.seals.sealer import Sealer
from app.audit.service import AuditService
from app.audit.spool import AuditSpool
from app.audit.writer import AuditWriter
from app.complaints.repository import ComplaintsRepository
from app.complaints.routes import complaints_router
from app.complaints.service import ComplaintsAccess, ComplaintService
from app.counter.ledger import PgLedger
from app.counter.rules import counter_rules
from app.counter.service import CounterService
from app.db.config import database_config
from app.db.database import Database
from app.db.recent_writes import RecentWrites
from app.errors import ServiceError
from app.feed.access import FeedAccess
from app.feed.repository import FeedRepository
from app.feed.routes import feed_router
from app.feed.service import FeedService
from app.insured.import_repository import PersonImportRepository
from app.insured.person_import import PersonImportService
from app.insured.repository import InsuredRepository
from app.insured.service import InsuredAdmin
from app.observability.header_limits import HeaderLimitsMiddleware
from app.observability.health import health_router
from app.observability.http_metrics import HttpMetricsMiddleware
from app.observability.metrics import Metrics
from app.observability.metrics_route import metrics_router
from app.principals.registry import Registry
from app.principals.repository import PrincipalRepository
from app.principals.service import PrincipalAdmin
from app.rates.book import RateBook
from app.rates.repository import RatesRepository
from app.rates.service import RatesAdmin
from app.refunds.repository import RefundsRepository
from app.refunds.service import RefundsService
from app.rest.api import ApiServices, api_router, gated_routes
from app.rest.problem import (
    PROBLEM_JSON,
    add_problem_schema,
    problem_response,
    unmatched_route,
)
from app.settings import Settings
from app.settlement.access import SettlementAccess
from app.settlement.repository import SettlementRepository
from app.settlement.routes import settlements_router
from app.settlement.service import SettlementService
from app.soap.faults import render_fault
from app.soap.router import soap_router
from app.soap.versions import SoapVersion
from app.stats.repository import StatsRepository
from app.stats.service import PaymentStats


@dataclass(frozen=True, slots=True)
class Gateway:
    """Every long-lived object of one instance."""

    settings: Settings
    metrics: Metrics
    db: Database
    audit: AuditWriter
    refusals: RefusalTally  # in front of ``audit`` for the calls of callers not yet admitted
    sealer: Sealer
    admission: Admission
    counter: CounterService
    registry: Registry
    rates: RateBook
    api: ApiServices  # the use cases of the REST API under /api/v1
    settlements: SettlementAccess
    person_import: PersonImportService
    refunds: RefundsService
    access_reports: AccessReportAccess
    complaints: ComplaintsAccess
    complaint_cases: ComplaintService
    feeds: FeedAccess
    # The use cases an operator's command calls directly, naming the operator (protocol cli).
    audit_trail: AuditService
    access_report_builder: AccessReportService
    settlement_files: SettlementService
    feed_exports: FeedService
    background: list[asyncio.Task[None]] = field(default_factory=list)


def wall_clock() -> datetime:
    """The real time, aware UTC: the business clock of a running gateway."""
    return datetime.now(UTC)


def build_gateway(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], datetime] = wall_clock,
    command: bool = False,
) -> Gateway:
    """Wire the object graph (no I/O: pools open in ``start_gateway``).

    ``clock`` (aware UTC instants) is the business clock every service reads for "now":
    business dates, the cut-off, audit and complaint times, feed and report windows. The
    WSSE freshness check (``Admission``) keeps the wall clock, since partners' tokens carry
    theirs. ``command``: for one operator command (``open_gateway``): the primary only, and
    audit records committed at once, never to the serving instance's spool.
    """
    metrics = Metrics(registry or CollectorRegistry())
    db = Database(database_config(settings, command=command), observer=metrics)
    box = SecretBox(settings.secret_key)
    principals = PrincipalRepository(lambda: db.primary)
    admission = Admission(
        store=principals, box=box, nonces=NonceCache(window_s=2 * settings.wsse_window_s),
        limiter=RateLimiter(),
        trusted_proxies=settings.trusted_proxies,
        checks=CredentialChecks.of(settings),  # argon2: remembered, throttled, off the loop
        wsse_window_s=settings.wsse_window_s, cache_ttl_s=settings.token_cache_s,
    )  # fmt: skip
    # A serving instance has a spool of its own, and links the records business transactions
    # commit (a command leaves both to the serving instances).
    spool = AuditSpool(settings.spool_dir(), instance_id=settings.instance_id)
    audit = AuditWriter(
        pool_provider=lambda: db.audit_pool, max_batch=settings.audit_max_batch,
        max_wait_ms=0 if command else settings.audit_max_wait_ms, metrics=metrics,
        spool=None if command else spool,
        link_interval_s=None if command else settings.audit_link_interval_s,
    )  # fmt: skip
    refusals = RefusalTally(
        sink=audit, clock=clock, window_s=settings.audit_refusal_window_s,
        per_source=settings.audit_refusals_per_source, sources=settings.audit_refusal_sources,
    )  # fmt: skip
    ledger = PgLedger(primary=lambda: db.primary, router=lambda: db.router)
    rates = RateBook(ledger)
    recent = RecentWrites()  # shared: a record read after a payment or an admin change sees it
    counter = CounterService(
        admission=admission,
        audit=refusals,
        reader=ledger,
        ledger=ledger,
        rates=rates,
        recent=recent,
        rules=counter_rules(settings),
        events=metrics,
        clock=clock,
    )
    principal_registry = Registry(store=principals, box=box, hashing=admission.checks.hashing)
    gate = AdminGate(
        admission=admission, audit=refusals, prefixes=settings.prefixes(), events=metrics,
        clock=clock,
    )  # fmt: skip
    # With a sink, a service records the calls of a command's operator itself (the API's calls
    # are recorded by the gate, never twice).
    checkpoints = CheckpointDir(settings.seal_dir())
    sealer = Sealer(
        ledger=AuditQueries(pool_provider=lambda: db.audit_pool),
        store=checkpoints,  # the key is made on first use only where none is configured
        key=lambda: signing_key(settings.seal_key_file(), generate=settings.seal_key_is_local()),
        clock=clock, interval_s=settings.audit_seal_interval_s, events=metrics,
    )  # fmt: skip
    audit_trail = AuditService(
        queries=AuditQueries(pool_provider=lambda: db.primary), checkpoints=checkpoints,
        keys=lambda: configured_keys(settings.seal_key_file(), settings.audit_seal_public_keys),
        sink=audit, clock=clock,
    )  # fmt: skip
    api = ApiServices(
        counter=counter,
        insured=InsuredAdmin(
            gate=gate,
            store=InsuredRepository(primary=lambda: db.primary, router=lambda: db.router),
            recent=recent,
            s40=counter_rules(settings).s40,
            clock=clock,
        ),
        rates=RatesAdmin(
            gate=gate,
            store=RatesRepository(primary=lambda: db.primary),
            rates=rates,
            clock=clock,
        ),
        principals=PrincipalAdmin(gate=gate, registry=principal_registry),
        audit=AuditAccess(gate=gate, service=audit_trail),
        stats=PaymentStats(gate=gate, store=StatsRepository(router=lambda: db.router)),
        gate=gate,
    )
    settlement_files = SettlementService(
        store=SettlementRepository(lambda: db.primary), events=metrics
    )
    complaint_cases = ComplaintService(
        store=ComplaintsRepository(pool_provider=lambda: db.primary), sink=audit, clock=clock
    )
    access_report_builder = AccessReportService(
        store=AccessReportRepository(pool_provider=lambda: db.primary), sink=audit, clock=clock
    )
    feed_exports = FeedService(
        store=FeedRepository(pool_provider=lambda: db.primary), sink=audit, clock=clock
    )
    return Gateway(
        settings=settings,
        metrics=metrics,
        db=db,
        audit=audit,
        refusals=refusals,
        sealer=sealer,
        admission=admission,
        counter=counter,
        registry=principal_registry,
        rates=rates,
        api=api,
        settlements=SettlementAccess(gate=gate, service=settlement_files),
        person_import=PersonImportService(
            store=PersonImportRepository(lambda: db.primary), prefixes=settings.prefixes()
        ),
        refunds=RefundsService(source=RefundsRepository(lambda: db.primary), rates=ledger),
        access_reports=AccessReportAccess(gate=gate, service=access_report_builder),
        complaints=ComplaintsAccess(gate=gate, service=complaint_cases),
        complaint_cases=complaint_cases,
        feeds=FeedAccess(gate=gate, service=feed_exports),
        audit_trail=audit_trail,
        access_report_builder=access_report_builder,
        settlement_files=settlement_files,
        feed_exports=feed_exports,
    )


async def start_gateway(gw: Gateway, *, background: bool = True) -> None:
    """Claim the audit spool (SpoolUnusable: this instance must not serve), open the pools and
    start the background tasks (none when ``background`` is false)."""
    await gw.audit.claim_spool()
    await gw.db.open()
    await gw.audit.start()
    if not background:
        return
    await gw.sealer.start()
    await gw.refusals.start()
    gw.background.append(
        asyncio.create_task(
            gw.complaint_cases.publish_open_counts(gw.metrics.open_complaints_counted),
            name="open-complaints-gauge",
        )
    )


async def stop_gateway(gw: Gateway) -> None:
    """Flush the audit queue and seal the chain head, stop the tasks, close the pools."""
    for task in gw.background:
        task.cancel()
    await asyncio.gather(*gw.background, return_exceptions=True)
    gw.background.clear()
    try:
        await gw.refusals.stop()  # its counts go through the writer: before it stops
        await gw.audit.stop()
    finally:
        try:
            await gw.sealer.stop()  # after the flush, so the last records are sealed too
        finally:
            await gw.db.close()


@asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """The gateway opened for one operator command: no HTTP, no background tasks."""
    gw = build_gateway(settings, command=True)
    try:  # a pool that did open is closed even if the next one fails
        await start_gateway(gw, background=False)
        yield gw
    finally:
        await stop_gateway(gw)


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


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None
) -> FastAPI:
    """The gateway as an ASGI app; settings default to the environment and the local pair,
    the business clock to the wall clock (``build_gateway``)."""
    settings = settings or Settings()
    settings.refuse_published_secret_key()  # PublishedSecretKey: beyond loopback, a known key
    gw = build_gateway(settings, clock=clock or wall_clock)
    state: dict[str, Any] = {"draining": False}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await start_gateway(gw)
        try:
            yield
        finally:
            state["draining"] = True
            await stop_gateway(gw)

    async def readiness() -> tuple[bool, dict[str, Any]]:
        if state["draining"]:
            return False, {"reason": "draining"}
        primary = await gw.db.primary_reachable()
        read_path = gw.db.router.has_fresh_read_path()
        ready = primary and read_path
        gw.metrics.ready.set(1 if ready else 0)
        return ready, {"primary": primary, "replicas": gw.db.router.status()}

    app = FastAPI(
        title="SSO Contribution Gateway",
        version="1.0.0",
        description=(
            "Section 39 and Section 40 social-security contributions through partner counters."
        ),
        lifespan=lifespan,
    )
    app.state.gateway = gw
    app.state.begin_drain = lambda: state.update(draining=True)
    app.add_middleware(HttpMetricsMiddleware, metrics=gw.metrics)
    app.add_middleware(
        HeaderLimitsMiddleware,
        max_bytes=settings.max_header_bytes,
        max_count=settings.max_header_count,
        render=render_edge_refusal,
    )
    app.add_exception_handler(StarletteHTTPException, unmatched_route)
    add_problem_schema(app)
    # Routes are matched in order and partners' calls are most of the traffic, so the SOAP
    # endpoint comes first (no other router has a path under /soap).
    app.include_router(
        soap_router(
            counter=gw.counter,
            max_body_bytes=settings.soap_max_body_bytes,
            max_depth=settings.soap_max_depth,
            max_elements=settings.soap_max_elements,
            read_timeout_s=settings.soap_read_timeout_s,
            public_base_url=settings.public_base_url,
            trusts_proxy=gw.admission.is_trusted_proxy,
        )
    )
    app.include_router(health_router(readiness))
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
    app.include_router(
        metrics_router(
            gw.metrics,
            gw.db.pool_sizes,
            # From the router's last probe: a scrape never waits on the database.
            ready=lambda: (
                not state["draining"]
                and gw.db.router.primary_up
                and gw.db.router.has_fresh_read_path()
            ),
        )
    )
    return app
