"""The access report's reads: a person's audit records with the callers' display names.

Implements ``app.access_report.service.AccessReportStore``. The records come from the
``(national_id, at, seq)`` index of each monthly partition, oldest first, a page at a time after
a keyset cursor ``(at, seq)``, with the records a business transaction committed that still
wait for their chain link (seq NULL, after the linked ones of the same instant); the partner's
display name is joined by id for partner calls, and by username for a refused caller that gave
a partner's username. The feed exports whose
manifest held the ID (``audit_feed_manifest``, its GIN index) come as their start records, in
the same order. Read on the primary, where the audit trail is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

import asyncpg

from app.access_report.records import AccessRow
from app.audit.queries import EARLIEST, LATEST
from app.audit.records import UNLINKED_SEQ
from app.db.failures import translated
from app.feed.records import START_OPERATION as FEED_START

_AGGREGATED: Final = "a.detail->>'aggregated' = 'true'"
_COLUMNS: Final = """at, principal_kind, principal_id, principal_name, operator, terminal,
               source_ip, protocol, operation, outcome, request_id, detail"""
# The person's own records, a page after the cursor ($4, $5), oldest first; a record waiting
# for its chain link sorts as seq UNLINKED_SEQ ($7), after the linked ones of its instant.
ACCESSES: Final = f"""
SELECT a.seq, a.at, a.principal_kind, a.principal_name, a.operator, a.terminal, a.protocol,
       a.operation, a.outcome, a.request_id,
       COALESCE(p.display_name, claimed.display_name) AS partner_display_name,
       CASE WHEN {_AGGREGATED} THEN host(a.source_ip) END AS source_ip,
       CASE WHEN {_AGGREGATED} THEN (a.detail->>'calls')::int ELSE 1 END AS calls,
       CASE WHEN {_AGGREGATED} THEN (a.detail->>'last_at')::timestamptz END AS last_at
FROM ((SELECT seq, {_COLUMNS} FROM audit_log
        WHERE national_id = $1 AND at >= $2 AND at < $3 AND (at, seq) > ($4, $5)
        ORDER BY at, seq LIMIT $6)
      UNION ALL
      (SELECT NULL::bigint, {_COLUMNS} FROM audit_unlinked
        WHERE national_id = $1 AND at >= $2 AND at < $3 AND (at, $7::bigint) > ($4, $5)
        ORDER BY at LIMIT $6)) a
LEFT JOIN partners p ON a.principal_kind = 'partner' AND p.id = a.principal_id
LEFT JOIN partners claimed ON a.principal_kind = 'anonymous' AND claimed.username = a.principal_name
ORDER BY a.at, a.seq NULLS LAST
LIMIT $6
"""
# The feed exports whose manifest held the person ($1, as a number), each as its start record,
# with the partner it went to.
FEED_ACCESSES: Final = """
SELECT a.seq, a.at, a.principal_kind, a.principal_name, a.operator, a.terminal, a.protocol,
       a.operation, a.outcome, a.request_id,
       COALESCE(p.display_name, a.detail->>'partner') AS partner_display_name,
       ARRAY(SELECT jsonb_array_elements_text(a.detail->'scope')) AS feed_scope
FROM audit_feed_manifest m
JOIN audit_log a ON a.at = m.at AND a.operation = $7
                AND a.detail->>'export_id' = m.export_id::text
LEFT JOIN partners p ON p.name = a.detail->>'partner'
WHERE m.national_ids @> ARRAY[$1::bigint] AND m.at >= $2 AND m.at < $3
  AND (a.at, a.seq) > ($4, $5)
ORDER BY a.at, a.seq
LIMIT $6
"""
PERSON: Final = """
SELECT title || first_name || ' ' || last_name FROM insured_persons WHERE national_id = $1
"""


class AccessReportRepository:
    """Audit records and the person's name, for access reports."""

    def __init__(self, *, pool_provider: Callable[[], asyncpg.Pool]) -> None:
        self._pool_provider = pool_provider

    async def person_name(self, national_id: str) -> str | None:
        """The person's name as the gateway shows it, or None if nobody has the ID."""
        async with translated("primary"):
            name: str | None = await self._pool_provider().fetchval(PERSON, national_id)
        return name

    async def accesses(
        self,
        *,
        national_id: str,
        from_: datetime | None,
        to: datetime | None,
        after: tuple[datetime, int | None] | None,
        limit: int,
    ) -> list[AccessRow]:
        """Up to ``limit`` audit records of ``national_id`` with ``from_ <= at < to`` after
        ``after`` (at, seq), oldest first: its own, and the feed exports that included it."""
        at, seq = after or (EARLIEST, -1)
        seq = UNLINKED_SEQ if seq is None else seq  # after a record still waiting for its link
        span = (from_ or EARLIEST, to or LATEST, at, seq, limit)
        async with translated("audit"):
            own = await self._pool_provider().fetch(ACCESSES, national_id, *span, UNLINKED_SEQ)
            feeds = await self._pool_provider().fetch(
                FEED_ACCESSES, int(national_id), *span, FEED_START
            )
        rows = [AccessRow(**dict(row)) for row in own]
        for row in feeds:
            rows.append(AccessRow(**{**dict(row), "feed_scope": tuple(row["feed_scope"])}))
        rows.sort(key=lambda row: (row.at, UNLINKED_SEQ if row.seq is None else row.seq))
        return rows[:limit]
