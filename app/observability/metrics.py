"""Every metric of the gateway, declared once on an injected registry; labels are bounded.

Labels: protocol, operation (a SOAP operation name or a REST route template, never a raw
path), outcome (``ok`` or an error code), partner (a partner or client name, from the
registry, never free text). Never a national ID, an address or free text. ``partner`` is on
counters only, never on a histogram: a histogram's series are its buckets times its label
sets, and 100 partners × operations × outcomes × 14 buckets made a scrape of 171,000 samples.
Latency by partner is not lost: a slow partner shows in its error and request rates, and the
access log line of every call names it.

Besides the gateway's own: the process (CPU seconds, resident memory, open files), the Python
runtime and its garbage collector, from prometheus_client's collectors on the same registry.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib import metadata

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector

from app.observability.metric_families import FastCounter, FastHistogram, write_out

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Waits that should be nothing: an idle connection handed over, the loop back on time.
WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


def _version() -> str:
    try:
        return metadata.version("ssogw")
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """The gateway's Prometheus metrics."""

    def __init__(self, registry: CollectorRegistry, *, commit: str = "unknown") -> None:
        self.registry = registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        if GC_COLLECTOR is not None:  # CPython only
            GCCollector(registry=registry)
        self.build_info = Gauge(
            "ssogw_build_info",
            "1, labelled with the running gateway's version, commit and Python version.",
            ["version", "commit", "python"],
            registry=registry,
        )
        self.build_info.labels(_version(), commit, platform.python_version()).set(1)
        # The two families with many series: kept apart from ``registry`` and written out by
        # ``exposition()`` at the cost of a string join (``metric_families``).
        self.requests = FastCounter(
            "ssogw_requests_total",
            "Requests handled, by protocol, operation, outcome and partner.",
            ["protocol", "operation", "outcome", "partner"],
        )
        self.request_seconds = FastHistogram(
            "ssogw_request_duration_seconds",
            "Request duration, by protocol, operation and outcome (no partner: see above).",
            ["protocol", "operation", "outcome"],
            buckets=LATENCY_BUCKETS,
        )
        self.in_flight = Gauge(
            "ssogw_requests_in_flight",
            "Requests being handled now.",
            ["protocol"],
            registry=registry,
        )
        self.admission_refusals = Counter(
            "ssogw_admission_refusals_total",
            "Calls refused at admission, by reason (bad_password, ip_not_allowed, throttled,"
            " rate_limited, ...; docs/operations.md) and protocol.",
            ["reason", "protocol"],
            registry=registry,
        )
        self.rate_leases = Counter(
            "ssogw_rate_leases_total",
            "Leases asked of the shared rate-limit buckets: granted, empty (the principal is at"
            " its limit) or unreachable (this instance's own limit holds meanwhile).",
            ["result"],
            registry=registry,
        )
        self.failure_budgets = Counter(
            "ssogw_failure_budgets_total",
            "Statements asked of the fleet's credential-failure budgets: answered, or"
            " unreachable (this instance's own budgets hold meanwhile).",
            ["result"],
            registry=registry,
        )
        # At 0 from the start: an alert's increase over the fallbacks counts the first one.
        for result in ("granted", "empty", "unreachable"):
            self.rate_leases.labels(result)
        for result in ("answered", "unreachable"):
            self.failure_budgets.labels(result)
        self.connections_open = Gauge(
            "ssogw_http_connections_open",
            "HTTP connections open now (ssogw serve).",
            registry=registry,
        )
        self.connections_cut = Counter(
            "ssogw_http_connections_cut_total",
            "HTTP connections the server closed to keep serving the others: over a cap"
            " (address_cap, global_cap), too slow (header_timeout, body_timeout) or sending"
            " endless headers (header_too_large).",
            ["reason"],
            registry=registry,
        )
        self.pool_size = Gauge(
            "ssogw_pool_connections",
            "Connections open in each pool.",
            ["pool"],
            registry=registry,
        )
        self.pool_in_use = Gauge(
            "ssogw_pool_connections_in_use",
            "Connections in use in each pool.",
            ["pool"],
            registry=registry,
        )
        self.pool_max = Gauge(
            "ssogw_pool_connections_max",
            "The most connections each pool may open.",
            ["pool"],
            registry=registry,
        )
        self.pool_acquire_seconds = Histogram(
            "ssogw_pool_acquire_seconds",
            "Time a caller waited for a connection from each pool (connecting included).",
            ["pool"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.db_errors = Counter(
            "ssogw_db_errors_total",
            "Connections a pool could not hand out: timeout (none free in time) or unavailable"
            " (the server refused or went away), by pool.",
            ["pool", "kind"],
            registry=registry,
        )
        self.primary_up = Gauge(
            "ssogw_primary_up",
            "1 when the primary answered the read router's last probe. Its own signal: an"
            " instance stays ready for inquiries while the primary is away (docs/operations.md).",
            registry=registry,
        )
        self.event_loop_lag = Histogram(
            "ssogw_event_loop_lag_seconds",
            "How late the event loop woke a timer: time the loop was busy with other work.",
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.audit_queued = Gauge(
            "ssogw_audit_queued_records",
            "Audit records waiting for their group commit.",
            registry=registry,
        )
        self.audit_spool_bytes = Gauge(
            "ssogw_audit_spool_bytes",
            "Bytes of audit records in this instance's spool, waiting for the primary.",
            registry=registry,
        )
        self.reads = Counter(
            "ssogw_reads_total",
            "Enquiry reads by the path that served them (replica, primary fallback).",
            ["path"],
            registry=registry,
        )
        self.replica_lag_seconds = Gauge(
            "ssogw_replica_lag_seconds",
            "Replay lag of each replica in seconds (-1: down).",
            ["replica"],
            registry=registry,
        )
        self.replica_lag_bytes = Gauge(
            "ssogw_replica_lag_bytes",
            "Replay lag of each replica in WAL bytes (-1: down).",
            ["replica"],
            registry=registry,
        )
        self.replica_up = Gauge(
            "ssogw_replica_up",
            "1 when the replica answered the last probe.",
            ["replica"],
            registry=registry,
        )
        self.audit_batch_size = Histogram(
            "ssogw_audit_batch_size",
            "Audit records committed per batch (group commit).",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        self.audit_commit_seconds = Histogram(
            "ssogw_audit_commit_seconds",
            "Time to commit one audit batch.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.audit_failures = Counter(
            "ssogw_audit_commit_failures_total",
            "Audit batches that could not be committed.",
            registry=registry,
        )
        self.audit_seals = Counter(
            "ssogw_audit_seals_total",
            "Rounds of sealing the audit chain head: sealed, skipped (nothing new since the last"
            " checkpoint), refused (the head went back), blocked (another session held the seal"
            " lock past the round's wait) or failed.",
            ["outcome"],
            registry=registry,
        )
        self.nonce_batch_size = Histogram(
            "ssogw_nonce_batch_size",
            "WS-Security nonces claimed per statement on the primary (group commit).",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=registry,
        )
        self.nonce_claim_seconds = Histogram(
            "ssogw_nonce_claim_seconds",
            "Time to claim one batch of nonces on the primary.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.nonce_checks_degraded = Counter(
            "ssogw_nonce_checks_degraded_total",
            "Calls admitted on this instance's nonce memory alone, the primary not answering.",
            ["operation"],
            registry=registry,
        )
        self.listening_for_changes = Gauge(
            "ssogw_principal_changes_listening",
            "1 while this instance listens for changes of partners and clients.",
            registry=registry,
        )
        self.principal_changes = Counter(
            "ssogw_principal_changes_total",
            "Changes of partners and clients announced to this instance, by kind (all: forget"
            " everything, after a reconnection).",
            ["kind"],
            registry=registry,
        )
        self.payments = Counter(
            "ssogw_payments_total",
            "Confirmed payments, by section and partner.",
            ["section", "partner"],
            registry=registry,
        )
        self.payment_satang = Counter(
            "ssogw_payment_amount_satang_total",
            "Amount of confirmed payments in satang.",
            ["section", "partner"],
            registry=registry,
        )
        self.cancellations = Counter(
            "ssogw_cancellations_total",
            "Cancelled payments, by section and partner.",
            ["section", "partner"],
            registry=registry,
        )
        self.settlement_mismatches = Counter(
            "ssogw_settlement_mismatches_total",
            "Settlement lines that did not match the ledger, by kind and partner.",
            ["kind", "partner"],
            registry=registry,
        )
        self.open_complaints = Gauge(
            "ssogw_open_complaints",
            "Complaint cases not closed (open or investigating), by category and age.",
            ["category", "age"],
            registry=registry,
        )
        self.ready = Gauge(
            "ssogw_ready", "1 when the instance is ready to serve.", registry=registry
        )
        self._reads: dict[str, Counter] = {}  # children of ``reads`` by path (two paths)
        self._waits: dict[str, Histogram] = {}  # children of ``pool_acquire_seconds`` by pool

    async def exposition(self) -> bytes:
        """The whole scrape: the registry's families, then the two large ones."""
        head = generate_latest(self.registry)
        return head + await write_out((self.requests, self.request_seconds))

    # --- CounterEvents (service.counter) -------------------------------------------------------
    def payment_confirmed(self, *, section: int, partner: str, amount_satang: int) -> None:
        self.payments.labels(str(section), partner).inc()
        self.payment_satang.labels(str(section), partner).inc(amount_satang)

    def payment_cancelled(self, *, section: int, partner: str) -> None:
        self.cancellations.labels(str(section), partner).inc()

    def admission_refused(self, reason: str, protocol: str) -> None:
        self.admission_refusals.labels(reason, protocol).inc()

    # --- ReplayEvents (admission.replay_guard) ---------------------------------------------------
    def nonce_batch_claimed(self, size: int, seconds: float) -> None:
        self.nonce_batch_size.observe(size)
        self.nonce_claim_seconds.observe(seconds)

    def nonce_check_degraded(self, operation: str) -> None:
        self.nonce_checks_degraded.labels(operation).inc()

    # --- ChangeEvents (principals.change_feed) ---------------------------------------------------
    def principal_changes_listening(self, listening: bool) -> None:
        self.listening_for_changes.set(1 if listening else 0)

    def principal_change_received(self, kind: str) -> None:
        self.principal_changes.labels(kind).inc()

    # --- RateEvents (admission.rate_limiter) -----------------------------------------------------
    def rate_lease(self, result: str) -> None:
        self.rate_leases.labels(result).inc()

    # --- FailureEvents (admission.shared_failures) -----------------------------------------------
    def failure_budgets_asked(self, result: str) -> None:
        self.failure_budgets.labels(result).inc()

    # --- ConnectionEvents (observability.connection_guard) ---------------------------------------
    def connection_cut(self, reason: str) -> None:
        self.connections_cut.labels(reason).inc()

    def connections_now(self, count: int) -> None:
        self.connections_open.set(count)

    # --- SettlementEvents (service.settlement) ---------------------------------------------------
    def settlement_mismatched(self, *, kind: str, partner: str, count: int) -> None:
        self.settlement_mismatches.labels(kind, partner).inc(count)

    # --- SealEvents (audit.seals.sealer) ---------------------------------------------------------
    def audit_sealed(self, outcome: str) -> None:
        self.audit_seals.labels(outcome).inc()

    # --- complaints (service.complaints) --------------------------------------------------------
    def open_complaints_counted(self, counts: Mapping[tuple[str, str], int]) -> None:
        for (category, age), count in counts.items():
            self.open_complaints.labels(category, age).set(count)

    # --- PoolObserver (db.pools) ----------------------------------------------------------------
    def pool_waited(self, pool: str, seconds: float) -> None:
        child = self._waits.get(pool)
        if child is None:
            child = self._waits[pool] = self.pool_acquire_seconds.labels(pool)
        child.observe(seconds)

    def pool_failed(self, pool: str, kind: str) -> None:
        self.db_errors.labels(pool, kind).inc()

    # --- ReadObserver (store.replica_router) ------------------------------------------------
    def read_served(self, path: str, reads: int = 1) -> None:
        child = self._reads.get(path)
        if child is None:
            child = self._reads[path] = self.reads.labels(path)
        child.inc(reads)

    def replica_lag(self, replica: str, *, seconds: float, lag_bytes: int, up: bool) -> None:
        self.replica_up.labels(replica).set(1 if up else 0)
        self.replica_lag_seconds.labels(replica).set(seconds if up else -1)
        self.replica_lag_bytes.labels(replica).set(lag_bytes if up else -1)
