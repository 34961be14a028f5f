"""The partner feed's records and constants, shared by the use case and its SQL."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Protocol

from app.domain.fixed_width import Field, RecordFamily
from app.errors import ServerError


@dataclass(frozen=True, slots=True)
class FeedPartner:
    """The partner a feed is for."""

    id: int
    name: str
    display_name: str
    status: str
    data_scope: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FeedQuery:
    """What the store streams: the allowed fields of one section (or both) in one layout."""

    section: int | None
    fields: tuple[str, ...]  # allowed fields, in layout order
    amounts: tuple[int | None, ...]  # satang per month for each of AMOUNT_KEYS (None: no rate)
    fixed: bool  # D records of DETAIL (without line ends), else CSV with a header row
    amount_month: date  # the first day of the month the amounts are of (an option in force)


class FeedSelection(Protocol):
    """The persons of one export, as one snapshot saw them, their manifest already committed."""

    @property
    def persons(self) -> int:
        """How many national IDs the manifest holds (the rows ``copy`` will stream)."""
        ...

    @property
    def manifest_sha256(self) -> str:
        """The manifest's digest (``manifest_digest``), which the start record seals."""
        ...

    async def copy(self, sink: Callable[[bytes], Awaitable[None]]) -> int:
        """Stream the rows of the snapshot as UTF-8 lines ended by LF to ``sink``; how many."""
        ...


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """The audit record of a finished export, as the store reads it back."""

    at: datetime
    protocol: str
    request_id: str
    exported_by: str | None  # the client's name, or the operator at the command line
    detail: dict[str, Any]


OPERATION: Final = "PartnerFeedExport"  # the record of an export's end: its manifest, or why not
# The record of an export's start, committed with its manifest of national IDs (the table
# audit_feed_manifest) before the first byte leaves; `audit lookups` and the access report show
# every person in that manifest as "included in the feed" by this record.
START_OPERATION: Final = "PartnerFeedExportStart"
MANIFEST_PART: Final = 10_000  # national IDs per row of audit_feed_manifest
MANIFEST_DIGEST: Final = "ssogw-feed-manifest/1"
# A part's digest, as PostgreSQL computes it where the part is kept: the SHA-256 of its IDs in
# decimal, comma-separated, in the order the export read them ({} names the array).
PART_DIGEST_SQL: Final = "pg_catalog.sha256(convert_to(array_to_string({}, ','), 'UTF8'))"


def manifest_digest(export_id: str, parts: Iterable[tuple[int, int, bytes]]) -> str:
    """The digest of an export's manifest of persons (hex): SHA-256 over ``MANIFEST_DIGEST``,
    the export id and, part by part in order, each part's number, size and digest. The export's
    start record seals it, so a manifest row edited, added or removed afterwards is found by
    ``ssogw audit verify`` (which computes it again from the rows kept)."""
    digest = hashlib.sha256(f"{MANIFEST_DIGEST}\n{export_id}\n".encode())
    for part, persons, part_digest in sorted(parts):
        digest.update(f"{part}:{persons}:{bytes(part_digest).hex()}\n".encode())
    return digest.hexdigest()


RECORD_LENGTH: Final = 256


STATUS_CODES: Final = {"active": "A", "inactive": "I", "terminated": "T"}

# The fixed layout's records. The gateway only writes them: a field that cannot be written is
# the gateway's failure, not the caller's.
FEED_RECORDS: Final = RecordFamily(RECORD_LENGTH, ServerError)
HEADER: Final = FEED_RECORDS.layout(
    Field("type", 1, 1),
    Field("layout", 2, 10),
    Field("partner", 12, 20),
    Field("generated_at", 32, 14),  # Bangkok time, YYYYMMDDHHMMSS
    Field("amount_month", 46, 6),  # YYYYMM
    Field("section", 52, 2),  # blank: both sections
    Field("scope", 54, 7),  # Y or N for each of the feed's fields
)
# A D record's fields past the type are named as in the data scope; the store lays them out.
DETAIL: Final = FEED_RECORDS.layout(
    Field("type", 1, 1),
    Field("national_id", 2, 13),
    Field("title", 15, 20),
    Field("first_name", 35, 50),
    Field("last_name", 85, 50),
    Field("section", 135, 2, numeric=True),
    Field("status", 137, 1),
    Field("amount_due", 138, 9, numeric=True),  # satang per month, 7+2 digits
)
TRAILER: Final = FEED_RECORDS.layout(Field("type", 1, 1), Field("rows", 2, 9, numeric=True))
