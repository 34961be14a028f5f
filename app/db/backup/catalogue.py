"""The catalogue of base backups: one ``backup.json`` beside each backup's files.

A backup is written under ``ID.part/`` and renamed to ``ID/`` only once it is complete and
verified, so the catalogue never lists a backup that could not be restored from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

ENTRY_FILE = "backup.json"
DATA_DIR = "data"


@dataclass(frozen=True, slots=True)
class BackupEntry:
    """One base backup: when it ran (the server's clock), the WAL it starts from and covers."""

    id: str
    started_at: datetime  # the server's clock before pg_basebackup started
    finished_at: datetime  # the server's clock once the backup had all its WAL
    start_lsn: str
    end_lsn: str
    timeline: int
    start_wal: str  # the oldest archived segment a restore from this backup needs
    size_bytes: int
    verified: bool  # pg_verifybackup checked every file and the WAL against the manifest
    server_version: str

    def as_json(self) -> dict[str, object]:
        """The entry as a JSON document (camelCase, ISO times)."""
        raw = asdict(self)
        raw["started_at"] = self.started_at.isoformat()
        raw["finished_at"] = self.finished_at.isoformat()
        return {_camel(key): value for key, value in raw.items()}

    @classmethod
    def from_json(cls, document: dict[str, object]) -> BackupEntry:
        """The entry ``as_json`` wrote."""
        raw = {_snake(key): value for key, value in document.items()}
        raw["started_at"] = datetime.fromisoformat(str(raw["started_at"]))
        raw["finished_at"] = datetime.fromisoformat(str(raw["finished_at"]))
        return cls(**raw)  # type: ignore[arg-type]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def base_dir(root: Path) -> Path:
    """Where the base backups of the pair under ``root`` are kept."""
    return root / "backups" / "base"


def data_of(root: Path, backup_id: str) -> Path:
    """The data directory (plain format) of one backup."""
    return base_dir(root) / backup_id / DATA_DIR


def list_backups(root: Path) -> list[BackupEntry]:
    """The complete backups, oldest first."""
    entries = [
        BackupEntry.from_json(json.loads(path.read_text()))
        for path in base_dir(root).glob(f"*/{ENTRY_FILE}")
        if not path.parent.name.endswith(".part")
    ]
    return sorted(entries, key=lambda entry: (entry.finished_at, entry.id))


def write_entry(directory: Path, entry: BackupEntry) -> None:
    """Write ``entry`` into a backup's directory."""
    (directory / ENTRY_FILE).write_text(json.dumps(entry.as_json(), indent=2) + "\n")
