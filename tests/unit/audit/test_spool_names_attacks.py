"""Attacks on the spool's names on disk after the package split: a directory the spool made
whose parent's fsync failed must be named on disk before a record is spooled in it, whether the
spool finds it at its next start or its next write, however many levels it made; a claim
that finds the directory held says so (SpoolUnusable), whatever the lock file holds; and a
spool the disk cannot stat is not reported drained; a first start on a full disk is refused as
unwritable (SpoolUnusable); records handed over go into a directory named on disk."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path
from uuid import uuid4

import pytest

from app.audit.spool.files import SPOOL_FILE, AuditSpool, SpoolUnusable, hand_over
from app.audit.spool.lock import LOCK_FILE
from tests.support.audit_rows import spooled_row
from tests.support.failing_disk import stat_fails


class _DirectoryFsyncs:
    """Every directory fsync from here on: the inodes done, and the ``fail_at``-th (counted
    from 1; 0: every one while ``failing``) refused with EIO."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.done: list[int] = []
        self.failing = False
        self.fail_at = 0
        self._asked = 0
        real = os.fsync

        def fsync(fd: int) -> None:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                self._asked += 1
                if self.failing and self.fail_at in (0, self._asked):
                    raise OSError(errno.EIO, "Input/output error")
                real(fd)
                self.done.append(info.st_ino)
                return
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("failed", [1, 2, 3])
def test_a_restart_names_every_directory_its_first_start_made_and_could_not_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failed: int
) -> None:
    """SSOGW_AUDIT_SPOOL_DIR defaults to ``.data/audit-spool``: a first start may make the
    data directory, the spool directory and the instance's, each named in its parent by an
    fsync. The ``failed``-th of those fsyncs fails (EIO) and that start does not serve. The
    restart finds the directories there: the one whose name did not reach the disk must be
    named before a record is spooled under it, or a power cut loses the directory, and the
    answered records in it. (The restart fsynced only the instance directory's parent.)"""
    base = tmp_path / "data" / "audit-spool"
    made = [tmp_path, tmp_path / "data", base]  # the parents fsynced, in the first start's order
    fsyncs = _DirectoryFsyncs(monkeypatch)
    fsyncs.failing, fsyncs.fail_at = True, failed
    with pytest.raises(SpoolUnusable):
        AuditSpool(base, instance_id="w1").claim()
    fsyncs.failing = False
    fsyncs.done.clear()
    restarted = AuditSpool(base, instance_id="w1")
    restarted.claim()
    try:
        restarted.append([(uuid4(), spooled_row(1))])
        unnamed = made[failed - 1]
        assert unnamed.stat().st_ino in fsyncs.done, f"{unnamed} never named on disk"
    finally:
        restarted.release()


def test_an_instance_directory_made_again_is_named_by_the_write_after_the_one_that_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The instance's directory is removed while it runs; the next write makes it again and
    the fsync of its parent fails (EIO): that write fails. The write after finds the directory
    there and must still name it on disk before it answers, as a restart now does; it fsynced
    only the directory itself, and the records it answered could vanish with the directory."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    try:
        spool.append([(uuid4(), spooled_row(1))])
        shutil.rmtree(tmp_path / "w1")  # an operator's clean-up gone wrong
        fsyncs = _DirectoryFsyncs(monkeypatch)
        fsyncs.failing = True
        with pytest.raises(OSError, match="Input/output error"):
            spool.append([(uuid4(), spooled_row(2))])
        assert (tmp_path / "w1").is_dir(), "made again, its name not on disk"
        fsyncs.failing = False
        spool.append([(uuid4(), spooled_row(3))])  # answered as committed
        assert tmp_path.stat().st_ino in fsyncs.done, "the directory's name never on disk"
    finally:
        spool.release()


def test_a_held_spool_whose_lock_file_cannot_be_read_is_still_refused_as_held(
    tmp_path: Path,
) -> None:
    """A second instance given the same id finds the lock held and reads the holder's pid for
    its message. A lock file it cannot read as text (a damaged disk) raised UnicodeDecodeError
    out of claim(): not SpoolUnusable, so no "does not start" line, and the lock file it opened
    was left open, where every other way a claim ends closes it."""
    running = AuditSpool(tmp_path, instance_id="w1")
    running.claim()
    try:
        (tmp_path / "w1" / LOCK_FILE).write_bytes(b"\xff\xfe\x00garbage\n")
        second = AuditSpool(tmp_path, instance_id="w1")
        opened = len(os.listdir("/proc/self/fd"))
        with pytest.raises(SpoolUnusable, match="in use by another running instance"):
            second.claim()
        assert len(os.listdir("/proc/self/fd")) == opened, "the lock file left open"
    finally:
        running.release()


def test_a_spool_whose_stat_fails_is_not_reported_drained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pending()`` takes a stat that fails (EIO) as records waiting; the gauge
    (ssogw_audit_spool_bytes, whose ``> 0`` for 10 minutes is SsogwAuditSpoolNotDraining)
    counted the file as 0 bytes: the one alert for records stuck in a spool went quiet while
    they waited and every replay failed, exactly when the disk holding them was failing."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    unread = AuditSpool(tmp_path, instance_id="w2")  # never read before the disk failed
    unread.claim()
    try:
        spool.append([(uuid4(), spooled_row(1))])
        before = spool.pending_bytes()
        stat_fails(monkeypatch, SPOOL_FILE)
        assert spool.pending() is True
        assert spool.pending_bytes() == before > 0, "the last size read, not 0"
        assert unread.pending_bytes() > 0, "waiting as far as it can tell, as pending() says"
    finally:
        unread.release()
        spool.release()


def test_a_first_start_on_a_full_disk_is_refused_as_unwritable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first start on a full disk creates the lock file, and writing its pid into it fails
    (ENOSPC, at the flush). Closing the lock then flushes the same bytes again and fails again:
    that second OSError escaped the claim in place of SpoolUnusable, so the instance ended
    with a traceback, not its one "does not start" line saying what to change (as /dev/full
    does: the file closes, its buffered pid unwritten)."""
    real_fdopen = os.fdopen

    def full_disk(fd: int, *args: object, **kwargs: object) -> object:
        opened = real_fdopen(fd, *args, **kwargs)  # type: ignore[call-overload]
        if os.readlink(f"/proc/self/fd/{fd}").endswith(LOCK_FILE):

            def flush() -> None:
                raise OSError(errno.ENOSPC, "No space left on device")

            opened.flush = flush  # close() flushes through it too, as the C close does
        return opened

    monkeypatch.setattr(os, "fdopen", full_disk)
    with pytest.raises(SpoolUnusable, match="not writable: No space left on device"):
        AuditSpool(tmp_path, instance_id="w1").claim()


def test_records_handed_over_go_into_a_directory_named_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker w1's first start made its directory and failed to fsync its parent (EIO). The
    server starts again with fewer workers: hand_over moves former worker w2's records into
    w1's directory and fsyncs both directories, w2's last, so its names are gone from the disk;
    w1's own name in the spool directory was never fsynced, and a power cut before w1 claims
    loses records answered long ago."""
    former = AuditSpool(tmp_path, instance_id="w2")
    former.claim()
    former.append([(uuid4(), spooled_row(1))])
    former.release()
    fsyncs = _DirectoryFsyncs(monkeypatch)
    fsyncs.failing = True
    with pytest.raises(SpoolUnusable):
        AuditSpool(tmp_path, instance_id="w1").claim()
    fsyncs.failing = False
    assert hand_over(tmp_path, source="w2", target="w1") == 1
    assert tmp_path.stat().st_ino in fsyncs.done, "w1's name never on disk"
