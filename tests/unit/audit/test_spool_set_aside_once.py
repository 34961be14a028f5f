"""A replay the primary cannot take yet (it is down) leaves the spool to be taken again: the
audit writer tries every second while it is idle with records spooled. The lines no version
can read are set aside for an operator once, not once more by every try: an outage of an hour
wrote each of them 3,600 times into the file an operator reads, and logged it as often."""

from __future__ import annotations

import logging
from pathlib import Path
from uuid import uuid4

import pytest

from app.audit.spool.files import REJECTED_FILE, SPOOL_FILE, AuditSpool
from tests.support.audit_rows import spooled_row

TORN = b'{"at":"2026-11-01T00:00:00+00:00","request_id":"r2","tor'


def test_unreadable_lines_are_set_aside_once_however_often_the_replay_is_tried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    try:
        rows = [(uuid4(), spooled_row(1))]
        spool.append(rows)
        with (tmp_path / "w1" / SPOOL_FILE).open("ab") as file:
            file.write(TORN + b"\n")  # the disk filled here
        with caplog.at_level(logging.ERROR, logger="app.audit.spool.files"):
            for _ in range(3):  # the primary still down: taken() is not reached
                assert list(spool.take()) == rows
        assert (tmp_path / "w1" / REJECTED_FILE).read_bytes() == TORN + b"\n"
        assert len(caplog.records) == 1
        # replayed at last, then a new spool with an unreadable line of its own: set aside too
        spool.taken()
        more = [(uuid4(), spooled_row(3))]
        spool.append(more)
        with (tmp_path / "w1" / SPOOL_FILE).open("ab") as file:
            file.write(b"[\n")
        assert list(spool.take()) == more
        assert (tmp_path / "w1" / REJECTED_FILE).read_bytes() == TORN + b"\n[\n"
    finally:
        spool.release()
