"""The partner feed: the part of the insured-person database a counter network needs, as a file.

For each insured person (of one section, or both): national ID, title, names, section, status
and the amount due per month at the current rate of the person's section and option — only the
fields the partner's ``data_scope`` allows. Two layouts: 256-character fixed-width TIS-620
records (``H`` header, ``D`` detail, ``T`` trailer; ``DETAIL`` below, ``docs/formats.md``) or
UTF-8 CSV with a header row. The store streams the rows (``COPY … TO STDOUT``), the service
writes them as they come, hashing and counting, so no export ever holds the set in memory.

An export is on the audit trail before its first byte leaves: the store commits the national
IDs of its snapshot (the export's manifest of persons), then the export's start record
(``PartnerFeedExportStart``: export id, partner, scope, persons and the digest of the manifest,
which the chain's seals then hold: a manifest row changed later is found by verify) is
committed, and only then are the rows written. So an export killed mid-stream still names
everyone it sent or may have sent, and `audit lookups` and the access report show each of them
"included in the feed". Its end record (``PartnerFeedExport``: partner, scope, rows, bytes,
generation time and the file's SHA-256, or why it stopped) is enough to give the file's
manifest again (``FeedService.latest``).

The command line writes a file (``FeedService.export``); the API streams the same bytes to
its reader (``partner_feed_access.FeedAccess.download``).
"""

from __future__ import annotations

import codecs
import hashlib
import inspect
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from app.audit.records import AuditSink, Requester
from app.domain.calendar import BANGKOK, bangkok_date
from app.domain.months import Month
from app.domain.rates import Rate, RateTable
from app.errors import (
    InvalidInput,
    NoRate,
    NotFound,
    PartnerDisabled,
    ServiceError,
)
from app.feed.records import (
    FEED_RECORDS,
    HEADER,
    OPERATION,
    START_OPERATION,
    TRAILER,
    ExportRecord,
    FeedPartner,
    FeedQuery,
    FeedSelection,
)

MANIFEST_OPERATION: Final = "PartnerFeedManifest"
MANIFEST_WINDOW: Final = timedelta(days=31)  # how far back the latest export is looked for
LAYOUT_ID: Final = "SSOFEEDV01"
FORMATS: Final = ("fixed", "csv")
FIELDS: Final = ("national_id", "title", "first_name", "last_name", "section", "status",
                 "amount_due")  # fmt: skip
AMOUNT_KEYS: Final = ((39, None), (40, 1), (40, 2), (40, 3))
Progress = Callable[[int], object]
Started = Callable[[dict[str, Any]], Awaitable[None]]  # commits the export's start record


class FeedStore(Protocol):
    """What the feed needs from the store."""

    async def partner(self, name: str) -> FeedPartner | None:
        """The partner named ``name``, or None."""
        ...

    async def load_rates(self) -> list[Rate]:
        """Every contribution rate, in the order they were decided."""
        ...

    def selection(
        self, query: FeedQuery, *, export_id: str, at: datetime
    ) -> AbstractAsyncContextManager[FeedSelection]:
        """One snapshot of the persons ``query`` selects, their national IDs committed as the
        manifest of ``export_id`` (at ``at``) on entry; its ``copy`` streams exactly them."""
        ...

    async def latest_export(self, partner: str, *, since: datetime) -> ExportRecord | None:
        """The newest successful export of ``partner`` recorded since ``since``, or None."""
        ...


