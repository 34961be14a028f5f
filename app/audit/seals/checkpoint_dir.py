"""The checkpoint store outside the database: a directory with one file per checkpoint.

``checkpoint-000000000042.json`` holds checkpoint 42 as one JSON object and a newline (the
format of ``checkpoint``). A file is created whole and exclusively, fsynced with its directory,
and never rewritten or removed by the gateway, so the directory can live on storage that only
appends (a volume shared by the fleet, mirrored to object storage with object lock). The files
hold hashes, sequence numbers, times and signatures: no personal data, so they are 0644.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Final

from app.audit.seals.checkpoint import Checkpoint, StoredCheckpoint
from app.audit.seals.whole_file import create_whole

NAME: Final = re.compile(r"^checkpoint-(\d{12})\.json$")


def file_name(number: int) -> str:
    """The file name of checkpoint ``number``."""
    return f"checkpoint-{number:012d}.json"


class CheckpointDir:
    """A ``CheckpointStore`` in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def where(self) -> str:
        """The directory, for people."""
        return str(self.directory)

    def add(self, checkpoint: Checkpoint) -> bool:
        """Keep ``checkpoint`` durably; False if a file with its number exists."""
        text = json.dumps(checkpoint.document(), separators=(",", ":")) + "\n"
        path = self.directory / file_name(checkpoint.number)
        return create_whole(path, text.encode(), mode=0o644)

    def get(self, number: int) -> StoredCheckpoint | None:
        """Checkpoint ``number``, or None if there is no file for it."""
        path = self.directory / file_name(number)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return _parsed(number, path.name, data)

    def all(self) -> list[StoredCheckpoint]:
        """Every checkpoint file, by number (none when the directory does not exist yet)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = NAME.match(path.name)
            if match is not None:
                found.append(_parsed(int(match.group(1)), path.name, path.read_bytes()))
        return sorted(found, key=lambda s: s.number)


def _parsed(number: int, name: str, data: bytes) -> StoredCheckpoint:
    try:
        checkpoint = Checkpoint.from_document(json.loads(data))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return StoredCheckpoint(number, None, f"the file {name} is not a checkpoint: {exc}")
    if checkpoint.number != number:
        problem = f"the file {name} holds checkpoint {checkpoint.number}"
        return StoredCheckpoint(number, None, problem)
    return StoredCheckpoint(number, checkpoint)
