"""One spool, one running process: the lock says so, and must go on saying so after the
instance's directory is removed while it runs (an operator's cleanup, a volume remounted
empty). The spool makes the directory again at its next write; without taking the lock again a
second instance with the same id could claim it, and two processes would spool into, and
replay, one file. A lock refused for another reason than a holder is not reported as one, and
a replay the primary keeps refusing is logged once, not every second."""

from __future__ import annotations

import errno
import fcntl
import logging
import shutil
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from app.audit.chain import AuditRow
from app.audit.spool.files import SPOOL_FILE, AuditSpool, SpoolUnusable
from app.audit.spool.replay import SpoolReplay
from tests.support.audit_rows import spooled_row


def test_a_directory_made_again_is_locked_again(tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    try:
        spool.append([(uuid4(), spooled_row(1))])
        shutil.rmtree(tmp_path / "w1")  # and the lock file with it
        spool.append([(uuid4(), spooled_row(2))])  # made again
        twin = AuditSpool(tmp_path, instance_id="w1")
        with pytest.raises(SpoolUnusable, match="in use by another running instance"):
            twin.claim()
    finally:
        spool.release()


def test_a_directory_another_instance_claimed_meanwhile_is_not_written_into(
    tmp_path: Path,
) -> None:
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    twin = AuditSpool(tmp_path, instance_id="w1")
    try:
        shutil.rmtree(tmp_path / "w1")
        twin.claim()  # the directory is free: made, and locked, by the twin
        with pytest.raises(OSError, match="held by another instance"):
            spool.append([(uuid4(), spooled_row(1))])
        assert not (tmp_path / "w1" / SPOOL_FILE).exists()
        assert not spool.writable(), "/readyz: this instance can no longer spool"
        twin.append([(uuid4(), spooled_row(2))])
        with pytest.raises(OSError, match="held by another instance"):
            list(spool.take())  # the twin's records are the twin's to replay
        assert (tmp_path / "w1" / SPOOL_FILE).exists(), "not taken aside"
    finally:
        twin.release()
        spool.release()


def test_a_lock_the_file_system_refuses_is_not_reported_as_a_running_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flock fails with ENOLCK on a file system without locks (some NFS mounts): the operator
    must be told the directory is unusable, not sent looking for an instance that is not there."""

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(SpoolUnusable) as refused:
        AuditSpool(tmp_path, instance_id="w1").claim()
    assert "No locks available" in str(refused.value)
    assert "in use by another running instance" not in str(refused.value)


async def test_a_replay_the_primary_keeps_refusing_is_logged_once_until_one_gets_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal that is neither an outage nor the records' values (the service role lost its
    grant on the append function, say) is tried again every second while the writer is idle:
    one traceback until a replay gets through, not 3,600 an hour."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    refusing = True

    async def append(rows: list[tuple[object, AuditRow]]) -> None:
        if refusing:
            raise asyncpg.InsufficientPrivilegeError("permission denied for function")

    replay = SpoolReplay(spool, append=append, max_batch=10, timeout_s=5)
    try:
        spool.append([(uuid4(), spooled_row(1))])
        with caplog.at_level(logging.ERROR, logger="app.audit.spool.replay"):
            for _ in range(3):
                await replay.replay()
            assert replay.waiting()
            assert len(caplog.records) == 1
            refusing = False
            await replay.replay()
            assert not replay.waiting()
            refusing = True
            spool.append([(uuid4(), spooled_row(2))])
            await replay.replay()
            assert len(caplog.records) == 2, "refused again after one got through: told again"
    finally:
        spool.release()
