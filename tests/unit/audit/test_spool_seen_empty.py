"""The spool remembers it was seen empty only while it holds its directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from app.audit.chain import AuditRow
from app.audit.spool.files import AuditSpool


def _row(n: int) -> AuditRow:
    return AuditRow(
        at=datetime(2026, 11, 1, tzinfo=UTC), principal_kind="partner", principal_id=None,
        principal_name="cvs", operator=None, terminal=None, source_ip="203.0.113.7",
        protocol="soap", operation="InquireContribution", national_id="3100600445635",
        name_returned=None, outcome="ok", request_id=f"r{n}", detail=None,
    )  # fmt: skip


def test_records_spooled_while_the_directory_was_let_go_are_pending_when_claimed_again(
    tmp_path: Path,
) -> None:
    mine = AuditSpool(tmp_path, instance_id="gw")
    mine.claim()
    assert not mine.pending()  # seen empty
    mine.release()  # the writer stopped (stop_gateway), the directory free for another
    other = AuditSpool(tmp_path, instance_id="gw")
    other.claim()
    other.append([(uuid4(), _row(1))])
    other.release()
    mine.claim()  # started again
    try:
        assert mine.pending(), "the other process's records wait for the primary"
        assert [r.request_id for _, r in mine.take()] == ["r1"]
    finally:
        mine.release()
