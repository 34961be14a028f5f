"""Attacks on the spool's lock checked at every write (``still_held``): what /readyz and the
gauges ask of it while the disk fails, and what a directory removed while the instance ran
and claimed by another instance meanwhile may be done to."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from uuid import uuid4

import pytest

from app.audit.spool.files import SPOOL_FILE, AuditSpool
from app.audit.spool.lock import LOCK_FILE
from tests.support.audit_rows import spooled_row


def test_readiness_asked_while_the_lock_file_cannot_be_stat_ed_says_not_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``writable()`` is asked by /readyz, and by every /metrics scrape (ssogw_ready), while the
    primary is down. It now stats the lock file: a stat that fails otherwise than ENOENT (EIO
    on a failing disk, EACCES on a directory whose mode an operator changed) escaped it, and
    both endpoints answered 500 instead of "not ready" (the rest of the spool's checks answer
    False, and its gauge its last size, on the same failing disk)."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    try:
        spool.append([(uuid4(), spooled_row(1))])
        real = os.stat

        def failing(path: object, *args: object, **kwargs: object) -> os.stat_result:
            if str(path).endswith(LOCK_FILE):
                raise OSError(errno.EIO, "Input/output error")
            return real(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "stat", failing)
        assert spool.writable() is False
    finally:
        spool.release()


def test_a_replay_ended_after_the_directory_changed_hands_leaves_the_new_holder_s_records(
    tmp_path: Path,
) -> None:
    """A replay takes the spool and appends its records to the chain (seconds, on a slow
    primary). Meanwhile the directory is removed (an operator's clean-up) and another instance
    with the same id claims it, spools records the primary did not take and takes them for its
    own replay. The first replay then ends with ``taken()``: it unlinked the file at the path,
    the other instance's, and records that one answered as committed were gone once its replay
    failed (the primary down again) or it was killed."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    twin = AuditSpool(tmp_path, instance_id="w1")
    try:
        spool.append([(uuid4(), spooled_row(1))])
        assert len(list(spool.take())) == 1  # on their way to the chain
        shutil.rmtree(tmp_path / "w1")
        twin.claim()
        twin.append([(uuid4(), spooled_row(2))])
        assert len(list(twin.take())) == 1  # and the primary gone again: kept for the next try
        spool.taken()  # the first replay got through
        assert len(list(twin.take())) == 1, "the other instance's records unlinked"
    finally:
        twin.release()
        spool.release()


def test_a_directory_locked_again_after_another_instance_was_killed_mid_write_keeps_records(
    tmp_path: Path,
) -> None:
    """The directory is removed while the instance runs; another instance with the same id
    claims it, and is killed (-9) in the middle of a write: its spool ends in a line without its
    line feed. This instance's next write locks the directory again (the other is gone) and
    appends; it did not look at how the file ends, as a claim does, and its first record joined
    the torn line: set aside as unreadable at the replay, never onto the chain, though answered
    as committed."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    try:
        spool.append([(uuid4(), spooled_row(1))])
        shutil.rmtree(tmp_path / "w1")
        twin = AuditSpool(tmp_path, instance_id="w1")
        twin.claim()
        twin.append([(uuid4(), spooled_row(2))])
        with (tmp_path / "w1" / SPOOL_FILE).open("ab") as torn:
            torn.write(b'{"at":"2026-11-01T00:00:00+00:00","principal_kind":"par')  # kill -9
        twin.release()  # its end lets go of the lock
        answered = uuid4()
        spool.append([(answered, spooled_row(3))])  # locked again, and answered
        assert answered in {record_id for record_id, _ in spool.take()}
    finally:
        spool.release()


def test_a_start_under_a_directory_this_user_cannot_read_is_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's user owns its data directory, made by an operator in a directory it may
    enter but not read (``/srv`` 0711 root, ``/srv/ssogw`` the service's; as root the test
    refuses the open itself). A claim now names on disk every directory above the instance's
    that this user owns, by an fsync of its parent: the open of ``/srv`` was refused (EACCES)
    and the instance refused to start, which it did before, with nothing of the spool's there
    to name (its own directories were made below, and named)."""
    unreadable = tmp_path / "srv"
    base = unreadable / "ssogw" / "audit-spool"
    base.mkdir(parents=True)
    real = os.open

    def refused(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if Path(str(path)) == unreadable and flags & os.O_DIRECTORY:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refused)
    spool = AuditSpool(base, instance_id="w1")
    spool.claim()
    try:
        spool.append([(uuid4(), spooled_row(1))])
    finally:
        spool.release()


def test_readiness_asked_while_a_write_locks_the_directory_again_says_not_writable(
    tmp_path: Path,
) -> None:
    """A write locks the directory again (``_lock_again``) in the spool's thread: it lets go of
    the old lock, closing its file, before it holds the new one. /readyz and every /metrics
    scrape ask ``writable()`` on the event loop meanwhile, and found the old lock closed: its
    ``fileno()`` raised ValueError, which nothing caught, and the endpoint answered 500. Here
    the old lock is closed as ``let_go`` closes it, with the spool still pointing at it: the
    moment the thread is between the two."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    try:
        spool.append([(uuid4(), spooled_row(1))])
        lock = spool._lock
        assert lock is not None
        lock.close()  # let_go(), the new lock not yet held
        assert spool.writable() is False
    finally:
        spool.release()
