"""Taking a base backup of the local primary: pg_basebackup in plain format with a manifest,
checked by pg_verifybackup, then entered in the catalogue.

Plain rather than tar: pg_verifybackup reads tar backups only from PostgreSQL 18 on, and a
restore from a plain backup is a copy. ``-X stream`` puts the WAL the backup needs to become
consistent inside it, so the backup is restorable on its own and verifiable in full; the
archive supplies what comes after.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from app.db.backup.catalogue import DATA_DIR, BackupEntry, base_dir, write_entry
from app.db.backup.wal_archive import switch_and_wait
from app.db.local_pair import SUPERUSER, LocalPair, read_record
from app.db.pg_binaries import run_as

_START_WAL = re.compile(r"^START WAL LOCATION: (\S+) \(file ([0-9A-F]{24})\)$", re.M)
_TIMELINE = re.compile(r"^START TIMELINE: (\d+)$", re.M)


def take_backup(pair: LocalPair) -> BackupEntry:
    """A new, verified base backup of the running primary, in the catalogue."""
    record = read_record(pair.root)
    if record is None:
        raise RuntimeError(f"no local pair under {pair.root}; run `ssogw db up` first")
    bin_dir = Path(record.bin_dir)
    switch_and_wait(pair)  # also refuses a primary that does not archive yet
    started = _server_now(pair)
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    backup_id = _free_id(base_dir(pair.root), stamp)
    work = base_dir(pair.root) / f"{backup_id}.part"
    for path in (base_dir(pair.root), work):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        pair.user.chown(path)
    try:
        run_as(
            pair.user,
            [str(bin_dir / "pg_basebackup"), "-D", str(work / DATA_DIR), "-h", "127.0.0.1",
             "-p", str(record.primary_port), "-U", SUPERUSER, "-F", "p", "-X", "stream",
             "--checkpoint=fast", "--label", f"ssogw {backup_id}", "--manifest-checksums=CRC32C",
             *([] if record.durable else ["--no-sync"])],
            home=pair.root,
        )  # fmt: skip
        verified = _verify(pair, bin_dir, work / DATA_DIR)
        # The segment holding the backup's end goes to the archive too, so that a restore to
        # any later moment finds every segment from the backup's start on.
        switch_and_wait(pair)
        entry = _entry(
            backup_id, work / DATA_DIR, verified=verified, times=(started, _server_now(pair))
        )
        write_entry(work, entry)
        os.rename(work, base_dir(pair.root) / backup_id)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return entry


def _server_now(pair: LocalPair) -> datetime:
    """The primary's clock: the one commit timestamps, and so restore targets, are read on."""
    return datetime.fromisoformat(pair.query("SELECT to_json(clock_timestamp())#>>'{}'").strip())


def _free_id(directory: Path, stamp: str) -> str:
    taken = {path.name.removesuffix(".part") for path in directory.glob("*")}
    suffix = 1
    candidate = stamp
    while candidate in taken:
        suffix += 1
        candidate = f"{stamp}-{suffix}"
    return candidate


def _verify(pair: LocalPair, bin_dir: Path, data: Path) -> bool:
    """Check the backup against its manifest (and its WAL); False when the tool is missing."""
    tool = bin_dir / "pg_verifybackup"
    if not tool.exists():
        return False
    run_as(pair.user, [str(tool), "--quiet", str(data)], home=pair.root)
    return True


def _entry(
    backup_id: str, data: Path, *, verified: bool, times: tuple[datetime, datetime]
) -> BackupEntry:
    label = (data / "backup_label").read_text()
    start = _START_WAL.search(label)
    timeline = _TIMELINE.search(label)
    if start is None or timeline is None:
        raise RuntimeError(f"unexpected backup_label in {data}: {label[:300]!r}")
    manifest = json.loads((data / "backup_manifest").read_text())
    end_lsn = manifest["WAL-Ranges"][-1]["End-LSN"]
    size = sum(path.stat().st_size for path in data.rglob("*") if path.is_file())
    return BackupEntry(
        id=backup_id,
        started_at=times[0],
        finished_at=times[1],
        start_lsn=start.group(1),
        end_lsn=end_lsn,
        timeline=int(timeline.group(1)),
        start_wal=start.group(2),
        size_bytes=size,
        verified=verified,
        server_version=(data / "PG_VERSION").read_text().strip(),
    )
