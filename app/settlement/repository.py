"""Settlement imports, their result lines and the ledger rows they are matched with, in SQL.

An import session is one primary transaction holding a transaction-level advisory lock for the
partner and business day, so two imports of the same day queue and the second one finds the
first's file. Result lines go in with COPY; the day's ledger is read through a cursor.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import asyncpg

from app.db.failures import translated
from app.domain.months import Month
from app.settlement.bank_file import SettlementLine
from app.settlement.reconciliation import LedgerEntry, MatchLine, Outcome, SectionTotals, Summary
from app.settlement.records import ImportRecord, NewImport, StoredLine

LINE_COLUMNS = (
    "import_id", "rank", "seq", "outcome", "line_no", "partner_txn_id", "national_id", "section",
    "file_months", "file_amount_satang", "gateway_months", "gateway_amount_satang",
    "payment_id", "note",
)  # fmt: skip
_TOTALS = ("file_lines", "file_satang", "gateway_lines", "gateway_satang", "matched_lines",
           "matched_satang")  # fmt: skip


class _Months:
    """Turns date arrays into Month tuples, sharing one tuple per distinct array."""

    def __init__(self) -> None:
        self._seen: dict[tuple[date, ...], tuple[Month, ...]] = {}

    def __call__(self, days: Sequence[date] | None) -> tuple[Month, ...] | None:
        if days is None:
            return None
        key = tuple(days)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = tuple(Month(d.year, d.month) for d in key)
        return found


def _summary(counts: dict[str, int], totals: dict[str, dict[str, int]]) -> Summary:
    summary = Summary()
    for outcome in Outcome:
        summary.counts[outcome] = counts.get(outcome.value, 0)
    for section, values in totals.items():
        summary.totals[int(section)] = SectionTotals(**{k: values.get(k, 0) for k in _TOTALS})
    return summary


def _days(months: tuple[Month, ...] | None) -> list[date] | None:
    return None if months is None else [month.first_day for month in months]


def _record(import_id: int, stored: StoredLine) -> tuple[Any, ...]:
    m = stored.line
    return (import_id, stored.rank, stored.seq, m.outcome.value, m.line_no, m.partner_txn_id,
            m.national_id, m.section, _days(m.file_months), m.file_amount_satang,
            _days(m.gateway_months), m.gateway_amount_satang, m.payment_id, m.note)  # fmt: skip


class _Session:
    """One import's transaction (the SettlementSession of the service layer)."""

    def __init__(self, conn: asyncpg.Connection, partner_id: int, day: date, timeout: float):
        self._conn = conn
        self._partner_id = partner_id
        self._day = day
        self._timeout = timeout

    async def find_import(self, sha256: bytes) -> int | None:
        found: int | None = await self._conn.fetchval(
            "SELECT id FROM settlement_imports"
            " WHERE partner_id = $1 AND business_date = $2 AND file_sha256 = $3",
            self._partner_id, self._day, sha256,
        )  # fmt: skip
        return found

    async def ledger(self) -> AsyncIterator[LedgerEntry]:
        months = _Months()
        async for r in self._conn.cursor(
            "SELECT id, partner_txn_id, national_id, section, months, amount_satang,"
            " state = 'cancelled' AS cancelled FROM payments"
            " WHERE partner_id = $1 AND business_date = $2",
            self._partner_id, self._day, prefetch=20_000, timeout=self._timeout,
        ):  # fmt: skip
            yield LedgerEntry(
                r["id"], r["partner_txn_id"], r["national_id"], r["section"],
                months(r["months"]) or (), r["amount_satang"], r["cancelled"],
            )  # fmt: skip

    async def create_import(self, new: NewImport) -> int:
        import_id: int = await self._conn.fetchval(
            "INSERT INTO settlement_imports (partner_id, business_date, file_sha256, file_format,"
            " file_name, file_bytes, header, imported_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8) RETURNING id",
            new.partner_id, new.business_date, new.sha256, new.file_format, new.file_name,
            new.file_bytes, json.dumps(new.header, ensure_ascii=False), new.imported_by,
        )  # fmt: skip
        return import_id

    async def add_lines(self, import_id: int, lines: Sequence[StoredLine]) -> None:
        if lines:
            await self._conn.copy_records_to_table(
                "settlement_lines", records=[_record(import_id, s) for s in lines],
                columns=LINE_COLUMNS, timeout=self._timeout,
            )  # fmt: skip

    async def finish_import(self, import_id: int, summary: Summary) -> None:
        counts = {outcome.value: n for outcome, n in summary.counts.items()}
        totals = {str(s): {k: getattr(t, k) for k in _TOTALS} for s, t in summary.totals.items()}
        await self._conn.execute(
            "UPDATE settlement_imports SET counts = $2::text::jsonb, totals = $3::text::jsonb,"
            " mismatches = $4, finished_at = now() WHERE id = $1",
            import_id, json.dumps(counts), json.dumps(totals), summary.mismatches,
        )  # fmt: skip


