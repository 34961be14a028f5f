"""Bulk import of the source system's insured-person extracts (Section 39 or 40).

The extract is parsed as it streams (in a worker thread, a batch at a time) and its good lines
are COPYed into a staging table in one primary transaction; a line that repeats an ID already
seen is rejected there; then one upsert inserts the new persons and updates the changed ones.
A fatal error (encoding, record length, header, trailer) anywhere rolls everything back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date
from functools import partial
from itertools import islice
from typing import Any, BinaryIO, Final, Protocol

from app.insured.extract_file import PersonRecord, Rejection, read_extract
from app.insured.records import UpsertCounts

MAX_LISTED: Final = 10_000  # rejections listed in a result; all are counted
MAX_LINE_BYTES: Final = 64 * 1024
_BATCH: Final = 10_000
Progress = Callable[[int], None]


class PersonStaging(Protocol):
    """One import's transaction with its staging table."""

    async def stage(self, records: Sequence[PersonRecord]) -> None: ...

    async def upsert(self) -> UpsertCounts: ...


class PersonImportStore(Protocol):
    """Opens an import's transaction with a fresh staging table."""

    def staging(self, section: int) -> AbstractAsyncContextManager[PersonStaging]: ...


@dataclass(frozen=True, slots=True)
class PersonImportResult:
    """The summary of one extract import."""

    section: int
    extract_date: date
    source: str
    lines: int  # detail lines read
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    rejections: tuple[Rejection, ...]  # the first MAX_LISTED, in line order
    seconds: float

    def document(self) -> dict[str, Any]:
        """The summary as one JSON-ready document (camelCase)."""
        return {
            "section": self.section,
            "extractDate": str(self.extract_date),
            "source": self.source,
            "lines": self.lines,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "rejections": [
                {"lineNo": r.line_no, "field": r.field, "reason": r.reason} for r in self.rejections
            ],
            "seconds": round(self.seconds, 3),
        }


def _raw_lines(source: BinaryIO, progress: Progress | None) -> Iterator[bytes]:
    # Bounded reads: a file without line ends is refused at its first piece, not held whole.
    for raw in iter(partial(source.readline, MAX_LINE_BYTES), b""):
        if progress is not None:
            progress(len(raw))
        yield raw


def _next_batch(items: Iterator[PersonRecord | Rejection]) -> list[PersonRecord | Rejection]:
    return list(islice(items, _BATCH))


class PersonImportService:
    """Loads extracts of insured persons: staged, then upserted, all or nothing."""

    def __init__(
        self,
        *,
        store: PersonImportStore,
        prefixes: Mapping[int, frozenset[str]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._prefixes = prefixes
        self._monotonic = monotonic

    async def import_extract(
        self, source: BinaryIO, *, section: int, progress: Progress | None = None
    ) -> PersonImportResult:
        """Import one extract; InvalidExtract (and nothing loaded) on a fatal error."""
        started = self._monotonic()
        header, items = read_extract(
            _raw_lines(source, progress), section=section, prefixes=self._prefixes
        )
        rejections: list[Rejection] = []
        lines = 0
        async with self._store.staging(section) as staging:
            # Parse the next batch in a thread while the database takes this one.
            following = asyncio.ensure_future(asyncio.to_thread(_next_batch, items))
            try:
                while batch := await following:
                    following = asyncio.ensure_future(asyncio.to_thread(_next_batch, items))
                    lines += len(batch)
                    rejections.extend(item for item in batch if isinstance(item, Rejection))
                    await staging.stage([i for i in batch if isinstance(i, PersonRecord)])
            finally:
                if not following.done():  # staging failed: let the thread end, drop its result
                    await asyncio.wait([following])
                    following.exception()
            counts = await staging.upsert()
        rejections.extend(counts.refused)
        rejections.sort(key=lambda r: r.line_no)
        return PersonImportResult(
            section=section,
            extract_date=header.extract_date,
            source=header.source,
            lines=lines,
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
            rejected=len(rejections),
            rejections=tuple(rejections[:MAX_LISTED]),
            seconds=self._monotonic() - started,
        )
