"""Partner settlement: take a day's file, match it against the ledger, keep the result, export.

An import runs in one primary transaction, serialised per partner and day: a file already taken
(same SHA-256) is answered with its stored result and nothing changes; otherwise the day's
ledger rows are loaded once, the file is parsed and matched as it streams (in a worker thread,
a batch at a time) and every result line is stored. A file refused at any line — the trailer
included — leaves nothing behind.

Every result line and every line exported shows a person's national ID with what they paid.
A command (``requester`` given) records each person of a page, or of each hundred lines of an
export, before they are shown or written (``IMPORTED``, ``REPORTED``, ``EXPORTED``); an internal
application's call records them through the admin gate (``app.settlement.access``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from functools import partial
from itertools import islice
from typing import Any, BinaryIO, Final, Protocol

from app.audit.records import AuditSink, Requester, commit_together
from app.domain.calendar import DEFAULT_CUTOFF, ensure_day_closed
from app.errors import InvalidInput, NotFound
from app.settlement.bank_file import (
    BankFileWriter,
    BankHeader,
    SettlementLine,
    check_header,
    read_bank_file,
)
from app.settlement.csv_file import csv_header, csv_record, detect_format, read_csv_file
from app.settlement.reconciliation import LedgerEntry, MatchLine, Outcome, Reconciler, Summary
from app.settlement.records import ImportRecord, NewImport, StoredLine

FORMATS: Final = ("bank", "csv")
DEFAULT_LINES: Final = 100
MAX_LINES: Final = 10_000
MAX_LINE_BYTES: Final = 64 * 1024
_BATCH: Final = 5_000
#: Lines of an export recorded together, then written.
RECORDED_TOGETHER: Final = 100
Progress = Callable[[int], None]
#: The operations of the records of the persons shown: an import's answer, a stored result,
#: an export's lines.
IMPORTED: Final = "ImportSettlement"
REPORTED: Final = "GetSettlement"
EXPORTED: Final = "ExportSettlement"


@dataclass(frozen=True, slots=True)
class SettlementReport:
    """An import's summary and one page of its lines, mismatches first."""

    record: ImportRecord
    lines: tuple[MatchLine, ...]
    next_cursor: str | None
    replayed: bool = False

    def people(self) -> list[tuple[str, str]]:
        """The persons the page shows (national ID; no name: ""), each once, in its order: each
        line's, and the gateway payment's where that is another person's (person_differs: the
        line shows their months and amount)."""
        shown = dict.fromkeys(
            nid
            for line in self.lines
            for nid in (line.national_id, line.gateway_national_id)
            if nid
        )
        return [(nid, "") for nid in shown]

    def document(self) -> dict[str, Any]:
        """The report as one JSON-ready document (camelCase, amounts in baht as strings)."""
        from app.settlement.document import report_document

        return report_document(self)


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote."""

    lines: int
    total_satang: int
    file_format: str


class SettlementSession(Protocol):
    """One primary transaction holding the partner-day's settlement lock."""

    async def find_import(self, sha256: bytes) -> int | None: ...

    def ledger(self) -> AsyncIterator[LedgerEntry]: ...

    async def create_import(self, new: NewImport) -> int: ...

    async def add_lines(self, import_id: int, lines: Sequence[StoredLine]) -> None: ...

    async def finish_import(self, import_id: int, summary: Summary) -> None: ...


class SettlementStore(Protocol):
    """Settlement imports, their lines and the ledger rows they are matched with."""

    async def partner_id(self, name: str) -> int | None: ...

    def session(
        self, partner_id: int, business_date: date
    ) -> AbstractAsyncContextManager[SettlementSession]: ...

    async def load_import(self, import_id: int) -> ImportRecord | None: ...

    async def latest_import(self, partner_id: int, business_date: date) -> int | None: ...

    async def import_lines(
        self, import_id: int, *, after: tuple[int, int] | None, limit: int
    ) -> list[StoredLine]: ...

    def payments_of_day(
        self, partner_id: int, business_date: date
    ) -> AsyncIterator[SettlementLine]: ...


def _digest(source: BinaryIO) -> tuple[bytes, int, bytes]:
    """SHA-256, size and first line of a seekable file, left rewound."""
    source.seek(0)
    first = source.readline(MAX_LINE_BYTES)
    sha, size = hashlib.sha256(first), len(first)
    while chunk := source.read(1 << 20):
        sha.update(chunk)
        size += len(chunk)
    source.seek(0)
    return sha.digest(), size, first


