"""The audit export: the whole chain and its checkpoints in one file, verified without a database.

JSON lines, UTF-8 (format ``ssogw-audit-export/1``; U+0085, U+2028 and U+2029 escaped, so that
each line is one line to every reader), in this order:

    {"format": "ssogw-audit-export/1", "canonical": "ssogw-audit/1", "seal": "ssogw-seal/1",
     "head": {"seq": N, "hash": HEX}, "exported_at": ISO}
    {"checkpoint": {...}}      each checkpoint of the store outside the database, by number
    {"record": {"seq": 1, "at": ISO, "principal_kind": ..., ..., "detail": ...,
                "prev_hash": HEX, "hash": HEX}}          each record, in seq order
    {"end": {"records": R, "checkpoints": C}}

A record carries every field of the canonical form (``app.audit.chain``) as stored, so its hash
can be recomputed; ``at`` is UTC ISO 8601 with microseconds, ``source_ip`` the address as text.
A checkpoint is the object of ``app.audit.seals.checkpoint``. The file holds national IDs and
names: it is written 0600 and is personal data wherever it goes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from app.audit.chain import CANONICAL_VERSION, GENESIS_HASH, AuditRow, ChainChecker
from app.audit.records import VerifyResult
from app.audit.seals.checkpoint import (
    SEAL_VERSION,
    Checkpoint,
    StoredCheckpoint,
    TrustedKeys,
    check_checkpoints,
)
from app.audit.seals.sealer import ChainHead
from app.errors import InvalidInput
from app.free_text import one_line

EXPORT_FORMAT: Final = "ssogw-audit-export/1"
StoredRow = tuple[int, AuditRow, bytes, bytes]  # seq, row, prev_hash, hash


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export holds."""

    path: Path
    records: int
    checkpoints: int
    head_seq: int


def _line(document: dict[str, Any]) -> str:
    return one_line(json.dumps(document, ensure_ascii=False, separators=(",", ":"))) + "\n"


def record_document(seq: int, row: AuditRow, prev_hash: bytes, row_hash: bytes) -> dict[str, Any]:
    """A stored record as the export's JSON object."""
    fields = asdict(row)
    fields["at"] = row.at.astimezone(UTC).isoformat(timespec="microseconds")
    return {"seq": seq, **fields, "prev_hash": prev_hash.hex(), "hash": row_hash.hex()}


class ExportWriter:
    """Writes one export file (mode 0600), a part at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
        self._out: IO[str] = os.fdopen(fd, "w", encoding="utf-8")
        self.records = self.checkpoints = 0

    def header(self, head: ChainHead, *, exported_at: datetime) -> None:
        """The first line: the formats and the chain's head the export goes up to."""
        self._out.write(_line({
            "format": EXPORT_FORMAT, "canonical": CANONICAL_VERSION, "seal": SEAL_VERSION,
            "head": {"seq": head.seq, "hash": head.hash.hex()},
            "exported_at": exported_at.astimezone(UTC).isoformat(timespec="microseconds"),
        }))  # fmt: skip

    def checkpoint(self, checkpoint: Checkpoint) -> None:
        """One checkpoint (all of them come before the first record)."""
        self._out.write(_line({"checkpoint": checkpoint.document()}))
        self.checkpoints += 1

    def write_records(self, rows: Sequence[StoredRow]) -> None:
        """Records, in seq order."""
        self._out.write("".join(_line({"record": record_document(*row)}) for row in rows))
        self.records += len(rows)

    def finish(self) -> None:
        """The end line; the file is flushed to disk and closed."""
        self._out.write(_line({"end": {"records": self.records, "checkpoints": self.checkpoints}}))
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()

    def close(self) -> None:
        """Close without the end line (an export cut short reads as incomplete)."""
        self._out.close()


# --- reading and verifying -------------------------------------------------------------------
def _record(document: Any) -> StoredRow:
    fields = dict(document)
    seq, prev_hash, row_hash = fields.pop("seq"), fields.pop("prev_hash"), fields.pop("hash")
    if type(seq) is not int:
        raise ValueError("seq is not a whole number")
    at = datetime.fromisoformat(fields.pop("at"))
    if at.tzinfo is None:
        raise ValueError("'at' has no time zone")
    return seq, AuditRow(at=at, **fields), bytes.fromhex(prev_hash), bytes.fromhex(row_hash)


def _documents(lines: Iterator[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in enumerate(lines, start=1):
        try:
            document = json.loads(text)
        except ValueError:
            raise InvalidInput(f"line {number} of the export is not JSON.") from None
        if not isinstance(document, dict) or (number > 1 and len(document) != 1):
            raise InvalidInput(f"line {number} of the export is not one of its kinds of line.")
        yield number, document


def _checker(checkpoints: Sequence[StoredCheckpoint], keys: TrustedKeys) -> ChainChecker:
    seals = check_checkpoints(checkpoints, keys)
    return ChainChecker(first_seq=1, anchor=GENESIS_HASH, seals=seals, require_seal=True)


def verify_export(
    path: Path, keys: TrustedKeys, *, checkpoints: Sequence[StoredCheckpoint] | None = None
) -> VerifyResult:
    """Verify an export with the public ``keys`` alone: every record's hash and link, the
    checkpoints (the export's, or ``checkpoints`` taken from the store itself) and the records
    against them. InvalidInput if the file is not a whole export."""
    with path.open(encoding="utf-8") as lines:
        documents = _documents(lines)
        _, header = next(documents, (1, {}))
        try:
            if (header["format"], header["canonical"]) != (EXPORT_FORMAT, CANONICAL_VERSION):
                raise ValueError(header["format"])
            head = ChainHead(int(header["head"]["seq"]), bytes.fromhex(header["head"]["hash"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(f"{path} is not an audit export ({EXPORT_FORMAT}).") from None
        stored: list[StoredCheckpoint] = []
        checker: ChainChecker | None = None
        ended = False
        for number, document in documents:
            kind, body = next(iter(document.items()))
            try:
                if kind == "checkpoint" and checker is None:
                    cp = Checkpoint.from_document(body)
                    stored.append(StoredCheckpoint(cp.number, cp))
                elif kind == "record" and not ended:
                    if checker is None:
                        checker = _checker(stored if checkpoints is None else checkpoints, keys)
                    seq, row, prev_hash, row_hash = _record(body)
                    checker.feed(seq, row, prev_hash=prev_hash, stored_hash=row_hash)
                elif kind == "end" and not ended:
                    ended = True
                else:
                    raise ValueError(f"a {kind!r} line is out of place")
            except (ValueError, TypeError, KeyError) as exc:
                raise InvalidInput(f"line {number} of the export: {exc}") from None
    if not ended:
        raise InvalidInput(f"{path} is incomplete: it has no end line.")
    if checker is None:  # an export of an empty chain
        checker = _checker(stored if checkpoints is None else checkpoints, keys)
    checker.expect_end(head.seq)
    if checker.prev_hash is not None and checker.prev_hash != head.hash:
        checker.fail(head.seq, None, "the chain head does not match the last record's hash")
    checker.expect_sealed(head.seq)
    return checker.result(first_seq=1, last_seq=head.seq, head_seq=head.seq)
