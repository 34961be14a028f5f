"""Every metric of the gateway, declared once on an injected registry; labels are bounded.

Labels: protocol, operation (a SOAP operation name or a REST route template, never a raw
path), outcome (``ok`` or an error code), partner (a partner or client name, from the
registry, never free text). Never a national ID, an address or free text.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The gateway's Prometheus metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "ssogw_requests_total",
            "Requests handled, by protocol, operation, outcome and partner.",
            ["protocol", "operation", "outcome", "partner"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "ssogw_request_duration_seconds",
            "Request duration, by protocol, operation, outcome and partner.",
            ["protocol", "operation", "outcome", "partner"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
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

    # --- CounterEvents (service.counter) -------------------------------------------------------
    def payment_confirmed(self, *, section: int, partner: str, amount_satang: int) -> None:
        self.payments.labels(str(section), partner).inc()
        self.payment_satang.labels(str(section), partner).inc(amount_satang)

    def payment_cancelled(self, *, section: int, partner: str) -> None:
        self.cancellations.labels(str(section), partner).inc()

    def admission_refused(self, reason: str, protocol: str) -> None:
        self.admission_refusals.labels(reason, protocol).inc()

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

    # --- ReadObserver (store.replica_router) ------------------------------------------------
    def read_served(self, path: str) -> None:
        child = self._reads.get(path)
        if child is None:
            child = self._reads[path] = self.reads.labels(path)
        child.inc()

    def replica_lag(self, replica: str, *, seconds: float, lag_bytes: int, up: bool) -> None:
        self.replica_up.labels(replica).set(1 if up else 0)
        self.replica_lag_seconds.labels(replica).set(seconds if up else -1)
        self.replica_lag_bytes.labels(replica).set(lag_bytes if up else -1)
