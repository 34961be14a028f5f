"""A spooled record's line: the record's row and id as one line of JSON (UTF-8, keys as the
row's fields, ``at`` in ISO 8601, ``record_id`` beside them), as every version since records
had ids writes it; lines of the versions before are still read."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from uuid import UUID, uuid5

from app.audit.chain import AuditRow

# Lines spooled before records had ids get one derived from the line itself, so a line
# adopted twice (by two instances, or again after a crash) is still one record.
_LEGACY_IDS = UUID("5a1f0c2e-8d4b-4f6a-9c3e-2b7d1e0f4a68")


def encode_line(record_id: UUID, row: AuditRow) -> str:
    """The line of ``row`` under ``record_id``, without its line feed."""
    fields = asdict(row)
    fields["at"] = row.at.isoformat()
    fields["record_id"] = str(record_id)
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def decode_line(line: str) -> tuple[UUID, AuditRow]:
    """The record id and row of ``line``: ValueError, TypeError or KeyError for one no
    version of the gateway wrote."""
    fields = json.loads(line)
    fields["at"] = datetime.fromisoformat(fields["at"])
    record_id = fields.pop("record_id", None)
    if record_id is None:
        return uuid5(_LEGACY_IDS, line.strip()), AuditRow(**fields)
    if not isinstance(record_id, str):  # UUID() raises AttributeError on one
        raise TypeError(f"record_id is a {type(record_id).__name__}")
    return UUID(record_id), AuditRow(**fields)


def ends_torn(path: Path) -> bool:
    """Whether ``path`` ends in a line without its line feed (a write cut short)."""
    try:
        with path.open("rb") as file:
            if file.seek(0, os.SEEK_END) == 0:
                return False
            file.seek(-1, os.SEEK_END)
            return file.read(1) != b"\n"
    except FileNotFoundError:
        return False
