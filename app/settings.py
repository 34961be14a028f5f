"""All configuration, from environment variables prefixed ``SSOGW_`` (pydantic-settings).

Defaults are safe for a laptop: loopback only, the local pair found under ``.data/``. The one
secret with a default (``SSOGW_SECRET_KEY``) is a clearly marked demo key; production sets it.
"""

from __future__ import annotations

import re
import socket
from datetime import time
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# A clearly marked demo key for `make run`; any real deployment sets SSOGW_SECRET_KEY.
DEMO_SECRET_KEY = "demo-only-key-do-not-use-in-production-0123456789"  # noqa: S105
#: Secret keys anyone can read in this repository: the demo key and the placeholders of the
#: deployment templates (deploy/k8s/secret.example.yaml, deploy/compose.yaml). A gateway that
#: listens beyond loopback refuses to start with one of them, or any other ``CHANGE-ME`` value.
PUBLISHED_SECRET_KEYS = frozenset(
    {
        DEMO_SECRET_KEY,
        "CHANGE-ME-placeholder-not-a-secret",
        "CHANGE-ME-compose-placeholder-not-a-secret",
    }
)
# An instance id names a directory: letters, digits, '.', '_', '-', not starting with a dot.
_INSTANCE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


# The characters RFC 3986 allows in a URL (percent-encoded ones included).
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


