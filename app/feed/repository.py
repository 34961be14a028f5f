"""The partner feed in SQL: one ``COPY (SELECT …) TO STDOUT`` over ``insured_persons``.

Implements ``app.feed.service.FeedStore``. PostgreSQL lays out each row (the fixed
record of ``app.feed.records.DETAIL``, or CSV columns) and streams it in one statement and one
snapshot; the caller gets the bytes as they arrive. Rows come in storage order (a sequential
scan: no sort of 13 million rows). Control characters in names become spaces, so a record is
always one line of its exact width.

A fixed record is sent as a single CSV column whose quote and delimiter are control characters
no value can hold any more: PostgreSQL then writes it exactly as built, backslashes included
(the text format would double them).

Before a byte is streamed, the export's national IDs are committed to ``audit_feed_manifest``
(``selection``): the COPY runs in a repeatable-read, read-only transaction whose snapshot is
exported, and the manifest is written by a second transaction that imports that snapshot, so it
holds exactly the persons the COPY will send, persons added meanwhile included in neither. The
digest of each part comes back from the insert; the manifest's digest made of them goes into
the export's start record, which the chain and its seals hold.

The manifest of a past export is read back from its audit record (``latest_export``).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Final

import asyncpg

from app.db.failures import translated
from app.domain.rates import Rate
from app.domain.spreadsheet_cells import FORMULA_SQL_CLASS
from app.feed.records import (
    DETAIL,
    MANIFEST_PART,
    OPERATION,
    PART_DIGEST_SQL,
    RECORD_LENGTH,
    STATUS_CODES,
    ExportRecord,
    FeedPartner,
    FeedQuery,
    FeedSelection,
    manifest_digest,
)
from app.rates.repository import fetch_rates

_CONTROL: Final = "\\x01-\\x1f\\x7f"  # a regex class, in an E'' string
_QUOTE: Final = "\x01"
_DELIMITER: Final = "\x02"
PARTNER: Final = "SELECT id, name, display_name, status, data_scope FROM partners WHERE name = $1"
# Newest first by the chain's sequence (an index); ``at`` keeps to the recent partitions.
# Records of exports made before the manifest was kept whole lack generated_at: skipped.
LATEST_EXPORT: Final = """
SELECT at, protocol, request_id, COALESCE(principal_name, operator) AS exported_by,
       detail::text AS detail
FROM audit_log
WHERE operation = $1 AND outcome = 'ok' AND detail->>'partner' = $2 AND at >= $3
  AND detail ? 'generated_at'
ORDER BY seq DESC
LIMIT 1
"""


# The export's national IDs in parts of MANIFEST_PART, in the order the COPY writes them (by
# national ID: the same file for the same data, whatever the table's physical order); each
# part's size and digest come back for the manifest's digest (records.manifest_digest).
KEEP_MANIFEST: Final = (
    """
INSERT INTO audit_feed_manifest (at, export_id, part, national_ids)
SELECT $1, $2::uuid, (n / $3)::integer, array_agg(national_id::bigint ORDER BY n)
FROM (SELECT national_id, row_number() OVER (ORDER BY national_id) - 1 AS n
      FROM insured_persons
      WHERE ($4::smallint IS NULL OR section = $4)) AS selected
GROUP BY n / $3
RETURNING part, cardinality(national_ids) AS persons,
          """
    + PART_DIGEST_SQL.format("national_ids")
    + """ AS digest
"""
)
_SNAPSHOT_ID: Final = re.compile(r"[0-9A-Fa-f-]+")


def _clean(column: str) -> str:
    return f"regexp_replace({column}, E'[{_CONTROL}]', ' ', 'g')"


def _cell(text: str) -> str:
    """``text`` as a spreadsheet-safe CSV cell: ``escape_cell``'s rule in SQL (an apostrophe
    before a value that starts like a formula, or like one escaped already: apostrophes, then
    a formula's start)."""
    return f"regexp_replace({text}, E'^(''*{FORMULA_SQL_CLASS})', E'''\\\\1')"


