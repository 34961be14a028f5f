"""The access report's reads: a person's audit records with the callers' display names.

Implements ``app.access_report.service.AccessReportStore``. The records come from the
``(national_id, at, seq)`` index of each monthly partition, oldest first, with the records a
business transaction committed that still wait for their chain link (seq NULL, after the
linked ones of the same instant); the partner's display name is joined by id for partner calls,
and by username for a refused caller that gave a partner's username. Read on the primary, where
the audit trail is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

import asyncpg

from app.access_report.records import AccessRow
from app.audit.queries import EARLIEST, LATEST
from app.db.failures import translated

_COLUMNS: Final = """at, principal_kind, principal_id, principal_name, operator, terminal,
               protocol, operation, outcome, request_id"""
ACCESSES: Final = f"""
SELECT a.seq, a.at, a.principal_kind, a.principal_name, a.operator, a.terminal, a.protocol,
       a.operation, a.outcome, a.request_id,
       COALESCE(p.display_name, claimed.display_name) AS partner_display_name
FROM ((SELECT seq, {_COLUMNS} FROM audit_log
        WHERE national_id = $1 AND at >= $2 AND at < $3 ORDER BY at, seq LIMIT $4)
      UNION ALL
      (SELECT NULL::bigint, {_COLUMNS} FROM audit_unlinked
        WHERE national_id = $1 AND at >= $2 AND at < $3 ORDER BY at LIMIT $4)) a
LEFT JOIN partners p ON a.principal_kind = 'partner' AND p.id = a.principal_id
LEFT JOIN partners claimed ON a.principal_kind = 'anonymous' AND claimed.username = a.principal_name
ORDER BY a.at, a.seq NULLS LAST
LIMIT $4
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
        self, *, national_id: str, from_: datetime | None, to: datetime | None, limit: int
    ) -> list[AccessRow]:
        """Audit records of ``national_id`` with ``from_ <= at < to``, oldest first."""
        async with translated("audit"):
            rows = await self._pool_provider().fetch(
                ACCESSES, national_id, from_ or EARLIEST, to or LATEST, limit
            )
        return [AccessRow(**dict(row)) for row in rows]
