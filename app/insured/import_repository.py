"""Insured-person extracts into the primary: COPY into a staging table, then one upsert.

The staging table is temporary and dropped at commit, so a failed import leaves nothing. The
upsert touches only the columns the section's extract carries; a person whose columns are all
unchanged is not rewritten (and counted as unchanged). A line that would move a person to the
other section is refused: that ends one membership and opens another, which registration does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Final

import asyncpg

from app.db.failures import translated
from app.insured.extract_file import PersonRecord, Rejection
from app.insured.records import UpsertCounts

STAGE_COLUMNS: Final = (
    "line_no", "national_id", "title", "first_name", "last_name", "section", "status",
    "effective_date", "s40_option", "payment_method", "period_of_payment", "return_code",
    "birth_date", "last_paid_on", "last_paid_satang",
)  # fmt: skip
# Columns each extract carries (and so may change); the others keep what the gateway has.
UPDATED: Final = {
    39: ("title", "first_name", "last_name", "section", "status", "effective_date", "s40_option",
         "period_of_payment", "return_code"),
    40: ("title", "first_name", "last_name", "section", "status", "effective_date", "s40_option",
         "payment_method", "last_paid_on", "period_of_payment", "last_paid_satang"),
}  # fmt: skip
_MOVED: Final = (
    "the person is insured under Section {held} here: a change of section ends that membership"
    " and goes through registration (POST /api/v1/insured), not an extract"
)
_STAGE_TABLE = """
CREATE TEMP TABLE person_stage (
    line_no integer NOT NULL, national_id text NOT NULL, title text NOT NULL,
    first_name text NOT NULL, last_name text NOT NULL, section smallint NOT NULL,
    status text NOT NULL, effective_date date NOT NULL, s40_option smallint,
    payment_method text, period_of_payment text, return_code text, birth_date date,
    last_paid_on date, last_paid_satang bigint
) ON COMMIT DROP
"""
# Keep the first line of each ID; the later ones are rejected with the line they repeat.
_DUPLICATES = """
WITH d AS (SELECT national_id, min(line_no) AS first FROM person_stage
            GROUP BY national_id HAVING count(*) > 1)
DELETE FROM person_stage s USING d
 WHERE s.national_id = d.national_id AND s.line_no > d.first
RETURNING s.line_no, d.first
"""


# A line putting a person under the other section than the gateway holds: not an update. A
# change of section ends one membership and opens another (closed_memberships), with the rules
# of registration (app.insured.registration). The upsert's guard skips such a line, and this,
# read after it, finds them to refuse, naming the section held: those the gateway held before
# the import and those a registration put there while the upsert ran.
_HELD_ELSEWHERE = """
SELECT s.line_no, p.section AS held FROM person_stage s
  JOIN insured_persons p ON p.national_id = s.national_id
 WHERE p.section <> s.section
 ORDER BY s.line_no
"""


def _upsert_sql(section: int) -> str:
    columns = ", ".join(STAGE_COLUMNS[1:])
    changed = UPDATED[section]
    sets = [f"{c} = EXCLUDED.{c}" for c in changed] + [
        "birth_date = COALESCE(EXCLUDED.birth_date, p.birth_date)",
        # A person the source calls active again sheds the gateway's record of the ending.
        "status_reason = CASE WHEN EXCLUDED.status = 'active' THEN NULL ELSE p.status_reason END",
        "ended_month = CASE WHEN EXCLUDED.status = 'active' THEN NULL ELSE p.ended_month END",
        "updated_at = now()",
    ]
    old = ", ".join(f"p.{c}" for c in (*changed, "birth_date"))
    new = (
        ", ".join(f"EXCLUDED.{c}" for c in changed)
        + ", COALESCE(EXCLUDED.birth_date, p.birth_date)"
    )
    return (
        f"WITH up AS (INSERT INTO insured_persons AS p ({columns})"
        f" SELECT {columns} FROM person_stage ORDER BY national_id"
        f" ON CONFLICT (national_id) DO UPDATE SET {', '.join(sets)}"
        # Never a change of section (_HELD_ELSEWHERE names the lines skipped for it).
        f" WHERE p.section = EXCLUDED.section AND ({old}) IS DISTINCT FROM ({new})"
        " RETURNING xmax = 0 AS inserted)"
        " SELECT count(*) FILTER (WHERE inserted) AS inserted,"
        " count(*) FILTER (WHERE NOT inserted) AS updated,"
        " (SELECT count(*) FROM person_stage) AS staged FROM up"
    )


class _Staging:
    """The PersonStaging of the service layer: one transaction and its staging table."""

    def __init__(self, conn: asyncpg.Connection, section: int, timeout: float) -> None:
        self._conn = conn
        self._section = section
        self._timeout = timeout

    async def stage(self, records: Sequence[PersonRecord]) -> None:
        rows = [tuple(getattr(r, c) for c in STAGE_COLUMNS) for r in records]
        if rows:
            await self._conn.copy_records_to_table(
                "person_stage", records=rows, columns=STAGE_COLUMNS, timeout=self._timeout
            )

    async def upsert(self) -> UpsertCounts:
        repeats = await self._conn.fetch(_DUPLICATES, timeout=self._timeout)
        row = await self._conn.fetchrow(_upsert_sql(self._section), timeout=self._timeout)
        assert row is not None
        moved = await self._conn.fetch(_HELD_ELSEWHERE, timeout=self._timeout)
        refused = [
            Rejection(r["line_no"], "national_id", f"the ID repeats line {r['first']}")
            for r in repeats
        ] + [Rejection(r["line_no"], "section", _MOVED.format(held=r["held"])) for r in moved]
        return UpsertCounts(
            inserted=row["inserted"],
            updated=row["updated"],
            # (A registration committed between the upsert and the read after it may move a
            # person whose line the upsert had just applied: that line is counted twice.)
            unchanged=max(0, row["staged"] - row["inserted"] - row["updated"] - len(moved)),
            refused=tuple(refused),
        )


class PersonImportRepository:
    """The PersonImportStore of the service layer, on the primary."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], *, timeout_s: float = 3600.0) -> None:
        self._pool = pool
        self._timeout = timeout_s  # bulk statements outlive the pool's per-command timeout

    @asynccontextmanager
    async def staging(self, section: int) -> AsyncIterator[_Staging]:
        async with translated("primary"), self._pool().acquire() as conn, conn.transaction():
            await conn.execute(_STAGE_TABLE)
            yield _Staging(conn, section, self._timeout)
