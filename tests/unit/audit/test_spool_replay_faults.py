"""The spool's file system can fail under a replay: remounted read-only after an error (ext4's
errors=remount-ro), full, or failing a write (EIO). The spool is then kept for the next try and
the audit writer goes on; if it ended, every record after it would wait for an answer that
never comes, the instance still serving."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from app.audit.chain import prepare
from app.audit.records import AuditRecord
from app.audit.spool.files import SPOOL_FILE, AuditSpool
from app.audit.writer import AuditWriter
from tests.support.dead_primary import unreachable_pool
from tests.support.failing_disk import stat_fails


def _record(request_id: str) -> AuditRecord:
    return AuditRecord(
        at=datetime.now(UTC), protocol="soap", operation="InquireContribution", outcome="ok",
        request_id=request_id, principal_kind="partner", principal_name="cvs",
        source_ip="203.0.113.7", national_id="3100600445635", name_returned=None, detail={},
    )  # fmt: skip


@pytest.fixture
async def dead_pool() -> AsyncIterator[asyncpg.Pool]:
    """A pool to a port nothing listens on: the primary is unreachable."""
    pool = await unreachable_pool()
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def stuck_writer(
    tmp_path: Path, dead_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> AuditWriter:
    """A writer (not started) whose spool holds a record that no replay can take: the primary
    is gone, and the file system refuses take()'s rename of the spool (read-only)."""
    left = AuditSpool(tmp_path, instance_id="w1")
    left.claim()
    left.append([(uuid.uuid4(), prepare(_record("r0")))])
    left.release()
    real_replace = os.replace

    def read_only(source: object, target: object) -> None:
        if Path(str(source)) == tmp_path / "w1" / SPOOL_FILE:  # take() renames it aside
            raise OSError(errno.EROFS, "Read-only file system")
        real_replace(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", read_only)
    spool = AuditSpool(tmp_path, instance_id="w1")
    return AuditWriter(pool_provider=lambda: dead_pool, max_batch=10, max_wait_ms=1, spool=spool)


async def test_a_replay_the_file_system_refuses_leaves_the_writer_answering(
    tmp_path: Path, stuck_writer: AuditWriter
) -> None:
    writer = stuck_writer
    await writer.start()
    try:
        await asyncio.sleep(1.5)  # idle with a record spooled: the replay is tried after 1 s
        async with asyncio.timeout(10):
            await writer.record(_record("r1"))  # spooled (the primary is still gone)
    finally:
        async with asyncio.timeout(10):
            await writer.stop()
    assert b'"request_id":"r1"' in (tmp_path / "w1" / SPOOL_FILE).read_bytes()


async def test_a_replay_the_file_system_keeps_refusing_is_logged_once_not_every_second(
    stuck_writer: AuditWriter, caplog: pytest.LogCaptureFixture
) -> None:
    """Idle with records spooled, the writer tries a replay every second: a file system that
    stays read-only for an hour logged 3,600 tracebacks, burying the lines around them."""
    writer = stuck_writer
    with caplog.at_level(logging.ERROR, logger="app.audit.spool.replay"):
        await writer.start()
        try:
            await asyncio.sleep(3.5)  # three tries at least
        finally:
            async with asyncio.timeout(10):
                await writer.stop()
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info is not None, "the first one with its traceback"


async def test_a_spool_whose_stat_fails_leaves_the_writer_answering(
    tmp_path: Path, dead_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After every batch, and every second while idle, the writer asks whether records wait in
    the spool (a stat). On a failing disk that stat raised EIO, which ended the writer's task:
    every record after it waited for ever."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    writer = AuditWriter(pool_provider=lambda: dead_pool, max_batch=10, max_wait_ms=1, spool=spool)
    await writer.start()
    try:
        stat_fails(monkeypatch, SPOOL_FILE)
        async with asyncio.timeout(10):
            await writer.record(_record("r1"))  # spooled: the primary is gone
        await asyncio.sleep(1.5)  # idle with it spooled: pending() asked
        async with asyncio.timeout(10):
            await writer.record(_record("r2"))
    finally:
        monkeypatch.undo()
        async with asyncio.timeout(10):
            await writer.stop()  # wakes the idle writer, which may take the spool for a replay
    spooled = b"".join(path.read_bytes() for path in (tmp_path / "w1").glob("audit-spool*"))
    assert b'"request_id":"r1"' in spooled
    assert b'"request_id":"r2"' in spooled
