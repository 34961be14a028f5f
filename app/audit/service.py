"""Questions to the audit trail: who looked up an ID (``lookups``); is the chain whole and as it
was sealed (``verify``); the chain and its checkpoints in one file (``export``).

Lookups see every committed record, including one a business transaction committed a moment
ago whose chain link is still to come (its ``seq`` is None); verify checks the chain and says
how many records are still waiting for their link.

The same service backs ``ssogw audit`` and the REST audit endpoints. It validates and pages;
the store (``AuditQueries``, implemented in ``app.audit.queries``) runs the queries and
recomputes the chain. Verify holds the chain to the signed checkpoints of the store outside the
database (``app.audit.seals``), never to the database's copies alone. An audit lookup touches a
national ID too, so with a sink it is itself recorded before its answer is returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

from app.audit.records import (
    UNLINKED_SEQ,
    AuditSink,
    LookupCursor,
    LookupRecord,
    Requester,
    VerifyResult,
)
from app.audit.seals.checkpoint import (
    Checkpoint,
    CheckpointStore,
    SealCheck,
    TrustedKeys,
    check_checkpoints,
)
from app.audit.seals.export_file import ExportSummary, ExportWriter, StoredRow
from app.audit.seals.sealer import ChainHead
from app.domain.calendar import has_utc_instant
from app.domain.national_id import validate_national_id
from app.errors import InvalidInput, ServiceError

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class LookupPage:
    """Records newest first; ``next_cursor`` is None on the last page."""

    records: list[LookupRecord]
    next_cursor: str | None

    @property
    def names_shown(self) -> str | None:
        """The names the page shows, each once, newest first (``; `` between): what its
        reader saw of the person, as the lookup's own record keeps it."""
        return names_shown(self.records)


#: Between the names a lookup's record keeps; a record of an earlier lookup keeps its names
#: joined so, and they are taken apart again (each name once, never the joined text).
NAMES_SEPARATOR: Final = "; "
#: The most names one lookup's record keeps (a person shown under more names is rare).
MAX_NAMES: Final = 20


def names_shown(records: list[LookupRecord]) -> str | None:
    """The distinct names among ``name_returned`` of ``records``, in their order, or None."""
    names = dict.fromkeys(
        name
        for r in records
        if r.name_returned
        for name in r.name_returned.split(NAMES_SEPARATOR)
        if name
    )
    return NAMES_SEPARATOR.join(list(names)[:MAX_NAMES]) or None


class AuditQueries(Protocol):
    """What the audit service needs from the store."""

    async def lookups(
        self,
        *,
        national_id: str,
        from_: datetime | None,
        to: datetime | None,
        limit: int,
        after: LookupCursor | None,
    ) -> list[LookupRecord]:
        """Records of ``national_id`` with ``from_ <= at < to``, newest first, after ``after``."""
        ...

    async def verify(
        self, *, from_: datetime | None, to: datetime | None, seals: SealCheck | None
    ) -> VerifyResult:
        """Recompute the chain over the records in the range (the whole chain when unbounded)
        and hold it to the checkpoints that verified."""
        ...

    async def checkpoint_copies(self) -> list[Checkpoint]:
        """The database's copies of the checkpoints, by number."""
        ...

    async def head(self) -> ChainHead:
        """The chain's head."""
        ...

    def records(self, *, last: int) -> AsyncIterator[list[StoredRow]]:
        """The stored records up to seq ``last``, in seq order, a chunk at a time."""
        ...


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"'{name}' must carry a time zone.", field=name)
    if not has_utc_instant(value):
        raise InvalidInput(f"'{name}' must lie within the years 1 to 9999 in UTC.", field=name)
    return value


