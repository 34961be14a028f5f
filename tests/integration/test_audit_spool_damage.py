"""A damaged audit spool: one bad line is set aside, never stops the writer or the rest."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from app.audit.chain import prepare
from app.audit.records import AuditRecord
from app.audit.spool.files import AuditSpool
from app.audit.writer import AuditWriter
from app.db.pools import PoolConfig, open_pool
from app.settings import Settings

pytestmark = pytest.mark.db


def inquiry(nid: str = "3100600445635", name: str = "นาย ก") -> AuditRecord:
    return AuditRecord(
        at=datetime.now(UTC), protocol="soap", operation="InquireContribution", outcome="ok",
        request_id=uuid.uuid4().hex, principal_kind="partner", principal_id=7,
        principal_name="counter", source_ip="10.1.2.3", national_id=nid, name_returned=name,
    )  # fmt: skip


async def writer_on(settings: Settings, spool: AuditSpool) -> tuple[AuditWriter, asyncpg.Pool]:
    assert settings.primary_dsn
    pool = await open_pool(settings.primary_dsn, PoolConfig(1, 2, 3.0, 30.0), read_only=False,
                           name="attack-spool")  # fmt: skip
    writer = AuditWriter(pool_provider=lambda: pool, max_batch=50, max_wait_ms=1, spool=spool)
    await writer.start()
    return writer, pool


@pytest.mark.parametrize("damage", ["torn last line", "line with an unknown field"])
async def test_a_bad_spool_line_is_set_aside_and_the_rest_replayed(
    settings: Settings, tmp_path: Path, damage: str
) -> None:
    """A torn line (a crash or a full disk in the middle of an append) or one another version
    wrote: set aside in audit-spool.unreadable.jsonl for an operator, the good records
    replayed once, and the writer goes on (it once died, and every call then hung)."""
    spool = AuditSpool(tmp_path, instance_id="i-1")
    spool.claim()
    first = inquiry()
    spool.append([(uuid.uuid4(), prepare(first))])
    good = (spool.directory / "audit-spool.jsonl").read_text()
    if damage == "torn last line":
        bad = good[: len(good) // 2]
    else:
        bad = json.dumps({**json.loads(good), "extra": 1}) + "\n"
    (spool.directory / "audit-spool.jsonl").write_text(good + bad)
    spool.release()
    writer, pool = await writer_on(settings, AuditSpool(tmp_path, instance_id="i-1"))
    try:
        await asyncio.wait_for(writer.record(inquiry()), timeout=10)
        await asyncio.sleep(1.5)  # idle with a spool: the writer replays within a second
        replayed = await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE request_id = $1", first.request_id
        )
    finally:
        await asyncio.wait_for(writer.stop(), timeout=10)
        await pool.close()
    assert replayed == 1
    aside = (spool.directory / "audit-spool.unreadable.jsonl").read_text()
    assert aside == bad.rstrip("\n") + "\n"
    assert (spool.directory / "audit-spool.unreadable.jsonl").stat().st_mode & 0o777 == 0o600
