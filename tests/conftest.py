"""Session-wide fixtures: one real PostgreSQL pair, settings pointing at it, the wired gateway.

Tests share the session's database and stay isolated by using their own national IDs,
partners and clients (tests/support/people.py makes fresh ones). ``settings.primary_dsn`` is
the service role, as the gateway connects; a test that needs the owner's rights on purpose
(tampering, backdating, altering a table) says so by asking for ``owner_pool``. Every gateway
built here reads the session's pinned business clock (tests/support/clock.py,
``SSOGW_TEST_BUSINESS_TIME``), never the wall clock.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from app.db.local_pair import SUPERUSER, LocalPair, PairRecord
from app.main import Gateway, build_gateway, create_app, start_gateway, stop_gateway
from app.settings import Settings
from tests.support.clock import PinnedClock, business_clock
from tests.support.live_server import serve
from tests.support.pair import session_pair


def pytest_report_header() -> str:
    return f"business clock pinned at {business_clock()().isoformat()} (SSOGW_TEST_BUSINESS_TIME)"


@pytest.fixture(scope="session")
def clock() -> PinnedClock:
    """The session's business clock: what "now" is for every in-process gateway."""
    return business_clock()


@pytest.fixture
def cli_time(clock: PinnedClock) -> Iterator[PinnedClock]:
    """For a test that drives ``ssogw`` in process: the command line builds its services on
    the wall clock, so during the test the business clock follows the wall clock too."""
    with clock.following_wall():
        yield clock


@pytest.fixture(scope="session")
def pg_pair() -> Iterator[tuple[LocalPair, PairRecord]]:
    """The session's primary and replica (started on first use, stopped at the end)."""
    with session_pair() as started:
        yield started


@pytest.fixture(scope="session")
def settings(
    pg_pair: tuple[LocalPair, PairRecord], tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    _, record = pg_pair
    return Settings(
        data_dir=Path(tmp_path_factory.mktemp("data")),
        primary_dsn=record.primary_dsn,
        replica_dsns=[record.replica_dsn],
        owner_dsn=record.owner_dsn,
        replica_probe_interval_s=0.1,
        replica_max_lag_s=2.0,
        primary_pool_min=1,
        replica_pool_min=1,
        default_rate_limit=10_000,
        # Refusals of callers never admitted are counted in windows: short ones here, so a
        # live server writes them soon (tests/support/refusals.py waits for them).
        audit_refusal_window_s=0.2,
        # Every test calls from 127.0.0.1, many with wrong secrets on purpose: as one address
        # in front of many callers, it may fail often (the throttle's own tests set their own).
        credential_failures_per_address=1_000_000,
    )


@pytest.fixture(scope="session")
async def owner_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The primary as the schema's owner: only for a test that needs the owner's rights on
    purpose (tampering with the audit trail, backdating a row, altering a table)."""
    assert settings.owner_dsn
    pool = await asyncpg.create_pool(settings.owner_dsn, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def replica_superuser(
    pg_pair: tuple[LocalPair, PairRecord],
) -> AsyncIterator[asyncpg.Connection]:
    """The standby as the superuser, which alone may pause and resume its replay."""
    _, record = pg_pair
    conn = await asyncpg.connect(record.dsn(record.replica_port, role=SUPERUSER))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def gateway(settings: Settings, clock: PinnedClock) -> AsyncIterator[Gateway]:
    """The wired service layer on the session's pair (no HTTP)."""
    gw = build_gateway(settings, clock=clock)
    await start_gateway(gw)
    try:
        yield gw
    finally:
        await stop_gateway(gw)


@pytest.fixture(scope="session")
def live_url(settings: Settings, clock: PinnedClock) -> Iterator[str]:
    """Base URL of the whole app served over real HTTP on loopback (an instance of its own,
    beside the ``gateway`` fixture's)."""
    live = settings.model_copy(update={"instance_id": f"{settings.instance_id}-live"})
    with serve(create_app(live, clock=clock)) as base:
        yield base


@dataclass(frozen=True)
class PartnerCredentials:
    name: str
    username: str
    password: str


@pytest.fixture
async def partner(gateway: Gateway) -> PartnerCredentials:
    """A fresh partner allowed from loopback for every counter operation."""
    name = f"p-{uuid.uuid4().hex[:10]}"
    issued = await gateway.registry.add_partner(
        name=name, cidrs=["127.0.0.0/8", "::1/128"], rate_limit=10_000
    )
    return PartnerCredentials(name, issued.username, issued.password)


@pytest.fixture
async def client_token(gateway: Gateway) -> str:
    """A bearer token of a fresh internal client with every scope."""
    issued = await gateway.registry.add_client(
        name=f"c-{uuid.uuid4().hex[:10]}", scopes=["counter", "admin", "audit"]
    )
    return issued.token