def _raw_lines(source: BinaryIO, progress: Progress | None) -> Iterator[bytes]:
    # Bounded reads: a file without line ends is refused at its first piece, not held whole.
    for raw in iter(partial(source.readline, MAX_LINE_BYTES), b""):
        if progress is not None:
            progress(len(raw))
        yield raw


def _cursor(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    rank, dot, seq = text.partition(".")
    # ASCII digits within the columns' ranges (rank a smallint, seq an integer): int() takes
    # Thai and full-width digits too, and the database refuses what its type cannot hold.
    digits = f"{rank}{seq}".isascii() and rank.isdigit() and seq.isdigit()
    if not (dot and digits and len(rank) <= 5 and len(seq) <= 10) or (
        int(rank) > 32_767 or int(seq) > 2_147_483_647
    ):
        raise InvalidInput("The cursor is not one this report gave.", field="cursor")
    return int(rank), int(seq)


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LINES:
        raise InvalidInput(f"limit must be 1-{MAX_LINES}.", field="limit")
    return limit


class SettlementEvents(Protocol):
    def settlement_mismatched(self, *, kind: str, partner: str, count: int) -> None: ...


class SettlementService:
    """Imports, reports and exports partner settlement files."""

    def __init__(
        self,
        *,
        store: SettlementStore,
        events: SettlementEvents | None = None,
        clock: Callable[[], datetime],
        cutoff: time = DEFAULT_CUTOFF,
        grace_s: float = 0.0,
        sink: AuditSink | None = None,
    ) -> None:
        self._store = store
        self._events = events
        self._clock = clock
        self._sink = sink
        self._cutoff = cutoff
        self._grace_s = grace_s

    def _closed(self, business_date: date) -> None:
        """A day is settled (imported, exported) only once no payment of it can still commit."""
        ensure_day_closed(
            business_date, instant=self._clock(), cutoff=self._cutoff, grace_s=self._grace_s
        )

    async def _partner(self, name: str) -> int:
        if not name or len(name) > 64 or not name.isprintable():
            raise InvalidInput("partner must be 1 to 64 printable characters.", field="partner")
        partner_id = await self._store.partner_id(name)
        if partner_id is None:
            raise NotFound(f"No partner is named {name!r}.", partner=name)
        return partner_id

    async def import_file(
        self,
        source: BinaryIO,
        *,
        partner: str,
        business_date: date,
        file_format: str | None = None,
        file_name: str | None = None,
        imported_by: str | None = None,
        progress: Progress | None = None,
        limit: int = DEFAULT_LINES,
        requester: Requester | None = None,
    ) -> SettlementReport:
        """Import and match a settlement file (``bank`` or ``csv``; detected when None).
        ``requester``: a command's operator, who is recorded with each person shown."""
        shown = partial(self.report, limit=limit, requester=requester, operation=IMPORTED)
        if file_format is not None and file_format not in FORMATS:
            raise InvalidInput("format must be bank or csv.", field="format")
        partner_id = await self._partner(partner)
        self._closed(business_date)
        sha, size, first = await asyncio.to_thread(_digest, source)
        fmt = file_format or detect_format(first)
        async with self._store.session(partner_id, business_date) as session:
            existing = await session.find_import(sha)
            if existing is not None:
                return await shown(existing, replayed=True)
            if fmt == "bank":
                header, details = read_bank_file(_raw_lines(source, progress))
                check_header(header, business_date=business_date, partner=partner)
                said = {k: str(v) for k, v in asdict(header).items() if k != "business_date"}
            else:
                details, said = read_csv_file(_raw_lines(source, progress)), {}
            reconciler = Reconciler()
            async for entry in session.ledger():
                reconciler.expect(entry)
            new = NewImport(partner_id, business_date, sha, fmt, file_name, size, said,
                            imported_by)  # fmt: skip
            import_id = await session.create_import(new)
            seq = await _match_and_store(details, reconciler, session, import_id)
            await session.add_lines(import_id, _stored(list(reconciler.leftovers()), seq))
            await session.finish_import(import_id, reconciler.summary)
        if self._events is not None:
            for outcome, count in reconciler.summary.counts.items():
                if outcome is not Outcome.MATCHED and count:
                    self._events.settlement_mismatched(
                        kind=outcome.value, partner=partner, count=count
                    )
        return await shown(import_id)

    async def report(
        self,
        import_id: int,
        *,
        limit: int = DEFAULT_LINES,
        cursor: str | None = None,
        replayed: bool = False,
        requester: Requester | None = None,
        operation: str = REPORTED,
    ) -> SettlementReport:
        """A stored import: its summary and a page of lines, mismatches first. With a
        ``requester``, each person the page shows is recorded first (``operation``)."""
        record = await self._store.load_import(import_id)
        if record is None:
            raise NotFound(f"No settlement import has id {import_id}.", id=import_id)
        rows = await self._store.import_lines(
            import_id, after=_cursor(cursor), limit=_limit(limit) + 1
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = f"{rows[-1].rank}.{rows[-1].seq}" if more and rows else None
        report = SettlementReport(record, tuple(r.line for r in rows), next_cursor, replayed)
        await self._record(requester, operation, report.people(), settlement=import_id)
        return report

    async def report_for(
        self, *, partner: str, business_date: date, limit: int = DEFAULT_LINES,
        cursor: str | None = None, requester: Requester | None = None,
    ) -> SettlementReport:  # fmt: skip
        """The latest import of a partner's business day."""
        import_id = await self._store.latest_import(await self._partner(partner), business_date)
        if import_id is None:
            raise NotFound(f"No settlement of {partner} for {business_date} was imported.",
                           partner=partner, business_date=str(business_date))  # fmt: skip
        return await self.report(import_id, limit=limit, cursor=cursor, requester=requester)

    async def export(
        self, write: Callable[[bytes], object], *, partner: str, business_date: date,
        file_format: str = "bank", requester: Requester | None = None,
    ) -> ExportSummary:  # fmt: skip
        """Write the gateway's own file of the partner's day (confirmed, not cancelled). With
        a ``requester``, the persons of each hundred lines are recorded before they are
        written: the file goes to the partner with each payer's ID and name."""
        if file_format not in FORMATS:
            raise InvalidInput("format must be bank or csv.", field="format")
        partner_id = await self._partner(partner)
        self._closed(business_date)
        bank = BankFileWriter(BankHeader(business_date, partner_code=partner[:20]))
        write(bank.header() if file_format == "bank" else csv_header())
        lines = total = 0
        held: list[SettlementLine] = []

        async def flush() -> None:
            people = {(line.national_id, line.name) for line in held}
            await self._record(requester, EXPORTED, sorted(people), partner=partner)
            for line in held:
                write(bank.detail(line) if file_format == "bank" else csv_record(line))
            held.clear()

        async for line in self._store.payments_of_day(partner_id, business_date):
            held.append(line)
            lines += 1
            total += line.amount_satang
            if len(held) == RECORDED_TOGETHER:
                await flush()
        await flush()
        if file_format == "bank":
            write(bank.trailer())
        return ExportSummary(lines, total, file_format)

    async def _record(
        self,
        requester: Requester | None,
        operation: str,
        people: Sequence[tuple[str, str]],
        **detail: Any,
    ) -> None:
        """Commit one record per person shown, naming the command's operator (none without a
        requester: an internal application's call is recorded through the admin gate)."""
        if requester is None or not people:
            return
        if self._sink is None:
            raise RuntimeError("settlement shown to an operator with no audit sink to record it")
        records = requester.listed(people, at=self._clock(), operation=operation, **detail)
        await commit_together(self._sink, records)


def _match_batch(details: Iterator[SettlementLine], reconciler: Reconciler) -> list[MatchLine]:
    return [reconciler.match(line) for line in islice(details, _BATCH)]


async def _match_and_store(
    details: Iterator[SettlementLine],
    reconciler: Reconciler,
    session: SettlementSession,
    import_id: int,
) -> int:
    """Match batch after batch in a thread while the previous batch is stored; lines stored."""
    seq = 0
    following = asyncio.ensure_future(asyncio.to_thread(_match_batch, details, reconciler))
    try:
        while batch := await following:
            following = asyncio.ensure_future(asyncio.to_thread(_match_batch, details, reconciler))
            await session.add_lines(import_id, _stored(batch, seq))
            seq += len(batch)
    finally:
        if not following.done():  # the store failed: let the thread finish, forget its result
            await asyncio.wait([following])
            following.exception()
    return seq


def _stored(lines: list[MatchLine], start: int) -> list[StoredLine]:
    return [StoredLine(m.outcome.rank, start + i, m) for i, m in enumerate(lines, start=1)]


# --- the report as a document ----------------------------------------------------------------