class PublishedSecretKey(RuntimeError):
    """The gateway would listen beyond loopback with a secret key published in this repository."""


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a listen address) is reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ip_address(name).is_loopback
    except ValueError:
        return False


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the gateway; ``Settings()`` reads ``SSOGW_*`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="SSOGW_", extra="ignore", frozen=True)

    # --- where things are ----------------------------------------------------------------
    data_dir: Path = Field(default=Path(".data"), description="Local PostgreSQL pair and records.")
    instance_id: str = Field(
        default_factory=socket.gethostname,
        description="Names this instance (its audit spool); unique and stable per instance.",
    )
    build_commit: str = Field(
        default="unknown",
        max_length=64,
        description="The commit the running image was built from (ssogw_build_info).",
    )
    pg_bin: Path | None = Field(default=None, description="Directory with initdb, pg_ctl, ...")
    primary_dsn: str | None = Field(
        default=None, description="The primary as the service role; else the local pair."
    )
    replica_dsns: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated replica DSNs, as the service role; else the local pair.",
    )
    owner_dsn: str | None = Field(
        default=None,
        description="The primary as the schema's owner, for `ssogw migrate` and `ssogw seed`;"
        " else the local pair. Required with SSOGW_PRIMARY_DSN for those commands.",
    )
    service_role: str | None = Field(
        default=None,
        description="The role `ssogw migrate` grants the gateway's privileges to; else the user"
        " of SSOGW_PRIMARY_DSN, else the local pair's.",
    )
    migrate_lock_timeout_ms: int = Field(
        default=5_000,
        ge=0,
        description="How long `ssogw migrate` waits for a lock before it gives up and rolls the"
        " step back, so that queries never queue behind it (0: forever).",
    )
    migrate_statement_timeout_ms: int = Field(
        default=0, ge=0, description="The longest one statement of `ssogw migrate` runs (0: none)."
    )

    # --- HTTP ------------------------------------------------------------------------------
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Peers (CIDRs) whose X-Forwarded-For is believed."
    )
    public_base_url: str | None = Field(
        default=None,
        description="The gateway's address as partners reach it (https://gateway.sso.go.th), as"
        " the WSDL names it. Unset: a trusted proxy's forwarded headers, else the request.",
    )
    http_workers: int | None = Field(
        default=None, ge=1, description="Processes of `ssogw serve`; unset: the CPUs it may use."
    )
    shutdown_grace_s: float = 10.0  # in-flight requests may finish within this
    shutdown_drain_s: float = 3.0  # /readyz says 503 this long before the listener closes

    # --- pools and routing -------------------------------------------------------------------
    primary_pool_min: int = 2
    primary_pool_max: int = 10
    replica_pool_min: int = 2
    replica_pool_max: int = 10
    connect_timeout_s: float = 3.0
    command_timeout_s: float = 5.0
    replica_max_lag_s: float = 5.0
    replica_probe_interval_s: float = 0.5

    # --- payments on the standbys before they are answered (app/db/sync_commit.py) -----------
    payment_synchronous_commit: Literal["remote_apply", "remote_write", "on", "local"] = Field(
        default="remote_apply",
        description="synchronous_commit of confirms and cancels: remote_apply, so every"
        " synchronous standby has applied a payment before it is answered (read-your-writes"
        " across the fleet); a no-op on a primary without synchronous standbys.",
    )
    payment_commit_wait_s: float = Field(
        default=2.0,
        gt=0,
        description="How long a payment's COMMIT may wait for the synchronous standbys; then"
        " it is answered with the retryable server.store_unavailable.",
    )

    # A day's settlement is taken (imported, exported) this long after its cut-off at the
    # earliest: longer than a payment takes from the clock to its commit (commit wait and all).
    settlement_grace_s: float = Field(default=300.0, ge=0, le=86_400)

    # --- audit group commit ------------------------------------------------------------------
    audit_max_batch: int = 500
    audit_max_wait_ms: float = 2.0
    audit_spool_dir: Path | None = Field(
        default=None, description="Durable local spool while the primary is down (else data_dir)."
    )
    audit_link_interval_s: float = Field(
        default=1.0, gt=0, description="How often to look for records left waiting for a link."
    )
    audit_link_wait_ms: Annotated[float, Field(ge=0, le=1000)] = 50.0  # docs/operations.md
    audit_head_wait_s: float = Field(
        default=1.0, gt=0, description="How long a batch waits for the chain head, then fails."
    )
    audit_head_hold_s: float = Field(
        default=10.0,
        gt=0,
        description="A service-role session holding the chain head longer than this is ended by "
        "the next writer that waited for it (app/audit/chain_head.py); above the writer's 5 s "
        "commit timeout, which ends the gateway's own statements first.",
    )

    # --- refusals of callers never admitted: counted per source and window (app/audit/refusals)
    audit_refusal_window_s: float = Field(
        default=60.0, gt=0, description="The window refused calls are counted in (a minute)."
    )
    audit_refusals_per_source: int = Field(
        default=50, ge=1, description="Counts (each one record) per source address and window."
    )
    audit_refusal_sources: int = Field(
        default=200, ge=1, description="Source addresses counted per window; more overflow."
    )

    # --- audit seals: signed checkpoints of the chain head, kept outside the database ------------
    audit_seal_interval_s: float = Field(
        default=60.0, gt=0, description="How often the chain head is sealed (and at shutdown)."
    )
    audit_seal_key_file: Path | None = Field(
        default=None,
        description="Ed25519 signing key, PEM; unset: data_dir/audit-seal-key, made if missing.",
    )
    audit_seal_dir: Path | None = Field(
        default=None, description="Checkpoint files, on append-only storage (else data_dir)."
    )
    audit_seal_public_keys: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="Comma-separated public keys of earlier seal keys."
    )

    # --- admission ---------------------------------------------------------------------------
    secret_key: str = Field(default=DEMO_SECRET_KEY, description="Encrypts partner secrets.")
    wsse_window_s: int = 300
    default_rate_limit: float = 200.0
    token_cache_s: float = Field(
        default=60.0,
        description="Partners and clients are read again after this at the latest; changes"
        " reach every instance at once (database notices), this is the backstop.",
    )

    # --- replay protection: WS-Security nonces in the database (app/admission/replay_guard.py)
    wsse_nonce_timeout_s: float = Field(
        default=1.0, gt=0, description="How long a nonce claim may wait for the primary."
    )
    wsse_nonce_outage_admits_reads: bool = Field(
        default=True,
        description="While the primary cannot take nonce claims, admit inquiries and status"
        " calls on this instance's memory alone (confirms and cancels are always refused).",
    )
    wsse_nonce_prune_s: float = Field(
        default=60.0, gt=0, description="How often each instance deletes expired nonces."
    )

    # --- rate limits: a bucket per principal shared in PostgreSQL, spent through local leases ---
    rate_lease_s: float = Field(
        default=0.1, gt=0, le=1, description="A lease is this many seconds' worth of the rate."
    )
    rate_lease_ttl_s: float = Field(
        default=1.0, gt=0, description="What a lease left unspent this long goes back."
    )
    rate_lease_timeout_s: float = Field(
        default=0.5, gt=0, description="Longest wait for a lease; then this instance's own limit."
    )
    rate_fallback_s: float = Field(
        default=1.0, gt=0, description="Meanwhile, how often the database is asked again."
    )

    # --- credential checks: argon2 off the event loop, bounded, remembered, throttled -----------
    credential_check_workers: int = Field(
        default=2, ge=1, le=64, description="Threads that run argon2, off the event loop."
    )
    credential_check_queue: int = Field(
        default=4, ge=0, description="Checks that may wait for a thread; more: server.overloaded."
    )
    credential_cache_s: float = Field(
        default=300.0, ge=0, description="A verified secret unused this long is checked again."
    )
    credential_failures_per_pair: int = Field(
        default=5, ge=1, description="Failed checks per source address and name per window."
    )
    credential_failures_per_name: int = Field(
        default=20, ge=1, description="Failed checks per username or token id per window."
    )
    credential_failures_per_address: int = Field(
        default=30, ge=1, description="Failed checks per source address per window."
    )
    credential_failure_window_s: float = Field(
        default=60.0, gt=0, description="The window over which failure budgets refill."
    )
    argon2_memory_kib: int = Field(default=65536, ge=1024, description="argon2id memory, KiB.")
    argon2_time_cost: int = Field(default=3, ge=1, description="argon2id iterations.")
    argon2_parallelism: int = Field(default=4, ge=1, le=64, description="argon2id lanes.")

    # --- business rules that DOMAIN.md marks unconfirmed ---------------------------------------
    settlement_cutoff: time = time(23, 0)
    paid_at_max_behind_s: int = Field(
        default=300, ge=0, le=3600, description="How long before the gateway's clock paidAt may be."
    )
    paid_at_max_ahead_s: int = Field(
        default=60, ge=0, le=600, description="How far after the gateway's clock paidAt may be."
    )
    # The months offered must fit one payment, 13 at most (MAX_MONTHS_A_PAYMENT): S39 6+1+6.
    counter_ceiling_satang: int = Field(default=3_000_000, ge=1)
    s39_max_overdue_months: int = Field(default=1, ge=0, le=6)
    s39_late_counts_as_paid: bool = True
    s39_late_surcharge_satang: int = Field(default=0, ge=0)
    s39_advance_months: int = Field(default=0, ge=0, le=6)
    s39_application_backdate_days: int = Field(  # docs/domain.md
        default=0, ge=0, le=366, description="Days an S39 appliedOn may precede its registration."
    )
    s40_max_months_ahead: int = Field(default=12, ge=0, le=12)
    s40_max_savings_per_month_satang: int = Field(default=100_000, ge=0)
    s40_option_changes_per_year: int = Field(default=1, ge=0)  # 0: none
    s40_option_change_period: Literal["calendar_year", "twelve_months"] = Field(
        default="calendar_year",
        description="How 'once a year' counts for S40 option changes: per calendar year, or"
        " twelve months apart (docs/domain.md).",
    )
    s39_prefixes: str = Field(default="12345678", description="Accepted first digits, S39.")
    s40_prefixes: str = Field(default="012345678", description="Accepted first digits, S40.")

    # --- SOAP hardening ----------------------------------------------------------------------
    soap_max_body_bytes: int = 64 * 1024
    soap_max_depth: int = 32
    soap_max_elements: int = 2_000
    soap_read_timeout_s: float = 10.0  # a request body must arrive whole within this
    max_header_bytes: int = 16 * 1024  # all request headers together
    max_header_count: int = 100

    # --- connections (`ssogw serve`: app/observability/connection_guard.py) ---------------------
    http_max_connections: int = Field(
        default=4096, ge=1, description="Open connections at most; more are closed at once."
    )
    http_max_connections_per_address: int = Field(
        default=256, ge=1, description="Open connections per TCP peer (trusted proxies exempt)."
    )
    http_header_timeout_s: float = Field(
        default=10.0, gt=0, description="From connection or first byte to the end of headers."
    )
    http_body_timeout_s: float = Field(
        default=10.0, gt=0, description="The body's grace after the headers, before the pace."
    )
    http_body_min_rate: int = Field(
        default=1024, ge=1, description="Bytes/s a body must keep up beyond its grace."
    )
    http_keepalive_timeout_s: int = Field(
        default=5, ge=1, description="An idle kept-alive connection is closed after this."
    )
    http_cut_log_interval_s: float = Field(
        default=60.0, gt=0, description="Cut connections are logged once per address this often."
    )

    # --- logging -----------------------------------------------------------------------------
    log_level: str = "INFO"

    @field_validator("settlement_cutoff")
    @classmethod
    def _bangkok_evening(cls, value: time) -> time:
        # The cut-off is Bangkok wall time; a zone would be silently dropped. Before noon it
        # would put the whole working day into the next business day.
        if value.tzinfo is not None:
            raise ValueError("the cut-off is a time of day in Asia/Bangkok, without an offset")
        if value < time(12, 0):
            raise ValueError("the cut-off closes a business day: a time from 12:00 to 23:59")
        return value

    @field_validator("instance_id")
    @classmethod
    def _directory_name(cls, value: str) -> str:
        if not _INSTANCE_ID.fullmatch(value):
            raise ValueError(
                "an instance id is 1-128 letters, digits, '.', '_' or '-', not starting with '.'"
            )
        return value

    @field_validator("replica_dsns", "trusted_proxies", "audit_seal_public_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @field_validator("public_base_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # empty, as an unset variable in a manifest
        text = value.strip()
        if not _URL_CHARACTERS.fullmatch(text):
            raise ValueError("may hold only the characters of a URL (RFC 3986), no spaces")
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL with a host")
        if parts.query or parts.fragment or "?" in text or "#" in text:
            raise ValueError("must have no query and no fragment")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry credentials")
        _ = parts.port  # raises ValueError unless the port is a number in 0-65535
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))

    def refuse_published_secret_key(self, host: str | None = None) -> None:
        """Refuse (``PublishedSecretKey``) to serve on ``host`` (default ``http_host``) beyond
        loopback with a secret key published in this repository."""
        host = self.http_host if host is None else host
        key = self.secret_key
        if is_loopback_host(host) or not (
            key in PUBLISHED_SECRET_KEYS or key.startswith("CHANGE-ME")
        ):
            return
        which = "the demo key" if key == DEMO_SECRET_KEY else "a template's placeholder"
        raise PublishedSecretKey(
            f"SSOGW_SECRET_KEY is {which}, published in this repository, and the gateway would"
            f" listen on {host!r}, beyond this machine: set SSOGW_SECRET_KEY to a key of your"
            " own (e.g. `openssl rand -hex 32`), or listen on 127.0.0.1."
        )

    def prefixes(self) -> dict[int, frozenset[str]]:
        """Accepted first digits of a national ID, per section."""
        return {39: frozenset(self.s39_prefixes), 40: frozenset(self.s40_prefixes)}

    def seal_key_file(self) -> Path:
        """The seal key's file."""
        return self.audit_seal_key_file or Path(self.data_dir) / "audit-seal-key"

    def seal_key_is_local(self) -> bool:
        """Whether the seal key is the local default one, made on first use (a laptop's): a
        configured key file must exist."""
        return self.audit_seal_key_file is None

    def seal_dir(self) -> Path:
        """The checkpoint directory."""
        return self.audit_seal_dir or Path(self.data_dir) / "audit-seals"

    def spool_dir(self) -> Path:
        """The directory the instances' audit spools are kept in, each in its own."""
        return self.audit_spool_dir or Path(self.data_dir) / "audit-spool"
