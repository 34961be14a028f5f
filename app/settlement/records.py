"""Settlement imports and their lines as the store keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from app.settlement.reconciliation import MatchLine, Summary


@dataclass(frozen=True, slots=True)
class NewImport:
    """An import about to be stored."""

    partner_id: int
    business_date: date
    sha256: bytes
    file_format: str
    file_name: str | None
    file_bytes: int
    header: dict[str, str]
    imported_by: str | None


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """A stored import and its summary."""

    id: int
    partner: str
    business_date: date
    sha256: bytes
    file_format: str
    file_name: str | None
    file_bytes: int
    header: dict[str, str]
    imported_by: str | None
    imported_at: datetime
    summary: Summary


@dataclass(frozen=True, slots=True)
class StoredLine:
    """A result line with its place in the report (rank, then discovery order)."""

    rank: int
    seq: int
    line: MatchLine
