"""Retention: which base backups to keep, and removing the rest with the WAL only they needed.

A backup is kept when it is one of the ``keep`` newest, or when a point-in-time restore to some
moment of the last ``keep_days`` days would start from it: every backup finished inside the
window, and the newest one finished before it (CloudNativePG's ``retentionPolicy`` means the
same). The newest backup is always kept. Archived WAL older than the oldest kept backup's start
is removed: no kept backup can replay it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from app.db.backup.catalogue import BackupEntry, base_dir, list_backups
from app.db.backup.wal_archive import prune_segments


def backups_to_keep(
    backups: Sequence[BackupEntry], *, keep: int | None, keep_days: float | None, now: datetime
) -> list[BackupEntry]:
    """The backups the policy keeps (oldest first); with no policy at all, every one."""
    ordered = sorted(backups, key=lambda entry: (entry.finished_at, entry.id))
    if not ordered or (keep is None and keep_days is None):
        return ordered
    kept = {ordered[-1].id}
    if keep is not None:
        kept.update(entry.id for entry in ordered[-keep:] if keep > 0)
    if keep_days is not None:
        window_start = now - timedelta(days=keep_days)
        before = [entry for entry in ordered if entry.finished_at <= window_start]
        if before:
            kept.add(before[-1].id)
        kept.update(entry.id for entry in ordered if entry.finished_at > window_start)
    return [entry for entry in ordered if entry.id in kept]


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune removed, and what it kept."""

    removed_backups: list[str]
    removed_wal: list[str]
    kept_backups: list[str]

    def as_json(self) -> dict[str, object]:
        return {
            "removedBackups": self.removed_backups,
            "removedWalSegments": len(self.removed_wal),
            "keptBackups": self.kept_backups,
        }


def prune(
    root: Path, archive: Path, *, keep: int | None, keep_days: float | None, now: datetime
) -> Pruned:
    """Apply the policy to the backups under ``root`` and to the WAL archive."""
    backups = list_backups(root)
    kept = backups_to_keep(backups, keep=keep, keep_days=keep_days, now=now)
    kept_ids = {entry.id for entry in kept}
    removed = [entry.id for entry in backups if entry.id not in kept_ids]
    for backup_id in removed:
        shutil.rmtree(base_dir(root) / backup_id)
    # Without a backup, archived WAL restores nothing on its own: it is kept until one exists.
    wal: list[str] = []
    if kept:
        oldest = min(kept, key=lambda entry: entry.start_wal[8:])
        wal = prune_segments(archive, before=oldest.start_wal)
    return Pruned(removed, wal, [entry.id for entry in kept])