# A Section 40 member's option in force in the amount month ($6): the one held, or, while a
# change takes effect after that month (DOMAIN.md: from the next month), the option the first
# such change replaced, as the counter's member read takes it. Only persons who changed their
# option are looked up (``option_changed_on``), one index probe each.
_OPTION_IN_FORCE: Final = (
    "CASE WHEN option_changed_on IS NULL THEN s40_option ELSE coalesce(("
    "SELECT c.previous_option FROM s40_option_changes c"
    " WHERE c.national_id = insured_persons.national_id AND c.effective_month > $6::date"
    " ORDER BY c.effective_month, c.changed_on, c.id LIMIT 1), s40_option) END"
)
_AMOUNT: Final = (
    f"CASE WHEN section = 39 THEN $2::bigint ELSE CASE {_OPTION_IN_FORCE}"
    " WHEN 1 THEN $3::bigint WHEN 2 THEN $4::bigint WHEN 3 THEN $5::bigint END END"
)
_STATUS: Final = (
    "CASE status "
    + " ".join(f"WHEN '{word}' THEN '{code}'" for word, code in STATUS_CODES.items())
    + " ELSE '?' END"
)
# Each field as text, for the fixed layout.
_FIXED: Final = {
    "type": "'D'",
    "national_id": "national_id",
    "title": _clean("title"),
    "first_name": _clean("first_name"),
    "last_name": _clean("last_name"),
    "section": "section::text",
    "status": _STATUS,
    "amount_due": f"({_AMOUNT})::text",
}
# Each field as a CSV column: amounts in baht with two decimals, text a spreadsheet never runs.
_CSV: Final = {
    **_FIXED,
    "title": _cell(_FIXED["title"]),
    "first_name": _cell(_FIXED["first_name"]),
    "last_name": _cell(_FIXED["last_name"]),
    "section": "section",
    "status": "status",
    "amount_due": f"to_char(({_AMOUNT}) / 100.0, 'FM9999999990.00')",
}
_EXACT: Final = frozenset({"type", "national_id", "section", "status"})  # always their width
_WHERE: Final = " FROM insured_persons WHERE ($1::smallint IS NULL OR section = $1)"
# Rows by national ID (the primary key's order): two exports of the same data are the same
# bytes, and the manifest lists the IDs in the order the file has them.
_ORDER: Final = " ORDER BY national_id"


def fixed_sql(fields: tuple[str, ...]) -> str:
    """The query of D records: allowed fields padded to their widths, the others blank.

    Fields whose values always have their width (the ID, section, status) are not padded, and
    the filler is a constant: padding multibyte text is the costly part of the query.
    """
    shown = {"type", *fields}  # every record has its type
    parts = []
    for field in DETAIL:
        value, blank = _FIXED[field.name], f"'{' ' * field.width}'"
        if field.name not in shown:
            parts.append(blank)
        elif field.name in _EXACT:
            parts.append(value)
        elif field.numeric:  # no rate: blank, never a zero amount
            parts.append(f"COALESCE(lpad({value}, {field.width}, '0'), {blank})")
        else:
            parts.append(f"rpad({value}, {field.width})")
    parts.append(f"'{' ' * (RECORD_LENGTH - DETAIL.fields[-1].end)}'")
    return f"SELECT {' || '.join(parts)} AS record" + _WHERE + _ORDER


def csv_sql(fields: tuple[str, ...]) -> str:
    """The query of CSV rows: one column per allowed field, named as in the data scope."""
    return "SELECT " + ", ".join(f"{_CSV[name]} AS {name}" for name in fields) + _WHERE + _ORDER


