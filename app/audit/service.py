"""Questions to the audit trail: who looked up an ID (``lookups``); is the chain whole (``verify``).

Lookups see every committed record, including one a business transaction committed a moment
ago whose chain link is still to come (its ``seq`` is None); verify checks the chain and says
how many records are still waiting for their link.

The same service backs ``ssogw audit`` and the REST audit endpoints. It validates and pages;
the store (``AuditQueries``, implemented in ``app.audit.queries``) runs the queries and
recomputes the chain. An audit lookup touches a national ID too, so with a sink it is itself
recorded before its answer is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.audit.records import (
    UNLINKED_SEQ,
    AuditSink,
    LookupCursor,
    LookupRecord,
    Requester,
    VerifyResult,
)
from app.domain.national_id import validate_national_id
from app.errors import InvalidInput, ServiceError

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class LookupPage:
    """Records newest first; ``next_cursor`` is None on the last page."""

    records: list[LookupRecord]
    next_cursor: str | None


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

    async def verify(self, *, from_: datetime | None, to: datetime | None) -> VerifyResult:
        """Recompute the chain over the records in the range (the whole chain when unbounded)."""
        ...


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidInput(f"'{name}' must carry a time zone.", field=name)
    return value


class AuditService:
    """Lookups by national ID and verification of the hash chain."""

    def __init__(
        self,
        *,
        queries: AuditQueries,
        sink: AuditSink | None = None,
        clock: Callable[[], datetime],  # the business clock (app.main)
    ) -> None:
        self._queries = queries
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
        await self._record(requester, national_id, "ok", found=len(records))
        last = records[-1] if records else None
        next_cursor = None
        if more and last is not None:
            seq = UNLINKED_SEQ if last.seq is None else last.seq
            next_cursor = LookupCursor(last.at, seq).encode()
        return LookupPage(records=records, next_cursor=next_cursor)

    async def verify(
        self, from_: datetime | None = None, to: datetime | None = None
    ) -> VerifyResult:
        """Recompute every hash and link of the chain in ``[from_, to)`` (all when unbounded)."""
        _aware(from_, "from")
        _aware(to, "to")
        if from_ is not None and to is not None and from_ >= to:
            raise InvalidInput("'from' must be before 'to'.", field="from")
        return await self._queries.verify(from_=from_, to=to)

    async def _record(
        self, requester: Requester | None, national_id: str, outcome: str, *, found: int
    ) -> None:
        if self._sink is None or requester is None:
            return
        await self._sink.record(
            requester.record(
                at=self._clock(),
                operation="AuditLookups",
                outcome=outcome,
                national_id=national_id,
                detail={"records_returned": found},
            )
        )
