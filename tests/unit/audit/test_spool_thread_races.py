"""Attacks on what the event loop asks of the spool while the spool's thread works on it: the
writer's append (``asyncio.to_thread``) and a replay's take run in a worker thread, while every
/metrics scrape reads the spool's gauge and ``stop()`` lets go of the directory on the loop.
Each test plays the thread's step between two of the loop's, with a real thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from app.audit.spool import files, names
from app.audit.spool.files import REPLAYING_FILE, AuditSpool
from tests.support.audit_rows import spooled_row


def test_the_gauge_read_while_a_replay_takes_the_spool_aside_counts_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A /metrics scrape (``pending_bytes()``, on the loop) stats the file being replayed, then
    the spool. A replay's ``take()`` (in its thread) renames the spool to the file being
    replayed: between the scrape's two stats it found neither (the first not made yet, the
    second gone) and the gauge read 0 with a record waiting; a zero resets the 10 minutes of
    SsogwAuditSpoolNotDraining (``for: 10m``), which must fire on anything above 0."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    try:
        spool.append([(uuid4(), spooled_row(1))])
        replaying = spool.directory / REPLAYING_FILE
        real_stat = Path.stat
        taken: list[Any] = []

        def stat(self: Path, *args: Any, **kwargs: Any) -> Any:
            try:
                return real_stat(self, *args, **kwargs)
            except FileNotFoundError:
                if (
                    self == replaying
                    and not taken
                    and threading.current_thread() is threading.main_thread()
                ):  # the scrape found no file being replayed: the replay's thread runs now
                    replay = threading.Thread(target=lambda: taken.extend(spool.take()))
                    replay.start()
                    replay.join(5)
                raise

        monkeypatch.setattr(Path, "stat", stat)
        gauge = spool.pending_bytes()
        monkeypatch.undo()
        assert len(taken) == 1, "the replay took the record (not yet on the chain)"
        assert gauge > 0, "the gauge read 0 with a record waiting"
    finally:
        spool.release()


def test_a_write_in_flight_when_the_writer_stops_is_not_lost_to_the_next_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's task is cancelled while its append runs in a thread (``asyncio.run`` ending
    the tasks at a forced exit, a second SIGTERM or ^C): ``to_thread`` leaves the thread
    running, and ``stop()``'s ``finally`` calls ``release()`` at once, on the loop. The lock let
    go, another instance given the same directory claims it and replays it: it renames the
    spool aside, with the thread's file open on it, and reads it. The thread then writes its
    record into that file, fsyncs it and returns as committed; the other instance's replay
    gets through and unlinks the file, and the record with it. A write in flight must either
    end before the directory is let go, or fail; not land in a file another process reads."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    early, late = uuid4(), uuid4()
    spool.append([(early, spooled_row(1))])  # the primary down: records wait in the spool
    writing, errors, go, _ = _released_mid_write(spool, late, monkeypatch, file_open=True)
    twin = AuditSpool(tmp_path, instance_id="w1")
    try:
        twin.claim()
        assert twin.pending()
        seen: list[UUID] = [record_id for record_id, _ in twin.take()]
        go.set()
        writing.join(5)
        twin.taken()  # its replay got through
        seen += [record_id for record_id, _ in twin.take()]
    finally:
        go.set()
        writing.join(5)
        twin.release()
    assert early in seen
    assert errors or late in seen, "written, fsynced and returned as committed, then unlinked"


def test_a_write_in_flight_when_the_writer_stops_does_not_spool_into_the_next_holder_s_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As above, the thread a step earlier: it checked the lock, then ``release()`` let go of
    it on the loop before the thread opened the spool, and another instance claimed the
    directory. The thread then created the spool in the directory the other instance holds,
    wrote and fsynced its record there and returned as committed: two processes spooling into
    one directory, which the lock is there to prevent (the other may be taking the spool aside,
    or may have seen it empty, at that moment)."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    late = uuid4()
    writing, errors, go, in_flight = _released_mid_write(spool, late, monkeypatch, file_open=False)
    twin = AuditSpool(tmp_path, instance_id="w1")
    try:
        twin.claim()
        go.set()
        writing.join(5)
    finally:
        go.set()
        writing.join(5)
        twin.release()
    assert not in_flight or errors, (
        "released with its write in flight, which then spooled into the other's directory"
    )


def _released_mid_write(
    spool: AuditSpool, record_id: UUID, monkeypatch: pytest.MonkeyPatch, *, file_open: bool
) -> tuple[threading.Thread, list[BaseException], threading.Event, bool]:
    """Append ``record_id`` in a thread held up just before (``file_open`` False) or just after
    it opens the spool, then ``release()`` the spool on this thread, as ``stop()``'s finally
    does with the writer's task cancelled. The thread goes on 0.3 s later (a release() that
    waits for the write in flight returns then). The thread, what it raised, the event that
    lets it go on, and whether it was still writing when release() returned."""
    paused, go = threading.Event(), threading.Event()
    real_open = names.open_to_append

    def open_to_append(path: Path) -> tuple[int, bool]:
        got = real_open(path) if file_open else None
        if threading.current_thread() is not threading.main_thread():
            paused.set()  # the lock checked as held (and the file open): the loop runs now
            go.wait(2)
        return got if got is not None else real_open(path)

    monkeypatch.setattr(files, "open_to_append", open_to_append)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            spool.append([(record_id, spooled_row(2))])
        except BaseException as exc:
            errors.append(exc)

    writing = threading.Thread(target=write)
    writing.start()
    assert paused.wait(5)
    threading.Timer(0.3, go.set).start()
    spool.release()
    return writing, errors, go, writing.is_alive()