class FeedRepository:
    """Partners, rates and the streamed feed, on one pool (the primary or a replica)."""

    def __init__(self, *, pool_provider: Callable[[], asyncpg.Pool], timeout_s: float = 3600):
        self._pool_provider = pool_provider
        self._timeout = timeout_s

    async def partner(self, name: str) -> FeedPartner | None:
        """The partner named ``name``, or None."""
        async with translated("primary"):
            row = await self._pool_provider().fetchrow(PARTNER, name)
        if row is None:
            return None
        return FeedPartner(
            id=row["id"],
            name=row["name"],
            display_name=row["display_name"],
            status=row["status"],
            data_scope=tuple(row["data_scope"]),
        )

    @asynccontextmanager
    async def selection(
        self, query: FeedQuery, *, export_id: str, at: datetime
    ) -> AsyncIterator[FeedSelection]:
        """One snapshot of the persons ``query`` selects, their manifest committed (under
        ``export_id`` at ``at``) before this yields; its ``copy`` streams exactly them."""
        pool = self._pool_provider()
        async with (
            translated("primary"),
            pool.acquire() as reader,
            reader.transaction(isolation="repeatable_read", readonly=True),
        ):
            snapshot = await reader.fetchval("SELECT pg_export_snapshot()")
            if not isinstance(snapshot, str) or not _SNAPSHOT_ID.fullmatch(snapshot):
                raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
            async with (
                pool.acquire() as writer,
                writer.transaction(isolation="repeatable_read"),
            ):
                await writer.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                parts = [
                    (r["part"], r["persons"], bytes(r["digest"]))
                    for r in await writer.fetch(
                        KEEP_MANIFEST, at, export_id, MANIFEST_PART, query.section
                    )
                ]
            persons = sum(size for _, size, _ in parts)
            digest = manifest_digest(export_id, parts)
            yield _Selection(reader, query, persons, digest, self._timeout)

    async def load_rates(self) -> list[Rate]:
        """Every contribution rate, in the order they were decided."""
        return await fetch_rates(self._pool_provider())

    async def latest_export(self, partner: str, *, since: datetime) -> ExportRecord | None:
        """The newest successful export of ``partner`` recorded since ``since``, or None."""
        async with translated("primary"):
            row = await self._pool_provider().fetchrow(LATEST_EXPORT, OPERATION, partner, since)
        if row is None:
            return None
        return ExportRecord(
            at=row["at"],
            protocol=row["protocol"],
            request_id=row["request_id"],
            exported_by=row["exported_by"],
            detail=json.loads(row["detail"]),
        )


class _Selection:
    """The COPY of one export, on the connection holding the snapshot its manifest was made of."""

    def __init__(
        self, conn: asyncpg.Connection, query: FeedQuery, persons: int, digest: str,
        timeout: float,
    ) -> None:  # fmt: skip
        self._conn = conn
        self._query = query
        self._persons = persons
        self._digest = digest
        self._timeout = timeout

    @property
    def persons(self) -> int:
        """How many national IDs the manifest holds."""
        return self._persons

    @property
    def manifest_sha256(self) -> str:
        """The manifest's digest, which the start record seals."""
        return self._digest

    async def copy(self, sink: Callable[[bytes], Awaitable[None]]) -> int:
        """Stream the rows as UTF-8 lines ended by LF to ``sink``; return how many."""
        query, conn = self._query, self._conn
        # The amounts are parameters only of a query that shows them.
        shown = "amount_due" in query.fields
        args = (query.section, *((*query.amounts, query.amount_month) if shown else ()))
        async with translated("primary"):
            if query.fixed:
                status = await conn.copy_from_query(
                    fixed_sql(query.fields), *args, output=sink, timeout=self._timeout,
                    format="csv", quote=_QUOTE, delimiter=_DELIMITER,
                )  # fmt: skip
            else:
                status = await conn.copy_from_query(
                    csv_sql(query.fields), *args, output=sink, timeout=self._timeout,
                    format="csv", header=True,
                )  # fmt: skip
        return int(status.split()[-1])