class AuditService:
    """Lookups by national ID, verification of the hash chain and its seals, and the export."""

    def __init__(
        self,
        *,
        queries: AuditQueries,
        checkpoints: CheckpointStore,  # the store outside the database
        keys: Callable[[], TrustedKeys],  # the public keys trusted unless a call names others
        sink: AuditSink | None = None,
        clock: Callable[[], datetime],  # the business clock (app.main)
    ) -> None:
        self._queries = queries
        self._checkpoints = checkpoints
        self._keys = keys
        self._sink = sink
        self._clock = clock

    async def lookups(
        self,
        national_id: str,
        from_: datetime | None = None,
        to: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
        *,
        requester: Requester | None = None,
    ) -> LookupPage:
        """Who touched ``national_id`` in ``[from_, to)``: one page, newest first."""
        national_id = validate_national_id(national_id.strip())
        _aware(from_, "from")
        _aware(to, "to")
        if from_ is not None and to is not None and from_ >= to:
            raise InvalidInput("'from' must be before 'to'.", field="from")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"'limit' must be between 1 and {MAX_PAGE}.", field="limit")
        after = LookupCursor.decode(cursor) if cursor else None
        try:
            rows = await self._queries.lookups(
                national_id=national_id, from_=from_, to=to, limit=limit + 1, after=after
            )
        except ServiceError as exc:
            await self._record(requester, national_id, exc.code, found=0)
            raise
        records, more = rows[:limit], len(rows) > limit
        await self._record(
            requester, national_id, "ok", found=len(records), names=names_shown(records)
        )
        last = records[-1] if records else None
        next_cursor = None
        if more and last is not None:
            seq = UNLINKED_SEQ if last.seq is None else last.seq
            next_cursor = LookupCursor(last.at, seq).encode()
        return LookupPage(records=records, next_cursor=next_cursor)

    async def verify(
        self,
        from_: datetime | None = None,
        to: datetime | None = None,
        *,
        public_keys: TrustedKeys | None = None,
    ) -> VerifyResult:
        """Recompute every hash and link of the chain in ``[from_, to)`` (all when unbounded),
        check the checkpoints outside the database with the public keys (the configured ones
        unless ``public_keys``), and hold the chain to them."""
        _aware(from_, "from")
        _aware(to, "to")
        if from_ is not None and to is not None and from_ >= to:
            raise InvalidInput("'from' must be before 'to'.", field="from")
        keys = self._keys() if public_keys is None else public_keys
        # The copies first: one is committed only after its file is kept, so none read here can
        # be newer than the store read next.
        copies = await self._queries.checkpoint_copies()
        stored = await asyncio.to_thread(self._checkpoints.all)
        seals = check_checkpoints(stored, keys, copies=copies)
        return await self._queries.verify(from_=from_, to=to, seals=seals)

    async def export(self, out: Path, *, requester: Requester | None = None) -> ExportSummary:
        """Write the whole chain, with every checkpoint of the store, to ``out`` (mode 0600);
        with a sink, the requester's export is recorded first (it holds every ID)."""
        # The store before the head: every checkpoint read then seals a record at or before it.
        stored = await asyncio.to_thread(self._checkpoints.all)
        head = await self._queries.head()
        if self._sink is not None and requester is not None:
            detail = {"head_seq": head.seq, "checkpoints": len(stored)}
            await self._sink.record(
                requester.record(
                    at=self._clock(), operation="AuditExport", outcome="ok", detail=detail
                )
            )
        writer = await asyncio.to_thread(ExportWriter, out)
        try:
            writer.header(head, exported_at=self._clock())
            for entry in stored:
                if entry.checkpoint is not None:  # an unreadable one shows as missing
                    writer.checkpoint(entry.checkpoint)
            async for rows in self._queries.records(last=head.seq):
                await asyncio.to_thread(writer.write_records, rows)
            await asyncio.to_thread(writer.finish)
        except BaseException:
            writer.close()
            raise
        return ExportSummary(out, writer.records, writer.checkpoints, head.seq)

    async def _record(
        self,
        requester: Requester | None,
        national_id: str,
        outcome: str,
        *,
        found: int,
        names: str | None = None,
    ) -> None:
        if self._sink is None or requester is None:
            return
        await self._sink.record(
            requester.record(
                at=self._clock(),
                operation="AuditLookups",
                outcome=outcome,
                national_id=national_id,
                name_returned=names,
                detail={"records_returned": found},
            )
        )