@dataclass(frozen=True, slots=True)
class FeedManifest:
    """What a feed file holds, for the partner to check it by."""

    file_format: str
    partner: str
    partner_display_name: str
    section: int | None
    scope: tuple[str, ...]
    row_count: int
    byte_count: int
    sha256: str
    generated_at: datetime  # Bangkok time
    amount_month: Month
    export_id: str | None = None  # the export's start record and manifest of persons

    def document(self) -> dict[str, Any]:
        """The manifest as a JSON document."""
        return {
            "layout": LAYOUT_ID,
            "format": self.file_format,
            "encoding": "TIS-620" if self.file_format == "fixed" else "UTF-8",
            "partner": self.partner,
            "partner_display_name": self.partner_display_name,
            "section": self.section,
            "scope": list(self.scope),
            "row_count": self.row_count,
            "bytes": self.byte_count,
            "sha256": self.sha256,
            "generated_at": self.generated_at.isoformat(),
            "amount_month": str(self.amount_month),
            "export_id": self.export_id,
        }

    def audit_detail(self) -> dict[str, Any]:
        """What the export's audit record keeps: enough to give this manifest again."""
        return {
            "partner": self.partner,
            "scope": list(self.scope),
            "rows": self.row_count,
            "sha256": self.sha256,
            "format": self.file_format,
            "section": self.section,
            "bytes": self.byte_count,
            "generated_at": self.generated_at.isoformat(),
            "export_id": self.export_id,
        }

    @classmethod
    def recorded(cls, partner: FeedPartner, detail: dict[str, Any]) -> FeedManifest:
        """The manifest an export's audit record (``audit_detail``) describes."""
        generated_at = datetime.fromisoformat(detail["generated_at"]).astimezone(BANGKOK)
        return cls(
            file_format=detail["format"],
            partner=partner.name,
            partner_display_name=partner.display_name,
            section=detail["section"],
            scope=tuple(detail["scope"]),
            row_count=detail["rows"],
            byte_count=detail["bytes"],
            sha256=detail["sha256"],
            generated_at=generated_at,
            amount_month=Month.of(bangkok_date(generated_at)),  # as the export chose it
            export_id=detail.get("export_id"),
        )


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """An export checked and ready to run: for whom, what, and as of when."""

    partner: FeedPartner
    file_format: str
    query: FeedQuery
    generated_at: datetime  # Bangkok time: also the time of the export's start record
    amount_month: Month
    export_id: str  # names the start record and the manifest of persons

    def start_detail(self, persons: int, manifest_sha256: str) -> dict[str, Any]:
        """What the export's start record keeps: which export, to whom, what, how many, and the
        digest of its manifest of persons (``records.manifest_digest``)."""
        return {
            "export_id": self.export_id,
            "partner": self.partner.name,
            "scope": list(self.query.fields),
            "format": self.file_format,
            "section": self.query.section,
            "persons": persons,
            "manifest_sha256": manifest_sha256,
        }


@dataclass(frozen=True, slots=True)
class FeedExport:
    """A finished export as its audit record tells it: the manifest, and who made it when."""

    manifest: FeedManifest
    recorded_at: datetime
    protocol: str
    request_id: str
    exported_by: str | None


def header_record(
    partner: FeedPartner, *, generated_at: datetime, month: Month, section: int | None,
    scope: tuple[str, ...],
) -> str:  # fmt: skip
    """The H record: layout, partner, generation time, amount month, section, scope flags."""
    return HEADER.format({
        "type": "H", "layout": LAYOUT_ID, "partner": partner.name,
        "generated_at": f"{generated_at.astimezone(BANGKOK):%Y%m%d%H%M%S}",
        "amount_month": f"{month.year:04d}{month.month:02d}",
        "section": None if section is None else str(section),
        "scope": "".join("Y" if name in scope else "N" for name in FIELDS),
    })  # fmt: skip


def trailer_record(rows: int) -> str:
    """The T record: the number of D records."""
    return TRAILER.format({"type": "T", "rows": rows})


