"""The spool's file system failing in ways a write does not see: a directory fsync refused
(EINVAL, as some file systems do for directories), a parent's fsync that failed before a
restart, a stat that fails (EIO), a claim cut short. None may leave records unnamed on disk,
the instance unable to start or to report, or the spool locked by no one."""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path
from uuid import uuid4

import pytest

from app.audit.spool.files import SPOOL_FILE, AuditSpool, SpoolUnusable
from tests.support.audit_rows import spooled_row
from tests.support.failing_disk import stat_fails


def _directory_fsync_fails(monkeypatch: pytest.MonkeyPatch, code: int) -> list[int]:
    """Every directory fsync fails with ``code`` from here on; the inodes it was asked for."""
    asked: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            asked.append(info.st_ino)
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return asked


def test_a_file_system_that_cannot_fsync_a_directory_still_spools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Some file systems refuse an fsync of a directory (EINVAL): there is nothing more to make
    durable there, as PostgreSQL's own fsync of a directory takes it. Refused so, every first
    write failed, and every record, while /readyz reported the spool writable."""
    asked = _directory_fsync_fails(monkeypatch, errno.EINVAL)
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    try:
        with caplog.at_level(logging.WARNING, logger="app.audit.spool.names"):
            spool.append([(uuid4(), spooled_row(1))])
            assert len(list(spool.take())) == 1
            spool.taken()
            spool.append([(uuid4(), spooled_row(2))])  # a new file: the directory asked again
            assert len(list(spool.take())) == 1
        assert asked.count((tmp_path / "w1").stat().st_ino) == 2, "asked once a new file"
        warned = [r.getMessage() for r in caplog.records if str(tmp_path / "w1") in r.getMessage()]
        assert len(warned) == 1, "the operator told once that names may not be durable there"
        assert "cannot fsync a directory (EINVAL)" in warned[0]
    finally:
        spool.release()


def test_a_directory_fsync_that_fails_otherwise_still_fails_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    try:
        _directory_fsync_fails(monkeypatch, errno.EIO)
        with pytest.raises(OSError, match="Input/output error"):
            spool.append([(uuid4(), spooled_row(1))])
    finally:
        spool.release()


def test_a_restart_names_the_instance_directory_its_first_start_could_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first claim made the instance's directory, and the fsync of its parent failed: that
    instance did not start. The restart finds the directory there; its name must still be made
    durable before a record is spooled in it."""
    first = AuditSpool(tmp_path, instance_id="w1")
    _directory_fsync_fails(monkeypatch, errno.EIO)
    with pytest.raises(SpoolUnusable):
        first.claim()
    asked = _directory_fsync_fails(monkeypatch, errno.EINVAL)  # recorded, taken as done
    restarted = AuditSpool(tmp_path, instance_id="w1")
    restarted.claim()
    try:
        assert tmp_path.stat().st_ino in asked
    finally:
        restarted.release()


def test_a_claim_cut_short_by_any_error_lets_go_of_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error that is not the file system's (here one raised while an older version's spool
    is taken in) ends the claim: the lock goes with it, or the restarted instance finds its own
    directory held by no one running."""

    def cut_short(self: AuditSpool) -> None:
        raise MemoryError

    spool = AuditSpool(tmp_path, instance_id="w1")
    with monkeypatch.context() as patched:
        patched.setattr(AuditSpool, "_adopt_legacy", cut_short)
        with pytest.raises(MemoryError) as failed:
            spool.claim()
    again = AuditSpool(tmp_path, instance_id="w1")
    again.claim()  # SpoolUnusable "in use by another running instance" while the lock was held
    again.release()
    del failed  # held until here: its traceback holds the claim's frame, and what it opened


def test_a_stat_that_fails_counts_the_spool_as_waiting_and_the_gauge_what_it_can_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stat() on a failing disk (EIO): the writer asks ``pending()`` after every batch and the
    gauge asks ``pending_bytes()`` at every scrape; an error escaping either ended the writer's
    task (every record after it waiting for ever) or failed the whole /metrics scrape."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    try:
        spool.append([(uuid4(), spooled_row(1))])
        stat_fails(monkeypatch, SPOOL_FILE)
        assert spool.pending() is True  # a replay is tried, and fails where it can be handled
        assert spool.pending_bytes() == 1  # no size read before: waiting, not drained
    finally:
        spool.release()
