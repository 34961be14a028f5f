"""The audit writer under real failures: callers get AuditUnavailable, later batches succeed."""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from app.audit.records import AuditRecord
from app.audit.writer import AuditWriter
from app.db.pools import PoolConfig, open_pool
from app.domain.national_id import generate_national_id
from app.errors import AuditUnavailable
from app.observability.metrics import Metrics
from app.settings import Settings

pytestmark = pytest.mark.db


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    assert settings.primary_dsn
    opened = await open_pool(
        settings.primary_dsn, PoolConfig(1, 3, 3.0, 30.0), read_only=False, name="test-audit"
    )
    try:
        yield opened
    finally:
        await opened.close()


def record(national_id: str) -> AuditRecord:
    return AuditRecord(
        at=datetime.now(UTC),
        protocol="rest",
        operation="inquireContribution",
        outcome="ok",
        request_id=uuid.uuid4().hex,
        principal_kind="client",
        principal_name="mobile-app",
        source_ip="203.0.113.9",
        national_id=national_id,
        name_returned="นางสาว ทดสอบ ระบบ",
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def count(pool: asyncpg.Pool, national_id: str) -> int:
    found: int = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE national_id = $1", national_id
    )
    return found


async def test_with_the_server_unreachable_every_caller_fails_and_then_recovers(
    pool: asyncpg.Pool,
) -> None:
    dead = await asyncpg.create_pool(
        f"postgresql://ssogw@127.0.0.1:{closed_port()}/ssogw", min_size=0, max_size=1, timeout=1
    )
    current = {"pool": dead}
    metrics = Metrics(CollectorRegistry())
    writer = AuditWriter(
        pool_provider=lambda: current["pool"], max_batch=100, max_wait_ms=2, metrics=metrics
    )
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    await writer.start()
    try:
        outcomes = await asyncio.gather(
            *(writer.record(record(nid)) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(o, AuditUnavailable) for o in outcomes), outcomes
        failure = outcomes[0]
        assert isinstance(failure, AuditUnavailable)
        assert failure.code == "server.audit_unavailable" and failure.retryable
        assert failure.details["cause"] == "server.store_unavailable"
        assert metrics.registry.get_sample_value("ssogw_audit_commit_failures_total") == 1.0
        assert await count(pool, nid) == 0

        current["pool"] = pool  # the server is back
        await asyncio.gather(*(writer.record(record(nid)) for _ in range(3)))
        assert await count(pool, nid) == 3
    finally:
        await writer.stop()
        await dead.close()


async def test_with_the_chain_head_locked_callers_fail_in_time_and_then_recover(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    writer = AuditWriter(
        pool_provider=lambda: pool, max_batch=100, max_wait_ms=0, commit_timeout_s=0.5
    )
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    holder = await asyncpg.connect(settings.primary_dsn)
    await writer.start()
    try:
        lock = holder.transaction()
        await lock.start()
        await holder.execute("SELECT 1 FROM audit_chain WHERE id FOR UPDATE")
        began = time.monotonic()
        with pytest.raises(AuditUnavailable):
            await writer.record(record(nid))
        assert time.monotonic() - began < 2.0, "a stuck commit fails within its timeout"
        await lock.rollback()

        await writer.record(record(nid))
        assert await count(pool, nid) == 1
    finally:
        await writer.stop()
        await holder.close()


async def test_a_record_before_start_or_after_stop_is_refused(pool: asyncpg.Pool) -> None:
    writer = AuditWriter(pool_provider=lambda: pool, max_batch=10, max_wait_ms=0)
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    with pytest.raises(AuditUnavailable):
        await writer.record(record(nid))
    await writer.start()
    await writer.record(record(nid))
    await writer.stop()
    with pytest.raises(AuditUnavailable):
        await writer.record(record(nid))
    assert await count(pool, nid) == 1


async def test_callers_beyond_the_queue_bound_fail_at_once(pool: asyncpg.Pool) -> None:
    writer = AuditWriter(pool_provider=lambda: pool, max_batch=2, max_wait_ms=0, max_queued=3)
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    await writer.start()
    try:
        outcomes = await asyncio.gather(
            *(writer.record(record(nid)) for _ in range(5)), return_exceptions=True
        )
    finally:
        await writer.stop()
    refused = [o for o in outcomes if isinstance(o, AuditUnavailable)]
    assert [o.details["reason"] for o in refused] == ["queue_full", "queue_full"]
    assert await count(pool, nid) == 3
