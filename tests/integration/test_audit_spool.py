"""The audit spool: one per instance (its id in the path, held while it runs), private files,
records moved onto the chain exactly once when the primary answers again — a replay cut short
after its commit included — and no instance serving without a spool it can write."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import socket
import stat
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from pydantic import ValidationError

from app.audit.chain import prepare
from app.audit.records import AuditRecord
from app.audit.spool.files import REPLAYING_FILE, SPOOL_FILE, AuditSpool, SpoolUnusable
from app.audit.writer import AuditWriter
from app.db.pools import PoolConfig, open_pool
from app.domain.national_id import generate_national_id
from app.main import build_gateway, start_gateway, stop_gateway
from app.settings import Settings
from tests.support.dead_primary import unreachable_pool

pytestmark = pytest.mark.db


@pytest.fixture
async def dead_pool() -> AsyncIterator[asyncpg.Pool]:
    """A pool to a port nothing listens on: the primary is unreachable."""
    pool = await unreachable_pool()
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def gateway_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The primary, when it answers."""
    assert settings.primary_dsn
    pool = await open_pool(
        settings.primary_dsn, PoolConfig(1, 4, 3.0, 30.0), read_only=False, name="test-spool"
    )
    try:
        yield pool
    finally:
        await pool.close()


class Instance:
    """A writer with its own spool under ``base``, on a primary that can go away and return."""

    def __init__(self, base: Path, instance_id: str, dead: asyncpg.Pool) -> None:
        self.current = dead
        self.spool = AuditSpool(base, instance_id=instance_id)
        self.writer = AuditWriter(
            pool_provider=lambda: self.current, max_batch=50, max_wait_ms=1, spool=self.spool
        )


def inquiry(national_id: str, at: datetime) -> AuditRecord:
    return AuditRecord(
        at=at, protocol="soap", operation="InquireContribution", outcome="ok",
        request_id=uuid.uuid4().hex, principal_kind="partner", principal_name="cvs",
        source_ip="203.0.113.7", national_id=national_id, name_returned="นาง ทดสอบ ระบบ",
        detail={"servedBy": "replica"},
    )  # fmt: skip


async def on_chain(pool: asyncpg.Pool, request_ids: list[str]) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT request_id, count(*) AS n FROM audit_log WHERE request_id = ANY($1)"
        " GROUP BY request_id",
        request_ids,
    )
    return {r["request_id"]: r["n"] for r in rows}


async def replayed(instance: Instance, pool: asyncpg.Pool, ids: list[str]) -> None:
    """Wait until the spool is empty and every record is on the chain."""
    deadline = time.monotonic() + 15
    while instance.spool.pending() or len(await on_chain(pool, ids)) < len(ids):
        assert time.monotonic() < deadline, "the spool was not replayed in time"
        await asyncio.sleep(0.05)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_each_instance_spools_privately_in_its_own_directory_then_replays_once(
    tmp_path: Path, dead_pool: asyncpg.Pool, gateway_pool: asyncpg.Pool
) -> None:
    """Two instances given the same spool directory (the parent): one spool each, by id."""
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    now = datetime.now(UTC)
    instances = [Instance(tmp_path, name, dead_pool) for name in ("gw-a", "gw-b")]
    spooled: dict[str, list[str]] = {}
    for instance in instances:
        await instance.writer.start()
    try:
        for n, instance in enumerate(instances):
            records = [inquiry(nid, now + timedelta(seconds=n, microseconds=i)) for i in range(5)]
            await asyncio.gather(*(instance.writer.record(r) for r in records))
            spooled[instance.spool.directory.name] = [r.request_id for r in records]
        for instance in instances:
            directory = instance.spool.directory
            assert directory == tmp_path / directory.name and mode(directory) == 0o700
            file = directory / SPOOL_FILE
            assert mode(file) == 0o600
            text = file.read_text(encoding="utf-8")
            assert all(rid in text for rid in spooled[directory.name])
            other = next(d for d in spooled if d != directory.name)
            assert not any(rid in text for rid in spooled[other]), "one spool each"
            assert text.count('"record_id":') == 5
        for instance in instances:
            instance.current = gateway_pool  # the primary is back
        every = [rid for ids in spooled.values() for rid in ids]
        for instance in instances:
            await replayed(instance, gateway_pool, spooled[instance.spool.directory.name])
    finally:
        for instance in instances:
            await instance.writer.stop()
    assert await on_chain(gateway_pool, every) == dict.fromkeys(every, 1)


async def test_a_replay_cut_short_after_its_commit_is_not_doubled(
    tmp_path: Path, dead_pool: asyncpg.Pool, gateway_pool: asyncpg.Pool
) -> None:
    """The records went onto the chain, then the instance died before removing the file: the
    restarted instance replays the file again and the chain keeps each record once."""
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    first = Instance(tmp_path, "gw-crash", dead_pool)
    await first.writer.start()
    records = [inquiry(nid, datetime.now(UTC) + timedelta(microseconds=i)) for i in range(8)]
    ids = [r.request_id for r in records]
    try:
        await asyncio.gather(*(first.writer.record(r) for r in records))
        left_behind = (first.spool.directory / SPOOL_FILE).read_bytes()
        first.current = gateway_pool
        await replayed(first, gateway_pool, ids)
    finally:
        await first.writer.stop()
    # What a kill between the commit and the unlink leaves on disk.
    (first.spool.directory / REPLAYING_FILE).write_bytes(left_behind)
    restarted = Instance(tmp_path, "gw-crash", gateway_pool)
    restarted.current = gateway_pool
    await restarted.writer.start()
    try:
        await replayed(restarted, gateway_pool, ids)
    finally:
        await restarted.writer.stop()
    assert await on_chain(gateway_pool, ids) == dict.fromkeys(ids, 1)