class _Output:
    """Writes, hashes and counts what goes into the file; transcodes fixed records to TIS-620.

    ``write`` may be a plain function (a file's) or return an awaitable (a queue's ``put``),
    which is awaited: a slow reader then slows the COPY instead of piling chunks up.
    """

    def __init__(self, write: Callable[[bytes], object], *, fixed: bool, progress: Progress | None):
        self._write = write
        self._fixed = fixed
        self._progress = progress
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.digest = hashlib.sha256()
        self.size = 0

    async def put(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        written = self._write(data)
        if inspect.isawaitable(written):
            await written
        if self._progress is not None:
            self._progress(len(data))

    async def record(self, text: str) -> None:
        await self.put(FEED_RECORDS.encode(text))

    async def rows(self, chunk: bytes) -> None:
        if self._fixed:
            # One character of TIS-620 is one byte, so the widths survive; a character it
            # lacks becomes "?" (one for one).
            chunk = self._decoder.decode(chunk).encode("tis-620", "replace")
        await self.put(chunk.replace(b"\n", b"\r\n"))


class FeedService:
    """Exports partner feeds; each export is one audit record."""

    def __init__(
        self,
        *,
        store: FeedStore,
        sink: AuditSink,
        clock: Callable[[], datetime],  # the business clock (app.main)
    ) -> None:
        self._store = store
        self._sink = sink
        self._clock = clock

    async def export(
        self,
        write: Callable[[bytes], object],
        *,
        partner: str,
        requester: Requester,
        section: int | None = None,
        file_format: str = "fixed",
        progress: Progress | None = None,
    ) -> FeedManifest:
        """Write the partner's feed with ``write``: its start record committed before the first
        byte, its end record before returning."""

        async def started(detail: dict[str, Any]) -> None:
            record = requester.record(
                at=plan.generated_at, operation=START_OPERATION, outcome="ok", detail=detail
            )
            await self._sink.record(record)

        try:
            plan = await self.plan(partner, section=section, file_format=file_format)
            manifest = await self.write(plan, write, started, progress)
        except ServiceError as exc:
            await self._record(
                requester, exc.code, {"partner": partner[:64], "format": file_format}
            )
            raise
        await self._record(requester, "ok", manifest.audit_detail())
        return manifest

    async def plan(
        self, name: str, *, section: int | None = None, file_format: str = "fixed"
    ) -> FeedPlan:
        """Check the request and the partner; fix the time and the amounts of the export."""
        if file_format not in FORMATS:
            raise InvalidInput("format must be fixed or csv.", field="format")
        if section not in (None, 39, 40):
            raise InvalidInput("section must be 39 or 40.", field="section")
        partner = await self._partner(name)
        if partner.status != "active":
            raise PartnerDisabled(f"Partner {partner.name} is disabled; it is sent no feed.")
        scope = tuple(f for f in FIELDS if f in partner.data_scope)
        if not scope:
            raise InvalidInput("The partner's data scope allows none of the feed's fields.",
                               field="partner")  # fmt: skip
        now = self._clock()
        month = Month.of(bangkok_date(now))
        fixed = file_format == "fixed"
        query = FeedQuery(section, scope, await self._amounts(month), fixed, month.first_day)
        export_id = str(uuid.uuid4())
        return FeedPlan(partner, file_format, query, now.astimezone(BANGKOK), month, export_id)

    async def write(
        self,
        plan: FeedPlan,
        write: Callable[[bytes], object],
        started: Started,
        progress: Progress | None = None,
    ) -> FeedManifest:
        """Write the planned feed with ``write`` (awaiting what it returns, if anything), once
        its manifest of persons and then ``started`` (its start record) are committed."""
        query = plan.query
        out = _Output(write, fixed=query.fixed, progress=progress)
        selection = self._store.selection(query, export_id=plan.export_id, at=plan.generated_at)
        async with selection as chosen:
            # No byte leaves before this.
            await started(plan.start_detail(chosen.persons, chosen.manifest_sha256))
            if query.fixed:
                await out.record(header_record(plan.partner, generated_at=plan.generated_at,
                                               month=plan.amount_month, section=query.section,
                                               scope=query.fields))  # fmt: skip
            rows = await chosen.copy(out.rows)
            if query.fixed:
                await out.record(trailer_record(rows))
        return FeedManifest(
            file_format=plan.file_format,
            partner=plan.partner.name,
            partner_display_name=plan.partner.display_name,
            section=query.section,
            scope=query.fields,
            row_count=rows,
            byte_count=out.size,
            sha256=out.digest.hexdigest(),
            generated_at=plan.generated_at,
            amount_month=plan.amount_month,
            export_id=plan.export_id,
        )

    async def latest(self, name: str) -> FeedExport:
        """The manifest of the partner's newest export, from that export's audit record."""
        partner = await self._partner(name)
        since = self._clock() - MANIFEST_WINDOW
        found = await self._store.latest_export(partner.name, since=since)
        if found is None:
            raise NotFound(f"Partner {partner.name} was sent no feed in the last"
                           f" {MANIFEST_WINDOW.days} days.", partner=partner.name)  # fmt: skip
        return FeedExport(
            manifest=FeedManifest.recorded(partner, found.detail),
            recorded_at=found.at,
            protocol=found.protocol,
            request_id=found.request_id,
            exported_by=found.exported_by,
        )

    async def _partner(self, name: str) -> FeedPartner:
        partner = await self._store.partner(name.strip())
        if partner is None:
            raise NotFound(f"No partner is named {name!r}.", partner=name)
        return partner

    async def _amounts(self, month: Month) -> tuple[int | None, ...]:
        table = RateTable(await self._store.load_rates())
        amounts: list[int | None] = []
        for section, option in AMOUNT_KEYS:
            try:
                amounts.append(table.amount(section, option, month))
            except NoRate:
                amounts.append(None)
        return tuple(amounts)

    async def _record(self, requester: Requester, outcome: str, detail: dict[str, Any]) -> None:
        await self._sink.record(
            requester.record(at=self._clock(), operation=OPERATION, outcome=outcome, detail=detail)
        )
