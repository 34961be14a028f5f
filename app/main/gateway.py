"""The gateway's object graph: every long-lived object of one instance, wired from settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import (
    dataclass,
    field,
)
from datetime import (
    UTC,
    datetime,
)

from prometheus_client import CollectorRegistry

from app.access_report.repository import AccessReportRepository
from app.access_report.service import (
    AccessReportAccess,
    AccessReportService,
)
from app.admission.credential_checks import CredentialChecks
from app.admission.credential_vault import SecretBox
from app.admission.nonce_cache import NonceCache
from app.admission.rate_limiter import RateLimiter
from app.admission.replay_guard import CLOCK_MARGIN_S, ReplayGuard
from app.admission.service import Admission
from app.audit.access import AuditAccess
from app.audit.admin_gate import AdminGate
from app.audit.queries import AuditQueries
from app.audit.refusals.tally import RefusalTally
from app.audit.seals.checkpoint import TrustedKeys
from app.audit.seals.checkpoint_dir import CheckpointDir
from app.audit.seals.seal_key import (
    configured_keys,
    signing_key,
)
from app.audit.seals.sealer import Sealer
from app.audit.service import AuditService
from app.audit.spool.files import AuditSpool
from app.audit.writer import AuditWriter
from app.complaints.repository import ComplaintsRepository
from app.complaints.service import (
    ComplaintsAccess,
    ComplaintService,
)
from app.counter.ledger import PgLedger
from app.counter.records import Operation
from app.counter.rules import counter_rules
from app.counter.service import CounterService
from app.db.config import database_config
from app.db.database import Database
from app.db.recent_writes import RecentWrites
from app.db.sync_commit import CommitPolicy
from app.feed.access import FeedAccess
from app.feed.repository import FeedRepository
from app.feed.service import FeedService
from app.insured.import_repository import PersonImportRepository
from app.insured.person_import import PersonImportService
from app.insured.repository import InsuredRepository
from app.insured.service import InsuredAdmin
from app.observability.metrics import Metrics
from app.principals.change_feed import PrincipalChanges
from app.principals.nonce_ledger import PgNonceLedger
from app.principals.registry import Registry
from app.principals.repository import PrincipalRepository
from app.principals.service import PrincipalAdmin
from app.principals.shared_limits import FailureBudgetRepository, RateBucketRepository
from app.rates.book import RateBook
from app.rates.repository import SETTLE_S, RatesRepository
from app.rates.service import RatesAdmin
from app.refunds.repository import RefundsRepository
from app.refunds.service import RefundsService
from app.rest.api import ApiServices
from app.settings import Settings
from app.settlement.access import SettlementAccess
from app.settlement.repository import SettlementRepository
from app.settlement.service import SettlementService
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
    replay: ReplayGuard  # WS-Security nonces, taken once across the fleet
    principal_changes: PrincipalChanges  # changes of partners and clients from other instances
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
    metrics = Metrics(registry or CollectorRegistry(), commit=settings.build_commit)
    db = Database(database_config(settings, command=command), observer=metrics)
    box = SecretBox(settings.secret_key)
    # Credentials are looked up on the primary, and on a replica while it is away.
    principals = PrincipalRepository(lambda: db.primary, replicas=lambda: db.router)
    # A token is accepted while its Created is within the window either side of now: its
    # nonce is remembered for both sides, here by this instance's clock; in the fleet's ledger
    # longer by the margin the instances' clocks may differ, since another instance judges
    # the token by its own clock (``ReplayGuard``).
    seen_nonces_s = 2 * settings.wsse_window_s
    replay = ReplayGuard(
        cache=NonceCache(window_s=seen_nonces_s),
        ledger=PgNonceLedger(lambda: db.admission_pool),
        keep_s=seen_nonces_s + CLOCK_MARGIN_S,
        timeout_s=settings.wsse_nonce_timeout_s,
        outage_admits=(Operation.INQUIRE.value, Operation.STATUS.value)
        if settings.wsse_nonce_outage_admits_reads else (),
        prune_interval_s=None if command else settings.wsse_nonce_prune_s, events=metrics,
    )  # fmt: skip
    # Rate limits shared by the fleet: leases on admission's own pool, as the nonces' batches.
    limiter = RateLimiter(
        buckets=RateBucketRepository(lambda: db.admission_pool), lease_s=settings.rate_lease_s,
        lease_ttl_s=settings.rate_lease_ttl_s, timeout_s=settings.rate_lease_timeout_s,
        fallback_s=settings.rate_fallback_s, events=metrics,
    )  # fmt: skip
    admission = Admission(
        store=principals, box=box, replay=replay,
        limiter=limiter,
        trusted_proxies=settings.trusted_proxies,
        # argon2: remembered, throttled (budgets shared by the fleet), off the loop
        checks=CredentialChecks.of(
            settings, budgets=FailureBudgetRepository(lambda: db.admission_pool), events=metrics
        ),
        wsse_window_s=settings.wsse_window_s, cache_ttl_s=settings.token_cache_s,
    )  # fmt: skip
    principal_changes = PrincipalChanges(
        connect=lambda: db.connect_primary("principal-changes"), on_change=admission.forget,
        events=metrics,
    )  # fmt: skip
    # A serving instance has a spool of its own, and links the records business transactions
    # commit (a command leaves both to the serving instances).
    spool = AuditSpool(settings.spool_dir(), instance_id=settings.instance_id)
    audit = AuditWriter(
        pool_provider=lambda: db.audit_pool, max_batch=settings.audit_max_batch,
        max_wait_ms=0 if command else settings.audit_max_wait_ms, metrics=metrics,
        spool=None if command else spool,
        link_interval_s=None if command else settings.audit_link_interval_s,
        link_wait_ms=settings.audit_link_wait_ms,
        head_wait_s=settings.audit_head_wait_s, head_hold_s=settings.audit_head_hold_s,
    )  # fmt: skip
    refusals = RefusalTally(
        sink=audit, clock=clock, window_s=settings.audit_refusal_window_s,
        per_source=settings.audit_refusals_per_source, sources=settings.audit_refusal_sources,
    )  # fmt: skip
    ledger = PgLedger(
        primary=lambda: db.primary,
        router=lambda: db.router,
        commit=CommitPolicy(settings.payment_synchronous_commit, settings.payment_commit_wait_s),
    )
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

    def trusted() -> TrustedKeys:  # the seal key's public half and the earlier keys'
        return configured_keys(settings.seal_key_file(), settings.audit_seal_public_keys)

    sealer = Sealer(
        ledger=AuditQueries(pool_provider=lambda: db.audit_pool),
        store=checkpoints,  # the key is made on first use only where none is configured
        key=lambda: signing_key(settings.seal_key_file(), generate=settings.seal_key_is_local()),
        clock=clock, interval_s=settings.audit_seal_interval_s, events=metrics, trusted=trusted,
    )  # fmt: skip
    audit_trail = AuditService(
        queries=AuditQueries(pool_provider=lambda: db.primary), checkpoints=checkpoints,
        keys=trusted, sink=audit, clock=clock,
    )  # fmt: skip
    api = ApiServices(
        counter=counter,
        insured=InsuredAdmin(
            gate=gate,
            store=InsuredRepository(primary=lambda: db.primary, router=lambda: db.router),
            recent=recent,
            s40=counter_rules(settings).s40,
            s39=counter_rules(settings).s39,
            clock=clock,
        ),
        rates=RatesAdmin(
            gate=gate,
            store=RatesRepository(
                primary=lambda: db.primary,
                # A payment's last statements after it read the fingerprint (its read, insert
                # and COMMIT) each end within the command timeout, the COMMIT within its wait.
                settle_s=max(
                    SETTLE_S,
                    3 * settings.command_timeout_s + settings.payment_commit_wait_s + 5.0,
                ),
            ),
            rates=rates,
            clock=clock,
        ),
        principals=PrincipalAdmin(gate=gate, registry=principal_registry),
        audit=AuditAccess(gate=gate, service=audit_trail),
        stats=PaymentStats(gate=gate, store=StatsRepository(router=lambda: db.router)),
        gate=gate,
    )
    settlement_files = SettlementService(
        store=SettlementRepository(lambda: db.primary),
        events=metrics,
        clock=clock,
        cutoff=settings.settlement_cutoff,
        grace_s=settings.settlement_grace_s,
        sink=audit,
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
        replay=replay,
        principal_changes=principal_changes,
        counter=counter,
        registry=principal_registry,
        rates=rates,
        api=api,
        settlements=SettlementAccess(gate=gate, service=settlement_files),
        person_import=PersonImportService(
            store=PersonImportRepository(lambda: db.primary), prefixes=settings.prefixes()
        ),
        refunds=RefundsService(
            source=RefundsRepository(lambda: db.primary), rates=ledger, sink=audit, clock=clock
        ),
        access_reports=AccessReportAccess(gate=gate, service=access_report_builder),
        complaints=ComplaintsAccess(gate=gate, service=complaint_cases),
        complaint_cases=complaint_cases,
        feeds=FeedAccess(gate=gate, service=feed_exports),
        audit_trail=audit_trail,
        access_report_builder=access_report_builder,
        settlement_files=settlement_files,
        feed_exports=feed_exports,
    )
