"""Fixtures of the reliability suite: its OWN PostgreSQL pair, real gateway processes, partners
and insured persons, and the run summary printed at the end of the session.

Fault tests stop and pause this pair's servers; the session pair other tests use is never
touched. Every gateway process is killed when its test module ends (and again, to be sure, when
the package ends).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from app.admission.credential_vault import SecretBox
from app.db.local_pair import SUPERUSER, LocalPair, PairRecord
from app.domain.calendar import bangkok_date
from app.domain.months import Month
from app.principals.registry import Registry
from app.principals.repository import PrincipalRepository
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import GatewayProcess, gateway_env
from tests.reliability.soap_wire import Partner
from tests.support.pair import session_pair
from tests.support.people import add_person

SECRET_KEY = "reliability-suite-key-not-a-secret-0123456789abcdef"
LOOPBACK = ["127.0.0.0/8", "::1/128"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reliability: starts its own PostgreSQL pair and gateway processes"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = FIGURES.lines()
    if not lines:
        return
    terminalreporter.write_sep("=", "reliability figures")
    for line in lines:
        terminalreporter.write_line(line)


# --- the pair ----------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def rel_pair() -> Iterator[tuple[LocalPair, PairRecord]]:
    """This package's own primary and streaming replica (not the session's)."""
    with session_pair() as started:
        yield started


@pytest.fixture(scope="package")
def rel_record(rel_pair: tuple[LocalPair, PairRecord]) -> PairRecord:
    return rel_pair[1]


@pytest.fixture(scope="package")
async def admin_pool(rel_record: PairRecord) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the primary for arranging data and reading the ledger."""
    pool = await asyncpg.create_pool(rel_record.primary_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await asyncio.wait_for(pool.close(), 10)


async def ensure_pair_up(pair: LocalPair, record: PairRecord) -> None:
    """Start whatever a fault test left stopped, resume replay, and wait until it streams."""
    await asyncio.to_thread(pair.start, "primary")
    await asyncio.to_thread(pair.start, "replica")
    # As the superuser: only it may resume replay.
    conn = await asyncpg.connect(record.dsn(record.replica_port, role=SUPERUSER), timeout=5)
    try:
        if await conn.fetchval("SELECT pg_is_wal_replay_paused()"):
            await conn.execute("SELECT pg_wal_replay_resume()")
    finally:
        await conn.close()
    await asyncio.to_thread(pair.wait_streaming)


async def replica_caught_up(record: PairRecord, *, timeout_s: float = 15.0) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    primary = await asyncpg.connect(record.primary_dsn, timeout=5)
    try:
        lsn = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
    finally:
        await primary.close()
    replica = await asyncpg.connect(record.replica_dsn, timeout=5)
    try:
        deadline = time.monotonic() + timeout_s
        while not await replica.fetchval(
            "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", lsn
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the replica did not catch up in time")
            await asyncio.sleep(0.02)
    finally:
        await replica.close()


# --- gateway processes -------------------------------------------------------------------------
class Launcher:
    """Starts gateway processes on this package's pair and kills any left at the end."""

    def __init__(self, record: PairRecord, root: Path) -> None:
        self._record = record
        self._root = root
        self._all: list[GatewayProcess] = []

    def start(
        self, name: str, *, max_open_files: int | None = None, **settings: str
    ) -> GatewayProcess:
        """A running gateway; ``settings`` override SSOGW_* (``command_timeout_s="10"``);
        ``max_open_files``: its descriptor limit (``ulimit -n``), else this process's.

        Gateways share one data directory, each its own audit spool in it: the instance id
        is the gateway's name unless ``settings`` say otherwise.
        """
        env = gateway_env(
            self._record,
            secret_key=SECRET_KEY,
            data_dir=self._root / "data",
            **({"instance_id": name} | settings),
        )
        process = GatewayProcess(
            env=env, logs=self._root / "logs", name=name, max_open_files=max_open_files
        )
        self._all.append(process)
        process.start()
        return process

    def kill_all(self) -> None:
        for process in self._all:
            process.kill()


@pytest.fixture(scope="package")
def launcher(
    rel_record: PairRecord, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Launcher]:
    launch = Launcher(rel_record, tmp_path_factory.mktemp("gateways"))
    try:
        yield launch
    finally:
        launch.kill_all()


@pytest.fixture(scope="package")
def shared_gateway(launcher: Launcher) -> Iterator[GatewayProcess]:
    """One gateway for the tests that only send requests (access, REST, fuzz)."""
    process = launcher.start("shared")
    try:
        yield process
    finally:
        process.kill()


# --- partners, clients and persons ----------------------------------------------------------------
@pytest.fixture(scope="package")
def registry(admin_pool: asyncpg.Pool) -> Registry:
    """The partner registry on this pair, with the gateways' secret key."""
    return Registry(store=PrincipalRepository(lambda: admin_pool), box=SecretBox(SECRET_KEY))


NewPartner = Callable[..., Awaitable[Partner]]


@pytest.fixture(scope="package")
def new_partner(registry: Registry) -> NewPartner:
    """Register a fresh partner (loopback, every operation, a high rate limit by default)."""

    async def make(
        *,
        cidrs: list[str] | None = None,
        operations: list[str] | None = None,
        rate_limit: float = 100_000,
    ) -> Partner:
        name = f"rel-{uuid.uuid4().hex[:10]}"
        issued = await registry.add_partner(
            name=name, cidrs=cidrs or LOOPBACK, operations=operations, rate_limit=rate_limit
        )
        return Partner(name, issued.username, issued.password)

    return make


@pytest.fixture(scope="package")
async def partner(new_partner: NewPartner) -> Partner:
    """The package's ordinary partner."""
    return await new_partner()


NewPeople = Callable[..., Awaitable[list[str]]]


@pytest.fixture(scope="package")
def new_people(admin_pool: asyncpg.Pool) -> NewPeople:
    """Create ``count`` Section 40 option 1 members with nothing paid (70.00 baht a month)."""

    async def make(count: int) -> list[str]:
        start = Month.of(bangkok_date(datetime.now(UTC))).minus(5)
        async with admin_pool.acquire() as conn, conn.transaction():
            return [await add_person(conn, section=40, coverage_start=start) for _ in range(count)]

    return make
