"""A spooled record is committed when its lines are on disk and so is the name of the file that
holds them: a file created and fsynced, in a directory that was not, can be missing after a
power cut, and with it records whose callers were answered. Whenever the spool creates a file
(the spool itself, the refused records' file) or its own directory, the directory that names it
is fsynced before the write returns."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from app.audit.spool.files import REFUSED_FILE, SPOOL_FILE, AuditSpool, hand_over
from tests.support.audit_rows import spooled_row


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every fsync from here on, in order: ("dir" or "file", the inode), and then done."""
    calls: list[tuple[str, int]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        real(fd)
        calls.append(("dir" if stat.S_ISDIR(info.st_mode) else "file", info.st_ino))

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


@pytest.fixture
def claimed(tmp_path: Path) -> Iterator[AuditSpool]:
    """Instance w1's spool under ``tmp_path``, claimed, and released after the test."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    yield spool
    spool.release()


def _synced_after_file(calls: list[tuple[str, int]], file: Path, directory: Path) -> bool:
    """Whether ``directory`` was fsynced after ``file``'s lines were."""
    written = calls.index(("file", file.stat().st_ino))
    return ("dir", directory.stat().st_ino) in calls[written:]


def test_a_new_spool_file_is_named_on_disk_before_the_append_returns(
    tmp_path: Path, synced: list[tuple[str, int]], claimed: AuditSpool
) -> None:
    claimed.append([(uuid4(), spooled_row(1))])
    assert _synced_after_file(synced, tmp_path / "w1" / SPOOL_FILE, tmp_path / "w1")
    # taken aside for a replay, the next record starts a new file: named durably too
    rows = list(claimed.take())
    synced.clear()
    claimed.append([(uuid4(), spooled_row(2))])
    assert _synced_after_file(synced, tmp_path / "w1" / SPOOL_FILE, tmp_path / "w1")
    assert len(rows) == 1


def test_appending_to_a_spool_file_already_named_syncs_only_its_lines(
    tmp_path: Path, synced: list[tuple[str, int]], claimed: AuditSpool
) -> None:
    claimed.append([(uuid4(), spooled_row(1))])
    synced.clear()
    claimed.append([(uuid4(), spooled_row(2))])
    assert [kind for kind, _ in synced] == ["file"]


def test_the_refused_records_file_is_named_on_disk_before_the_spool_forgets_them(
    tmp_path: Path, synced: list[tuple[str, int]], claimed: AuditSpool
) -> None:
    claimed.set_aside([(uuid4(), spooled_row(1))])
    assert _synced_after_file(synced, tmp_path / "w1" / REFUSED_FILE, tmp_path / "w1")


def test_the_instance_directory_it_creates_is_named_on_disk(
    tmp_path: Path, synced: list[tuple[str, int]], claimed: AuditSpool
) -> None:
    assert ("dir", tmp_path.stat().st_ino) in synced


def test_a_directory_fsync_that_failed_is_made_again_by_the_next_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synced: list[tuple[str, int]]
) -> None:
    """The first write created the file, its lines were fsynced, the directory's fsync failed
    (EIO): that write failed, but the file is there now, so the next write finds it and did not
    create it. Its records are answered as committed only once the file's name is on disk."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    counted = os.fsync
    failing = True

    def fsync(fd: int) -> None:
        if failing and stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, "Input/output error")
        counted(fd)

    try:
        monkeypatch.setattr(os, "fsync", fsync)
        with pytest.raises(OSError):
            spool.append([(uuid4(), spooled_row(1))])
        failing = False
        synced.clear()
        spool.append([(uuid4(), spooled_row(2))])
        assert _synced_after_file(synced, tmp_path / "w1" / SPOOL_FILE, tmp_path / "w1")
    finally:
        spool.release()


def test_the_parents_it_creates_are_named_on_disk_too(
    tmp_path: Path, synced: list[tuple[str, int]]
) -> None:
    """SSOGW_AUDIT_SPOOL_DIR need not exist: the spool creates it, and each directory it
    creates is named in its parent on disk, or the instance's directory (and the records in it)
    can vanish with it in a power cut."""
    spool = AuditSpool(tmp_path / "volume" / "spool", instance_id="w1")
    spool.claim()
    try:
        assert ("dir", tmp_path.stat().st_ino) in synced
        assert ("dir", (tmp_path / "volume").stat().st_ino) in synced
        assert ("dir", (tmp_path / "volume" / "spool").stat().st_ino) in synced
    finally:
        spool.release()


@pytest.mark.parametrize("name", [SPOOL_FILE, REFUSED_FILE])
def test_a_dangling_symlink_in_a_files_place_fails_the_write_and_does_not_spin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """O_CREAT|O_EXCL finds the link (EEXIST) and the plain open follows it to nothing
    (ENOENT): that is not a file renamed away in between, and trying again cannot change it.
    The write fails (the batch goes to the caller as failed) instead of holding the audit
    writer in a busy loop for ever."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    os.symlink(tmp_path / "gone" / "spool.jsonl", tmp_path / "w1" / name)
    opens, real_open = [], os.open

    def counting_open(path: object, *args: object, **kwargs: object) -> int:
        opens.append(path)
        if len(opens) > 100:
            raise AssertionError("still opening after 100 tries")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    try:
        monkeypatch.setattr(os, "open", counting_open)
        with pytest.raises(FileNotFoundError):
            if name == SPOOL_FILE:
                spool.append([(uuid4(), spooled_row(1))])
            else:
                spool.set_aside([(uuid4(), spooled_row(1))])
        assert len(opens) < 10
    finally:
        spool.release()


def test_a_handed_over_spool_is_named_on_disk_in_its_new_directory(
    tmp_path: Path, synced: list[tuple[str, int]]
) -> None:
    """hand_over moves a stopped worker's files into another's directory: both directories
    are fsynced before it returns, so a power cut leaves the files under one name or the
    other, whatever the file system."""
    stopped = AuditSpool(tmp_path, instance_id="w2")
    stopped.claim()
    stopped.append([(uuid4(), spooled_row(1))])
    stopped.release()
    synced.clear()
    assert hand_over(tmp_path, source="w2", target="w1") == 1
    assert ("dir", (tmp_path / "w1").stat().st_ino) in synced
    assert ("dir", (tmp_path / "w2").stat().st_ino) in synced


def test_a_spool_claimed_again_does_not_trust_what_another_process_left_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synced: list[tuple[str, int]]
) -> None:
    """Released, the directory is another process's until claimed again: it may take the spool
    aside and start a new file whose directory fsync fails (EIO) before it stops. Claimed again,
    the next write finds that file and did not create it; its records are answered as
    committed only once the file's name is on disk."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    spool.append([(uuid4(), spooled_row(1))])  # the directory fsynced: its names known on disk
    spool.release()
    other = AuditSpool(tmp_path, instance_id="w1")
    other.claim()
    list(other.take())
    other.taken()
    counted = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, "Input/output error")
        counted(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError):
        other.append([(uuid4(), spooled_row(2))])  # the new file's name not on disk
    other.release()
    monkeypatch.setattr(os, "fsync", counted)
    spool.claim()
    try:
        synced.clear()
        spool.append([(uuid4(), spooled_row(3))])
        assert _synced_after_file(synced, tmp_path / "w1" / SPOOL_FILE, tmp_path / "w1")
    finally:
        spool.release()
