"""A local, durable spool for audit records while the primary cannot take them.

The rule is that an audit record is committed before the answer leaves. When the primary is
unreachable, enquiries can still be answered from a replica; their records are then committed
to this spool instead — appended as JSON lines and fsynced — and moved onto the primary's hash
chain as soon as it answers again (in the order they were spooled, with their original times).
A record that the primary refuses for any other reason (a constraint, say) is never spooled:
that is a real failure and the call fails.

The spool belongs to one instance: give each instance persistent storage for it
(``SSOGW_AUDIT_SPOOL_DIR``), or records spooled by an instance that is lost before the primary
returns are lost with it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from app.audit.chain import AuditRow

SPOOL_FILE = "audit-spool.jsonl"
REPLAYING_FILE = "audit-spool.replaying.jsonl"


def _encode(row: AuditRow) -> str:
    fields = asdict(row)
    fields["at"] = row.at.isoformat()
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _decode(line: str) -> AuditRow:
    fields = json.loads(line)
    fields["at"] = datetime.fromisoformat(fields["at"])
    return AuditRow(**fields)


class AuditSpool:
    """Append-only JSON-lines file of audit rows awaiting the primary."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._path = directory / SPOOL_FILE
        self._replaying = directory / REPLAYING_FILE

    def append(self, rows: list[AuditRow]) -> None:
        """Write ``rows`` durably (fsync) before returning."""
        self._dir.mkdir(parents=True, exist_ok=True)
        text = "".join(_encode(row) + "\n" for row in rows)
        with self._path.open("a", encoding="utf-8") as spool:
            spool.write(text)
            spool.flush()
            os.fsync(spool.fileno())

    def pending(self) -> bool:
        """Whether any spooled rows wait for the primary."""
        return any(p.exists() and p.stat().st_size > 0 for p in (self._replaying, self._path))

    def take(self) -> Iterator[AuditRow]:
        """The spooled rows, oldest first; call ``taken()`` once they are all committed.

        The spool is first renamed aside, so records spooled meanwhile start a new file and a
        replay interrupted half-way is retried whole (the chain accepts a record twice rather
        than losing one).
        """
        if not self._replaying.exists() and self._path.exists():
            os.replace(self._path, self._replaying)
        if not self._replaying.exists():
            return iter(())
        with self._replaying.open(encoding="utf-8") as spool:
            lines = [line for line in spool if line.strip()]
        return (_decode(line) for line in lines)

    def taken(self) -> None:
        """Forget the rows handed out by ``take()`` (they are on the primary now)."""
        self._replaying.unlink(missing_ok=True)
