"""A spool handed to another worker (``hand_over``) is taken in whole when that worker claims
its own: a record whose text holds a line break JSON carries raw, or a line torn by a full
disk, must neither stop the worker from starting nor cost the records around it."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from app.audit.chain import AuditRow
from app.audit.spool.files import REJECTED_FILE, SPOOL_FILE, AuditSpool, hand_over
from app.audit.spool.lines import encode_line
from tests.support.audit_rows import spooled_row

TORN = '{"at":"2026-11-01T00:00:00+00:00","request_id":"r4","tor'


def taken_by_w1(tmp_path: Path) -> list[tuple[UUID, AuditRow]]:
    """What worker ``w1`` takes from its spool when it claims it (its start)."""
    taker = AuditSpool(tmp_path, instance_id="w1")
    taker.claim()
    try:
        rows = list(taker.take())
        taker.taken()
        return rows
    finally:
        taker.release()


def _hand_over(tmp_path: Path, rows: list[tuple[UUID, AuditRow]], *lines: str) -> None:
    gone = AuditSpool(tmp_path, instance_id="w2")
    gone.claim()
    gone.append(rows)
    gone.release()
    with (tmp_path / "w2" / SPOOL_FILE).open("a", encoding="utf-8") as spool:
        spool.writelines(line + "\n" for line in lines)
    assert hand_over(tmp_path, source="w2", target="w1") == 1


@pytest.mark.parametrize("brk", ["\x85", "\u2028", "\u2029", "\x1c", "\x0b"])
def test_a_handed_over_spool_is_taken_in_whatever_its_records_hold(
    tmp_path: Path, brk: str
) -> None:
    rows = [
        (uuid4(), spooled_row(1)),
        (uuid4(), spooled_row(2, f"สม{brk}ชาย")),
        (uuid4(), spooled_row(3)),
    ]
    gone = AuditSpool(tmp_path, instance_id="w2")  # a worker no longer run
    gone.claim()
    gone.append(rows)
    gone.release()
    with (tmp_path / "w2" / SPOOL_FILE).open("a", encoding="utf-8") as spool:
        spool.write(TORN)  # the disk filled here
    assert hand_over(tmp_path, source="w2", target="w1") == 1

    assert taken_by_w1(tmp_path) == rows
    rejected = (tmp_path / "w1" / REJECTED_FILE).read_text(encoding="utf-8")
    assert rejected == TORN + "\n", "set aside for an operator, never lost"


@pytest.mark.parametrize("bad", ["5", '{"a":1}', "true"], ids=["int", "object", "bool"])
def test_a_record_whose_id_is_not_text_is_set_aside_not_raised(tmp_path: Path, bad: str) -> None:
    """A line that is JSON, and a record but for its id, is a line no version can read: set
    aside like a torn one. UUID() raised AttributeError on it, which take() let through: the
    writer's replay (its task) died, and every call after failed with the writer not running."""
    rows = [(uuid4(), spooled_row(1)), (uuid4(), spooled_row(3))]
    odd = encode_line(uuid4(), spooled_row(2)).replace('"record_id":"', f'"record_id":{bad},"_":"')
    _hand_over(tmp_path, rows, odd)
    assert taken_by_w1(tmp_path) == rows
    assert (tmp_path / "w1" / REJECTED_FILE).read_text(encoding="utf-8") == odd + "\n"


def test_a_line_nested_past_the_recursion_limit_is_set_aside_not_raised(tmp_path: Path) -> None:
    """json.loads raises RecursionError (not ValueError) on a line nested deep enough: one
    such line, torn or garbage, must not stop the records around it nor the writer."""
    rows = [(uuid4(), spooled_row(1))]
    deep = "[" * 100_000
    _hand_over(tmp_path, rows, deep)
    assert taken_by_w1(tmp_path) == rows
    assert (tmp_path / "w1" / REJECTED_FILE).read_text(encoding="utf-8") == deep + "\n"


def test_a_torn_line_ending_the_takers_own_spool_does_not_swallow_the_next_record(
    tmp_path: Path,
) -> None:
    """The taker's own spool may end in a line torn by a full disk (or a kill mid-write) from
    its last run; the first line appended after it (an adopted one, or a new record) joined
    it, and that record went to REJECTED_FILE with the torn text, never to the chain."""
    own = [(uuid4(), spooled_row(1))]
    handed = [(uuid4(), spooled_row(2)), (uuid4(), spooled_row(3))]
    before = AuditSpool(tmp_path, instance_id="w1")  # w1's last run
    before.claim()
    before.append(own)
    before.release()
    with (tmp_path / "w1" / SPOOL_FILE).open("a", encoding="utf-8") as spool:
        spool.write(TORN)  # the disk filled here
    _hand_over(tmp_path, handed)

    assert taken_by_w1(tmp_path) == own + handed
    assert (tmp_path / "w1" / REJECTED_FILE).read_text(encoding="utf-8") == TORN + "\n"


def test_a_write_torn_at_run_time_does_not_swallow_the_next_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose write fails half-way (a full disk) is not committed, and its callers are
    told so; the next batch, once there is room, must not be joined to the torn line: its
    callers were told it is committed."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    first, second = [(uuid4(), spooled_row(1))], [(uuid4(), spooled_row(2))]
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:  # the batch reached the file only in part
        os.truncate(fd, os.fstat(fd).st_size - 40)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        spool.append(first)
    monkeypatch.setattr(os, "fsync", real_fsync)
    spool.append(second)
    try:
        assert list(spool.take()) == second
    finally:
        spool.release()
    assert (tmp_path / "w1" / REJECTED_FILE).read_text(encoding="utf-8").count("\n") == 1


def test_a_line_that_is_not_utf8_is_set_aside_as_it_is_not_altered_onto_the_chain(
    tmp_path: Path,
) -> None:
    """No version writes a spool line that is not UTF-8: one that is not (a damaged disk) is
    set aside, its bytes as they are. Read with errors="replace", its record went onto the
    chain with U+FFFD for what it held (a name, say), and the copy set aside held no more."""
    rows = [(uuid4(), spooled_row(1)), (uuid4(), spooled_row(3))]
    damaged = (
        encode_line(uuid4(), spooled_row(2, "สมชาย"))
        .encode()
        .replace("ม".encode(), b"\xe0\xb8\xff")
    )
    _hand_over(tmp_path, rows)
    (adopted,) = (tmp_path / "w1").glob("adopted-*.jsonl")
    with adopted.open("ab") as spool:
        spool.write(damaged + b"\n")
    assert taken_by_w1(tmp_path) == rows
    assert (tmp_path / "w1" / REJECTED_FILE).read_bytes() == damaged + b"\n"