@pytest.mark.parametrize(
    "poison",
    [
        {"principal_kind": 5},  # asyncpg refuses to encode it
        {"source_ip": "10.0.0.1/32"},  # the canonical form cannot be written (ValueError)
        {"detail": {"rate": float("inf")}},  # nor this one (OverflowError)
    ],
    ids=["not_text", "not_an_address", "infinite"],
)
async def test_a_spooled_record_the_primary_refuses_is_set_aside_and_the_rest_replayed(
    tmp_path: Path, gateway_pool: asyncpg.Pool, poison: dict[str, object]
) -> None:
    """A spooled line that reads as a record but that the primary refuses for what it holds
    (another version's, or one a damaged disk left readable: a principal_kind that is a
    number, an address with a prefix, an infinite number) failed every replay: every record
    spooled after it waited, and the writer read the file and sent the failing statement
    again after every batch. It is set aside for an operator, as it was spooled, and the
    records around it go onto the chain once."""
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    now = datetime.now(UTC)
    rows = [
        (uuid.uuid4(), prepare(inquiry(nid, now + timedelta(microseconds=i)))) for i in range(5)
    ]
    refused = (rows[2][0], dataclasses.replace(rows[2][1], **poison))  # type: ignore[arg-type]
    rows[2] = refused
    left = AuditSpool(tmp_path, instance_id="gw-poison")
    left.claim()
    left.append(rows)
    left.release()
    good = [row.request_id for i, (_, row) in enumerate(rows) if i != 2]
    instance = Instance(tmp_path, "gw-poison", gateway_pool)
    await instance.writer.start()
    try:
        await replayed(instance, gateway_pool, good)
    finally:
        await instance.writer.stop()
    assert await on_chain(gateway_pool, [row.request_id for _, row in rows]) == dict.fromkeys(
        good, 1
    )
    kept = (instance.spool.directory / "audit-spool.refused.jsonl").read_text("utf-8")
    [line] = kept.split("\n")[:-1]
    assert json.loads(line)["record_id"] == str(refused[0])
    assert {key: json.loads(line)[key] for key in poison} == poison


async def test_a_spool_an_older_version_left_is_adopted_and_replayed_once(
    tmp_path: Path, gateway_pool: asyncpg.Pool
) -> None:
    """Lines without record ids, in the shared directory itself: the first instance to start
    takes them over; adopted twice (a crash before the old file went), still once each."""
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    records = [inquiry(nid, datetime.now(UTC) + timedelta(microseconds=i)) for i in range(4)]
    old_lines = "".join(
        json.dumps(asdict(row) | {"at": row.at.isoformat()}, ensure_ascii=False) + "\n"
        for row in map(prepare, records)
    )
    ids = [r.request_id for r in records]
    for name in ("gw-old-a", "gw-old-b"):
        (tmp_path / SPOOL_FILE).write_text(old_lines, encoding="utf-8")
        instance = Instance(tmp_path, name, gateway_pool)
        await instance.writer.start()
        try:
            assert not (tmp_path / SPOOL_FILE).exists()
            await replayed(instance, gateway_pool, ids)
        finally:
            await instance.writer.stop()
    assert await on_chain(gateway_pool, ids) == dict.fromkeys(ids, 1)


async def test_a_spool_directory_serves_one_running_instance(
    tmp_path: Path, dead_pool: asyncpg.Pool
) -> None:
    first = Instance(tmp_path, "twin", dead_pool)
    second = Instance(tmp_path, "twin", dead_pool)
    await first.writer.start()
    try:
        with pytest.raises(SpoolUnusable) as refused:
            await second.writer.start()
        message = str(refused.value)
        assert str(tmp_path / "twin") in message and "SSOGW_INSTANCE_ID" in message
    finally:
        await first.writer.stop()
    await second.writer.start()  # the first let go of it when it stopped
    await second.writer.stop()


async def test_a_gateway_refuses_to_start_when_its_spool_cannot_be_written(
    settings: Settings, tmp_path: Path
) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("not a directory\n")
    unusable = settings.model_copy(update={"audit_spool_dir": occupied, "instance_id": "nope"})
    gw = build_gateway(unusable)
    with pytest.raises(SpoolUnusable) as refused:
        await start_gateway(gw)
    await stop_gateway(gw)
    assert f"the audit spool directory {occupied / 'nope'} is not writable" in str(refused.value)
    assert "SSOGW_AUDIT_SPOOL_DIR" in str(refused.value)  # what to change, said where it fails


async def test_the_spool_is_a_writable_audit_path_only_while_this_instance_holds_it(
    tmp_path: Path, dead_pool: asyncpg.Pool
) -> None:
    """/readyz counts the spool as an audit path while the primary is away: held, writable."""
    instance = Instance(tmp_path, "ready", dead_pool)
    assert not instance.writer.spool_writable()
    await instance.writer.start()
    try:
        assert instance.writer.spool_writable()
        (tmp_path / "ready").chmod(0o500)
        # Root may write anywhere: the permission bits stop only an ordinary user.
        assert instance.writer.spool_writable() is (os.geteuid() == 0)
        (tmp_path / "ready").chmod(0o700)
    finally:
        await instance.writer.stop()
    assert not instance.writer.spool_writable()


def test_the_instance_id_defaults_to_the_host_name_and_must_name_a_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSOGW_INSTANCE_ID", raising=False)
    assert Settings().instance_id == socket.gethostname()
    assert Settings(instance_id="gw-7.zone_a").instance_id == "gw-7.zone_a"
    for bad in ("", "..", ".hidden", "a/b", "x" * 129, "ก"):
        with pytest.raises(ValidationError):
            Settings(instance_id=bad)