class SettlementRepository:
    """The SettlementStore of the service layer, on the primary."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], *, timeout_s: float = 1800.0) -> None:
        self._pool = pool
        self._timeout = timeout_s  # bulk statements outlive the pool's per-command timeout

    async def partner_id(self, name: str) -> int | None:
        async with translated("primary"):
            found: int | None = await self._pool().fetchval(
                "SELECT id FROM partners WHERE name = $1", name
            )
        return found

    @asynccontextmanager
    async def session(self, partner_id: int, business_date: date) -> AsyncIterator[_Session]:
        async with translated("primary"), self._pool().acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"ssogw-settlement:{partner_id}:{business_date}", timeout=self._timeout,
            )  # fmt: skip
            yield _Session(conn, partner_id, business_date, self._timeout)

    async def load_import(self, import_id: int) -> ImportRecord | None:
        async with translated("primary"):
            r = await self._pool().fetchrow(
                "SELECT s.id, p.name, s.business_date, s.file_sha256, s.file_format, s.file_name,"
                " s.file_bytes, s.header::text AS header, s.imported_by, s.imported_at,"
                " s.counts::text AS counts, s.totals::text AS totals FROM settlement_imports s"
                " JOIN partners p ON p.id = s.partner_id"
                " WHERE s.id = $1 AND s.finished_at IS NOT NULL",
                import_id,
            )
        if r is None:
            return None
        return ImportRecord(
            id=r["id"], partner=r["name"], business_date=r["business_date"],
            sha256=bytes(r["file_sha256"]), file_format=r["file_format"],
            file_name=r["file_name"], file_bytes=r["file_bytes"],
            header=json.loads(r["header"]), imported_by=r["imported_by"],
            imported_at=r["imported_at"],
            summary=_summary(json.loads(r["counts"]), json.loads(r["totals"])),
        )  # fmt: skip

    async def latest_import(self, partner_id: int, business_date: date) -> int | None:
        async with translated("primary"):
            found: int | None = await self._pool().fetchval(
                "SELECT max(id) FROM settlement_imports WHERE partner_id = $1"
                " AND business_date = $2 AND finished_at IS NOT NULL",
                partner_id, business_date,
            )  # fmt: skip
        return found

    async def import_lines(
        self, import_id: int, *, after: tuple[int, int] | None, limit: int
    ) -> list[StoredLine]:
        rank, seq = after or (-1, -1)
        async with translated("primary"):
            rows = await self._pool().fetch(
                f"SELECT {', '.join(f'l.{c}' for c in LINE_COLUMNS[1:])},"
                " p.national_id AS gateway_national_id"
                " FROM settlement_lines l LEFT JOIN payments p ON p.id = l.payment_id"
                " WHERE l.import_id = $1 AND (l.rank, l.seq) > ($2, $3)"
                " ORDER BY l.rank, l.seq LIMIT $4",
                import_id, rank, seq, limit,
            )  # fmt: skip
        months = _Months()
        return [
            StoredLine(r["rank"], r["seq"], MatchLine(
                Outcome(r["outcome"]), r["partner_txn_id"], r["line_no"], r["national_id"],
                r["section"], months(r["file_months"]), r["file_amount_satang"],
                months(r["gateway_months"]), r["gateway_amount_satang"], r["payment_id"],
                r["note"], r["gateway_national_id"]))
            for r in rows
        ]  # fmt: skip

    async def payments_of_day(
        self, partner_id: int, business_date: date
    ) -> AsyncIterator[SettlementLine]:
        months = _Months()
        async with translated("primary"), self._pool().acquire() as conn, conn.transaction():
            async for r in conn.cursor(
                "SELECT p.partner_txn_id, p.national_id, p.section, p.months, p.amount_satang,"
                " p.paid_at, p.store_id, p.terminal_id,"
                " i.title || i.first_name || ' ' || i.last_name AS name"
                " FROM payments p JOIN insured_persons i ON i.national_id = p.national_id"
                " WHERE p.partner_id = $1 AND p.business_date = $2 AND p.state = 'confirmed'"
                " ORDER BY p.id",
                partner_id, business_date, prefetch=20_000, timeout=self._timeout,
            ):  # fmt: skip
                yield SettlementLine(
                    0, r["partner_txn_id"], r["national_id"], r["section"],
                    months(r["months"]) or (), r["amount_satang"], r["paid_at"], r["name"],
                    r["store_id"] or "", r["terminal_id"] or "",
                )  # fmt: skip
