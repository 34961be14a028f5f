"""The WAL archive: what it holds, making the primary close and archive its current segment,
and removing segments no kept backup needs."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from app.db.local_pair import LocalPair

# A segment (24 hex digits: timeline, log, segment), a backup history file
# (SEGMENT.OFFSET.backup), a partial segment or a copy still being written (.part, by our
# archive_command).
_SEGMENT_FILE = re.compile(r"^([0-9A-F]{24})(\.[0-9A-F]{8}\.backup|\.partial|\.part)?$")


@dataclass(frozen=True, slots=True)
class ArchiveSummary:
    """How many segments the archive holds, their size, and the oldest and newest."""

    segments: int
    size_bytes: int
    oldest: str | None
    newest: str | None

    def as_json(self) -> dict[str, object]:
        return {
            "segments": self.segments,
            "sizeBytes": self.size_bytes,
            "oldest": self.oldest,
            "newest": self.newest,
        }


def summarise(archive: Path) -> ArchiveSummary:
    """What ``archive`` holds (whole segments only)."""
    names = sorted(
        path.name for path in archive.glob("*") if re.fullmatch(r"[0-9A-F]{24}", path.name)
    )
    size = sum((archive / name).stat().st_size for name in names)
    return ArchiveSummary(
        len(names), size, names[0] if names else None, names[-1] if names else None
    )


def switch_and_wait(pair: LocalPair, *, timeout_s: float = 30.0) -> str:
    """Close the primary's current WAL segment and wait until it is in the archive; its name.

    With nothing written since the last switch the primary does not switch, and the name is
    that of the last completed segment, archived already.
    """
    if pair.query("SHOW archive_mode").strip() != "on":
        raise RuntimeError(
            "WAL archiving is off on the local primary: run `ssogw db up` once (it turns "
            "archiving on and restarts the primary)"
        )
    segment = pair.query("SELECT pg_walfile_name(pg_switch_wal())").strip()
    deadline = time.monotonic() + timeout_s
    while not (pair.archive_dir / segment).exists():
        if time.monotonic() > deadline:
            failed = pair.query("SELECT last_failed_wal FROM pg_stat_archiver").strip()
            raise RuntimeError(
                f"WAL segment {segment} was not archived within {timeout_s:.0f} s into "
                f"{pair.archive_dir} (last failure: {failed or 'none'}; see the primary's log)"
            )
        time.sleep(0.05)
    return segment


def prune_segments(archive: Path, *, before: str) -> list[str]:
    """Remove the archived files of segments older than ``before`` (any timeline, as
    pg_archivecleanup does); timeline history files are always kept. The names removed."""
    removed = []
    for path in sorted(archive.iterdir()):
        match = _SEGMENT_FILE.match(path.name)
        if match and match.group(1)[8:] < before[8:]:
            path.unlink()
            removed.append(path.name)
    return removed
