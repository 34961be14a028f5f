"""A spool handed to another worker (``hand_over``) is taken in whole when that worker claims
its own: a record whose text holds a line break JSON carries raw, or a line torn by a full
disk, must neither stop the worker from starting nor cost the records around it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from app.audit.chain import AuditRow
from app.audit.spool import REJECTED_FILE, SPOOL_FILE, AuditSpool, hand_over

TORN = '{"at":"2026-11-01T00:00:00+00:00","request_id":"r4","tor'


def _row(n: int, name: str | None = None) -> AuditRow:
    return AuditRow(
        at=datetime(2026, 11, 1, tzinfo=UTC), principal_kind="partner", principal_id=None,
        principal_name="cvs", operator=None, terminal=None, source_ip="203.0.113.7",
        protocol="soap", operation="InquireContribution", national_id="3100600445635",
        name_returned=name, outcome="ok", request_id=f"r{n}", detail={"note": name},
    )  # fmt: skip


@pytest.mark.parametrize("brk", ["\x85", "\u2028", "\u2029", "\x1c", "\x0b"])
def test_a_handed_over_spool_is_taken_in_whatever_its_records_hold(
    tmp_path: Path, brk: str
) -> None:
    rows = [(uuid4(), _row(1)), (uuid4(), _row(2, f"สม{brk}ชาย")), (uuid4(), _row(3))]
    gone = AuditSpool(tmp_path, instance_id="w2")  # a worker no longer run
    gone.claim()
    gone.append(rows)
    gone.release()
    with (tmp_path / "w2" / SPOOL_FILE).open("a", encoding="utf-8") as spool:
        spool.write(TORN)  # the disk filled here
    assert hand_over(tmp_path, source="w2", target="w1") == 1

    taker = AuditSpool(tmp_path, instance_id="w1")
    taker.claim()
    try:
        assert list(taker.take()) == rows
        taker.taken()
    finally:
        taker.release()
    rejected = (tmp_path / "w1" / REJECTED_FILE).read_text(encoding="utf-8")
    assert rejected == TORN + "\n", "set aside for an operator, never lost"
