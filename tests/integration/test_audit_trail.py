"""The audit trail on the real primary: group commit, the hash chain, and tamper detection."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from app.audit.chain import AuditRow, canonical_bytes, chain_hash, prepare
from app.audit.queries import AuditQueries
from app.audit.records import AuditRecord
from app.audit.writer import LINGER_BELOW, AuditWriter
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
        settings.primary_dsn, PoolConfig(1, 4, 3.0, 30.0), read_only=False, name="test-audit"
    )
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.fixture
async def writer(pool: asyncpg.Pool, metrics: Metrics) -> AsyncIterator[AuditWriter]:
    started = AuditWriter(pool_provider=lambda: pool, max_batch=500, max_wait_ms=2, metrics=metrics)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
def queries(pool: asyncpg.Pool) -> AuditQueries:
    return AuditQueries(pool_provider=lambda: pool, chunk=7)  # small chunks: many round trips


def record(national_id: str, at: datetime, **fields: Any) -> AuditRecord:
    values: dict[str, Any] = {
        "protocol": "soap",
        "operation": "InquireContribution",
        "outcome": "ok",
        "request_id": uuid.uuid4().hex,
        "principal_kind": "partner",
        "principal_id": 7,
        "principal_name": "counter-service",
        "operator": "op-1",
        "terminal": "T-01",
        "source_ip": "10.1.2.3",
        "name_returned": "นาย สมชาย ใจดี",
    }
    values.update(fields)
    return AuditRecord(at=at, national_id=national_id, **values)


def _stored_row(stored: asyncpg.Record) -> AuditRow:
    values = {f.name: stored[f.name] for f in dataclasses.fields(AuditRow)}
    return AuditRow(**values | {"source_ip": str(stored["source_ip"])})


def past_window() -> datetime:
    """The start of an hour in 1970-1999 that no other test writes into."""
    rng = random.Random(uuid.uuid4().int)
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(24 * 365 * 30))


def batch_stats(metrics: Metrics) -> tuple[float, float]:
    registry = metrics.registry
    count = registry.get_sample_value("ssogw_audit_batch_size_count") or 0.0
    total = registry.get_sample_value("ssogw_audit_batch_size_sum") or 0.0
    return count, total


# --- the canonical form ----------------------------------------------------------------------
def test_none_and_empty_text_hash_differently() -> None:
    at = datetime(2024, 5, 1, 3, 4, 5, 6, tzinfo=UTC)
    with_none = prepare(record("1101700230703", at, operator=None))
    with_empty = prepare(record("1101700230703", at, operator=""))
    assert canonical_bytes(1, with_none) != canonical_bytes(1, with_empty)
    assert chain_hash(bytes(32), 1, with_none) != chain_hash(bytes(32), 1, with_empty)


def test_the_canonical_form_is_versioned_utc_with_microseconds() -> None:
    bangkok = datetime(2024, 5, 1, 17, 0, tzinfo=timezone(timedelta(hours=7)))
    row = prepare(record("1101700230703", bangkok))
    text = canonical_bytes(42, row).decode()
    assert text.startswith('["ssogw-audit/1",42,"2024-05-01T10:00:00.000000+00:00",')


def test_a_record_that_can_never_be_stored_is_refused_alone() -> None:
    with pytest.raises(ValueError):
        prepare(record("1101700230703", datetime(2024, 5, 1)))  # naive
    with pytest.raises(ValueError):
        prepare(record("1101700230703", datetime.now(UTC), source_ip="not-an-address"))
    with pytest.raises(TypeError):
        prepare(record("1101700230703", datetime.now(UTC), detail={"x": object()}))


# --- group commit ----------------------------------------------------------------------------
async def test_200_concurrent_records_commit_in_few_batches_and_the_chain_holds(
    writer: AuditWriter, pool: asyncpg.Pool, queries: AuditQueries, metrics: Metrics
) -> None:
    rng = random.Random(uuid.uuid4().int)
    ids = [generate_national_id(rng) for _ in range(200)]
    began = datetime.now(UTC)

    async def one(nid: str) -> None:
        await asyncio.sleep(rng.uniform(0, 0.05))  # callers arrive over 50 ms, as on a counter
        await writer.record(record(nid, datetime.now(UTC)))

    await asyncio.gather(*(one(nid) for nid in ids))

    stored = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE national_id = ANY($1::text[])", ids
    )
    assert stored == 200
    batches, records = batch_stats(metrics)
    assert records == 200
    assert batches < 200, "group commit: fewer transactions than records"
    print(f"\naudit group commit, 200 callers over 50 ms: {records / batches:.1f} per batch")
    result = await queries.verify(from_=began, to=datetime.now(UTC) + timedelta(seconds=1))
    assert result.ok, result.first_broken
    assert result.checked >= 200


async def test_a_burst_of_200_records_is_one_or_two_commits(
    writer: AuditWriter, pool: asyncpg.Pool, metrics: Metrics
) -> None:
    rng = random.Random(uuid.uuid4().int)
    ids = [generate_national_id(rng) for _ in range(200)]
    await asyncio.gather(*(writer.record(record(nid, datetime.now(UTC))) for nid in ids))
    batches, records = batch_stats(metrics)
    assert records == 200 and batches <= 2
    print(f"\naudit group commit, burst of 200: {records / batches:.1f} per batch")


@pytest.mark.serial
async def test_the_writer_lingers_for_company_only_after_a_small_batch(
    pool: asyncpg.Pool,
) -> None:
    """An idle writer waits up to SSOGW_AUDIT_MAX_WAIT_MS for more records to share its commit;
    after a batch of LINGER_BELOW or more (calls arriving in waves, under load) it sends the
    next record at once."""
    linger_s = 0.4
    writer = AuditWriter(pool_provider=lambda: pool, max_batch=500, max_wait_ms=linger_s * 1000)
    nid = generate_national_id(random.Random(uuid.uuid4().int))

    async def took(count: int) -> float:
        started = time.perf_counter()
        await asyncio.gather(*(writer.record(record(nid, datetime.now(UTC))) for _ in range(count)))
        return time.perf_counter() - started

    await writer.start()
    try:
        assert await took(1) >= linger_s  # nothing sent before: it lingers
        assert await took(LINGER_BELOW) >= linger_s  # after a batch of one: it lingers
        assert await took(1) < linger_s / 2  # after a batch of LINGER_BELOW: at once
        assert await took(1) >= linger_s  # after a batch of one again: it lingers
    finally:
        await writer.stop()


async def test_two_instances_append_to_one_chain(
    settings: Settings, pool: asyncpg.Pool, queries: AuditQueries
) -> None:
    other = await open_pool(
        settings.primary_dsn or "", PoolConfig(1, 2, 3.0, 30.0), read_only=False, name="other"
    )

    def on(p: asyncpg.Pool) -> AuditWriter:
        return AuditWriter(pool_provider=lambda: p, max_batch=16, max_wait_ms=1)

    writers = [on(pool), on(other)]
    start = past_window()
    rng = random.Random(uuid.uuid4().int)
    nid = generate_national_id(rng)
    try:
        for w in writers:
            await w.start()
        # In rounds: within each, both writers commit at once, so each round's records switch
        # writer at least once on the chain, whichever commits first.
        for first in range(0, 120, 30):
            await asyncio.gather(
                *(
                    writers[i % 2].record(
                        record(nid, start + timedelta(seconds=i), operator=f"w{i % 2}")
                    )
                    for i in range(first, first + 30)
                )
            )
    finally:
        for w in writers:
            await w.stop()
        await other.close()
    rows = await pool.fetch(
        "SELECT seq, operator FROM audit_log WHERE national_id = $1 ORDER BY seq", nid
    )
    assert len(rows) == 120
    switches = sum(a["operator"] != b["operator"] for a, b in itertools.pairwise(rows))
    assert switches >= 4, "the two writers' batches interleave on the one chain"
    result = await queries.verify(from_=start, to=start + timedelta(hours=1))
    assert result.ok, result.first_broken
    assert result.checked == 120


async def test_instances_appending_at_once_each_send_a_batch_once(
    settings: Settings, pool: asyncpg.Pool, queries: AuditQueries
) -> None:
    """The database numbers and hashes a batch under the head's lock (migration 0017): a
    writer never has to hash its batch again and resend it because another instance appended
    first, however their commits interleave."""
    sent: list[int] = []  # the records of each append statement, as sent

    def logged(query: asyncpg.connection.LoggedQuery) -> None:
        if "ssogw_audit_append" in query.query and query.exception is None:
            sent.append(len(next(a for a in query.args if isinstance(a, list))))

    async def logging_conn(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(logged)

    pools = [
        await asyncpg.create_pool(settings.primary_dsn, min_size=1, max_size=2, init=logging_conn)
        for _ in range(3)
    ]
    writers = [AuditWriter(pool_provider=lambda p=p: p, max_batch=8, max_wait_ms=0) for p in pools]
    start = past_window()
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    try:
        for w in writers:
            await w.start()
        for first in range(0, 240, 60):  # rounds in which all three commit at once
            await asyncio.gather(
                *(
                    writers[i % 3].record(
                        record(nid, start + timedelta(seconds=i), operator=f"w{i % 3}")
                    )
                    for i in range(first, first + 60)
                )
            )
    finally:
        for w in writers:
            await w.stop()
        for p in pools:
            await p.close()
    rows = await pool.fetch(
        "SELECT seq, operator FROM audit_log WHERE national_id = $1 ORDER BY seq", nid
    )
    switches = sum(a["operator"] != b["operator"] for a, b in itertools.pairwise(rows))
    assert switches >= 8, "the writers' batches interleave on the one chain"
    assert sum(sent) == 240, f"240 records sent as {sum(sent)} in {len(sent)} appends"
    result = await queries.verify(from_=start, to=start + timedelta(hours=1))
    assert result.ok, result.first_broken
    assert result.checked == 240


async def test_stop_flushes_what_is_queued_and_then_refuses(pool: asyncpg.Pool) -> None:
    slow = AuditWriter(pool_provider=lambda: pool, max_batch=1000, max_wait_ms=5_000)
    await slow.start()
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    calls = [asyncio.create_task(slow.record(record(nid, datetime.now(UTC)))) for _ in range(10)]
    await asyncio.sleep(0.01)  # queued; the writer lingers for more
    async with asyncio.timeout(2):  # stop does not wait out the linger
        await slow.stop()
    await asyncio.gather(*calls)
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE national_id = $1", nid) == 10
    with pytest.raises(AuditUnavailable):
        await slow.record(record(nid, datetime.now(UTC)))


async def test_details_addresses_and_odd_text_survive_the_round_trip(
    writer: AuditWriter, queries: AuditQueries
) -> None:
    start = past_window()
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    odd: list[dict[str, Any]] = [
        {"source_ip": "::ffff:192.0.2.1", "detail": {"big": 1e20, "tiny": 1.5e-7, "n": None}},
        {"source_ip": "2001:db8::1", "detail": {"z": [1, 2.5, "x"], "a": {"b": True}}},
        {"source_ip": None, "operator": "", "terminal": None, "detail": {}},
        {"name_returned": "NUL\x00inside", "detail": {"k\x00": "v\x00"}},
        {"principal_id": None, "principal_name": None, "outcome": "client.person_not_found"},
    ]
    for i, fields in enumerate(odd):
        await writer.record(record(nid, start + timedelta(microseconds=i * 7 + 1), **fields))
    result = await queries.verify(from_=start, to=start + timedelta(hours=1))
    assert result.ok, result.first_broken
    assert result.checked == len(odd)


# --- tampering ---------------------------------------------------------------------------------
# By someone with the owner's rights (a DBA, a stolen owner password): the service role may
# only append (test_database_roles.py), so verify must catch what only they could do.
async def _written_block(
    writer: AuditWriter, pool: asyncpg.Pool, n: int
) -> tuple[datetime, list[int]]:
    start = past_window()
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    await asyncio.gather(
        *(writer.record(record(nid, start + timedelta(minutes=i))) for i in range(n))
    )
    rows = await pool.fetch("SELECT seq FROM audit_log WHERE national_id = $1 ORDER BY seq", nid)
    return start, [r["seq"] for r in rows]


async def test_an_edited_record_is_found_and_named(
    writer: AuditWriter, pool: asyncpg.Pool, owner_pool: asyncpg.Pool, queries: AuditQueries
) -> None:
    start, seqs = await _written_block(writer, pool, 20)
    window = {"from_": start, "to": start + timedelta(hours=1)}
    assert (await queries.verify(**window)).ok
    target = seqs[11]
    original = await pool.fetchval("SELECT name_returned FROM audit_log WHERE seq = $1", target)
    await owner_pool.execute("UPDATE audit_log SET name_returned = 'นาง อื่น' WHERE seq = $1", target)
    try:
        result = await queries.verify(**window)
        assert not result.ok
        assert result.first_broken is not None
        assert result.first_broken.seq == target
        assert "edited" in result.first_broken.reason
        assert result.broken == 1, "one edit is one fault, not a cascade"
        assert result.checked == 20
    finally:
        await owner_pool.execute(
            "UPDATE audit_log SET name_returned = $2 WHERE seq = $1", target, original
        )
    assert (await queries.verify(**window)).ok


@pytest.mark.parametrize("position", ["middle", "first", "last"])
async def test_a_removed_record_is_found(
    writer: AuditWriter,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    queries: AuditQueries,
    position: str,
) -> None:
    start, seqs = await _written_block(writer, pool, 12)
    window = {"from_": start, "to": start + timedelta(hours=1)}
    target = {"middle": seqs[5], "first": seqs[0], "last": seqs[-1]}[position]
    removed = await pool.fetchrow("SELECT * FROM audit_log WHERE seq = $1", target)
    assert removed is not None
    await owner_pool.execute("DELETE FROM audit_log WHERE seq = $1", target)
    try:
        result = await queries.verify(**window)
        assert not result.ok
        assert result.first_broken is not None
        assert result.first_broken.seq == target
        assert "missing" in result.first_broken.reason
    finally:
        columns = list(removed.keys())
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        await owner_pool.execute(
            f"INSERT INTO audit_log ({', '.join(columns)}) VALUES ({placeholders})",
            *removed.values(),
        )
    assert (await queries.verify(**window)).ok


async def test_a_rehashed_edit_still_breaks_the_link_to_the_next_record(
    writer: AuditWriter, pool: asyncpg.Pool, owner_pool: asyncpg.Pool, queries: AuditQueries
) -> None:
    start, seqs = await _written_block(writer, pool, 6)
    window = {"from_": start, "to": start + timedelta(hours=1)}
    target = seqs[2]
    stored = await pool.fetchrow("SELECT * FROM audit_log WHERE seq = $1", target)
    assert stored is not None
    forged = dataclasses.replace(_stored_row(stored), name_returned="forged")
    new_hash = chain_hash(bytes(stored["prev_hash"]), target, forged)
    await owner_pool.execute(
        "UPDATE audit_log SET name_returned = 'forged', hash = $2 WHERE seq = $1", target, new_hash
    )
    try:
        result = await queries.verify(**window)
        assert result.first_broken is not None
        assert result.first_broken.seq == target + 1
        assert "prev_hash" in result.first_broken.reason
    finally:
        await owner_pool.execute(
            "UPDATE audit_log SET name_returned = $2, hash = $3 WHERE seq = $1",
            target, stored["name_returned"], stored["hash"],
        )  # fmt: skip
    assert (await queries.verify(**window)).ok
