"""Which base backups retention keeps, what a restore's --to means, and which archived WAL
files a prune removes (no PostgreSQL: the rules alone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.db.backup.catalogue import BackupEntry
from app.db.backup.restore import choose_backup, parse_target
from app.db.backup.retention import backups_to_keep
from app.db.backup.wal_archive import prune_segments
from app.domain.calendar import BANGKOK

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def backup(days_ago: float, n: int) -> BackupEntry:
    finished = NOW - timedelta(days=days_ago)
    return BackupEntry(
        id=f"b{n}", started_at=finished - timedelta(minutes=1), finished_at=finished,
        start_lsn="0/0", end_lsn="0/0", timeline=1, start_wal=f"00000001000000000000000{n}",
        size_bytes=1, verified=True, server_version="15",
    )  # fmt: skip


# Backups finished 20, 9, 6, 2 and 0.5 days ago.
BACKUPS = [backup(20, 1), backup(9, 2), backup(6, 3), backup(2, 4), backup(0.5, 5)]


@pytest.mark.parametrize(
    ("keep", "keep_days", "kept"),
    [
        (None, None, ["b1", "b2", "b3", "b4", "b5"]),  # no policy: nothing goes
        (2, None, ["b4", "b5"]),
        (1, None, ["b5"]),
        (0, None, ["b5"]),  # the newest always stays
        (None, 7, ["b2", "b3", "b4", "b5"]),  # b2: a restore to 7 days ago starts from it
        (None, 9.5, ["b1", "b2", "b3", "b4", "b5"]),
        (None, 1, ["b4", "b5"]),
        (None, 0.1, ["b5"]),
        (1, 3, ["b3", "b4", "b5"]),  # the union of both
    ],
)
def test_retention_keeps_the_newest_and_what_the_window_needs(
    keep: int | None, keep_days: float | None, kept: list[str]
) -> None:
    chosen = backups_to_keep(BACKUPS, keep=keep, keep_days=keep_days, now=NOW)
    assert [entry.id for entry in chosen] == kept


def test_a_restore_starts_from_the_newest_backup_finished_before_its_target() -> None:
    assert choose_backup(BACKUPS, NOW - timedelta(days=3)).id == "b3"
    assert choose_backup(BACKUPS, None).id == "b5"
    with pytest.raises(RuntimeError, match="no base backup finished before"):
        choose_backup(BACKUPS, NOW - timedelta(days=30))


def test_a_target_without_an_offset_is_bangkok_time() -> None:
    assert parse_target("2025-03-10T19:00:00") == datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    assert parse_target("2025-03-10T19:00:00+07:00") == parse_target("2025-03-10T12:00:00Z")
    assert parse_target("2025-03-10 19:00").tzinfo is BANGKOK  # type: ignore[union-attr]
    assert parse_target("latest") is None
    with pytest.raises(ValueError, match="not an ISO date-time"):
        parse_target("yesterday")


def test_a_prune_removes_older_segments_of_every_timeline_and_keeps_history(
    tmp_path: Path,
) -> None:
    names = [
        "000000010000000000000003", "000000010000000000000004.00000028.backup",
        "000000010000000000000004.part", "000000020000000000000004", "00000002.history",
        "000000010000000000000005", "000000020000000000000006.partial", "README",
    ]  # fmt: skip
    for name in names:
        (tmp_path / name).write_text("")
    removed = prune_segments(tmp_path, before="000000020000000000000005")
    assert removed == names[:4]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[4:])
