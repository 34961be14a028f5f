"""The insured person's access report: who touched their record, when, why, and what they saw.

Built on the audit trail: every call that touched the national ID in the period, refused calls
included, oldest first, with the caller's display name, the operation and its purpose in plain
words (Thai and English), the data the call disclosed and its outcome. Every entry of the
period is read, a page at a time: nothing is cut off. Refused calls of callers never admitted
are counted per source and minute (``app.audit.refusals``) and show as one line each ("N
refused calls from 203.0.113.9 naming this ID between ..."); a partner feed that included the
person shows as one line for each export ("included in the feed sent to P"). Producing a report
touches the ID too, so it leaves one ``AccessReport`` record of its own: through the admin gate
for REST (scope ``audit``), or through the sink given here for the command line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Protocol

from app.access_report.records import AccessRow
from app.access_report.wording import (
    Words,
    disclosed_words,
    english_date,
    english_datetime,
    feed_disclosed,
    feed_words,
    kind_words,
    mask_national_id,
    operation_words,
    outcome_words,
    purpose_words,
    refused_calls_words,
    thai_date,
    thai_datetime,
)
from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.admin_gate import AUDIT_SCOPE, AdminGate, Admitted
from app.audit.records import AuditSink, Requester
from app.domain.calendar import BANGKOK
from app.domain.national_id import validate_national_id
from app.errors import InvalidInput, ServiceError

OPERATION: Final = "AccessReport"
PAGE: Final = 1000  # entries read at a time; the report holds all of them
FORMATS: Final = ("json", "csv", "html")
Bound = datetime | str | None  # an instant, or text for ``parse_bound``
EARLIEST_BOUND: Final = datetime(1900, 1, 1, tzinfo=UTC)
#: A day as a bound is written: YYYY-MM-DD, ASCII digits.
_DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
LATEST_BOUND: Final = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One access as the report shows it."""

    seq: int | None  # None: committed, its chain link still to come
    at: datetime  # Bangkok time
    when: Words
    who: str
    who_kind: Words
    principal_kind: str
    operation: str
    operation_words: Words
    purpose: Words
    disclosed: tuple[Words, ...]
    outcome: str
    refused: bool
    result: Words
    protocol: str
    operator: str | None
    terminal: str | None
    request_id: str
    calls: int = 1  # refused calls counted together on this line
    last_at: datetime | None = None  # the last of them (Bangkok time)
    source_ip: str | None = None  # where they came from
    note: Words | None = None  # what the line stands for, when it is not one call


@dataclass(frozen=True, slots=True)
class AccessReport:
    """Every access to one person's record in ``[from_, to)``, oldest first."""

    national_id: str
    masked_id: str
    person_name: str | None
    from_: datetime | None
    to: datetime | None
    period: Words
    generated_at: datetime  # Bangkok time
    generated: Words
    entries: tuple[AccessEntry, ...]  # every access of the period


class AccessReportStore(Protocol):
    """What the report needs from the store."""

    async def person_name(self, national_id: str) -> str | None:
        """The person's name as the gateway shows it, or None if nobody has the ID."""
        ...

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
        ...


def parse_bound(value: Bound, *, end: bool, field: str) -> datetime | None:
    """A period bound: ``YYYY-MM-DD`` is a Bangkok day (its end when ``end``), else an ISO
    date-time (Bangkok time when it has no zone); a datetime must carry its zone."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        moment = value
        if moment.utcoffset() is None:
            raise InvalidInput(f"'{field}' must carry a time zone.", field=field)
    else:
        moment = _parsed(value.strip(), end=end, field=field)
    if not EARLIEST_BOUND <= moment <= LATEST_BOUND:
        raise InvalidInput(f"'{field}' must be between 1900 and 2200.", field=field)
    return moment


def _parsed(text: str, *, end: bool, field: str) -> datetime:
    try:
        if _DAY.fullmatch(text):
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(0), tzinfo=BANGKOK)
        # A date-time's date is written as a day is: fromisoformat would also read ISO 8601's
        # basic and week forms, and take "20260301" for an instant, not the day it names.
        if _DAY.fullmatch(text[:10]) is None or text[10:11] not in ("T", "t", " "):
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"'{field}' must be a date (YYYY-MM-DD) or an ISO 8601 date-time.", field=field
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=BANGKOK)


def _period(from_: datetime | None, to: datetime | None) -> Words:
    if from_ is None and to is None:
        return Words("ทั้งหมดที่มีบันทึก", "all records")
    start_th = thai_date(from_) if from_ else "เริ่มบันทึก"
    start_en = english_date(from_) if from_ else "the first record"
    # ``to`` is exclusive: a period to midnight ends with the day before.
    last = to - timedelta(microseconds=1) if to else None
    end_th = thai_date(last) if last else "ปัจจุบัน"
    end_en = english_date(last) if last else "now"
    return Words(f"{start_th} ถึง {end_th}", f"{start_en} to {end_en}")


def _who(row: AccessRow) -> str:
    if row.feed_scope is not None:  # the partner the feed went to
        return row.partner_display_name or "-"
    if row.principal_kind == "partner":
        return row.partner_display_name or row.principal_name or "-"
    if row.principal_kind == "operator":
        return row.operator or row.principal_name or "-"
    if row.principal_kind == "client":
        return row.principal_name or "-"
    # A refused caller's own words are not repeated; a partner it claimed to be is named.
    return row.partner_display_name or "-"


def entry(row: AccessRow) -> AccessEntry:
    """An audit record in the report's words."""
    if row.feed_scope is not None:
        return _feed_entry(row)
    note = None
    if row.last_at is not None:
        note = refused_calls_words(row.calls, row.source_ip, row.at, row.last_at)
    return AccessEntry(
        seq=row.seq,
        at=row.at.astimezone(BANGKOK),
        when=Words(thai_datetime(row.at), english_datetime(row.at)),
        who=_who(row),
        who_kind=kind_words(row.principal_kind),
        principal_kind=row.principal_kind,
        operation=row.operation,
        operation_words=operation_words(row.operation),
        purpose=purpose_words(row.principal_kind),
        disclosed=disclosed_words(row.operation, row.outcome),
        outcome=row.outcome,
        refused=row.outcome != "ok",
        result=outcome_words(row.outcome),
        protocol=row.protocol,
        operator=row.operator,
        terminal=row.terminal,
        request_id=row.request_id,
        calls=row.calls,
        last_at=None if row.last_at is None else row.last_at.astimezone(BANGKOK),
        source_ip=row.source_ip,
        note=note,
    )


def _feed_entry(row: AccessRow) -> AccessEntry:
    """A feed export whose manifest held the person: sent to a partner, for its counters."""
    partner = _who(row)
    return AccessEntry(
        seq=row.seq,
        at=row.at.astimezone(BANGKOK),
        when=Words(thai_datetime(row.at), english_datetime(row.at)),
        who=partner,
        who_kind=kind_words("partner"),
        principal_kind=row.principal_kind,
        operation=row.operation,
        operation_words=operation_words(row.operation),
        purpose=purpose_words("partner"),
        disclosed=feed_disclosed(row.feed_scope or ()),
        outcome=row.outcome,
        refused=False,
        result=outcome_words(row.outcome),
        protocol=row.protocol,
        operator=row.operator or row.principal_name,  # who made the export
        terminal=None,
        request_id=row.request_id,
        note=feed_words(partner),
    )


class AccessReportService:
    """Builds access reports; with a sink, records each one it builds for a ``Requester``."""

    def __init__(
        self,
        *,
        store: AccessReportStore,
        sink: AuditSink | None = None,
        clock: Callable[[], datetime],  # the business clock (app.main)
    ) -> None:
        self._store = store
        self._sink = sink
        self._clock = clock

    async def build(
        self,
        national_id: str,
        from_: Bound = None,
        to: Bound = None,
        *,
        requester: Requester | None = None,
        rendered_as: str | None = None,
    ) -> AccessReport:
        """Every access to ``national_id`` in ``[from_, to)``, oldest first (text bounds are
        read by ``parse_bound``)."""
        nid = validate_national_id(national_id.strip())
        try:
            start = parse_bound(from_, end=False, field="from")
            report = await self._build(nid, start, parse_bound(to, end=True, field="to"))
        except ServiceError as exc:
            await self._record(requester, nid, exc.code, None, {"message": exc.message[:300]})
            raise
        detail = {"entries": len(report.entries), "format": rendered_as}
        await self._record(requester, nid, "ok", report.person_name, detail)
        return report

    async def _build(self, nid: str, from_: datetime | None, to: datetime | None) -> AccessReport:
        if from_ is not None and to is not None and from_ >= to:
            raise InvalidInput("'from' must be before 'to'.", field="from")
        rows: list[AccessRow] = []
        after: tuple[datetime, int | None] | None = None
        while True:
            page = await self._store.accesses(
                national_id=nid, from_=from_, to=to, after=after, limit=PAGE
            )
            rows += page
            if len(page) < PAGE:
                break
            after = (page[-1].at, page[-1].seq)
        now = self._clock()
        return AccessReport(
            national_id=nid,
            masked_id=mask_national_id(nid),
            person_name=await self._store.person_name(nid),
            from_=from_,
            to=to,
            period=_period(from_, to),
            generated_at=now.astimezone(BANGKOK),
            generated=Words(thai_datetime(now), english_datetime(now) + " (Bangkok time)"),
            entries=tuple(entry(row) for row in rows),
        )

    async def _record(
        self,
        requester: Requester | None,
        national_id: str,
        outcome: str,
        name: str | None,
        detail: dict[str, Any],
    ) -> None:
        if self._sink is None or requester is None:
            return
        await self._sink.record(
            requester.record(
                at=self._clock(),
                operation=OPERATION,
                outcome=outcome,
                national_id=national_id,
                name_returned=name,
                detail=detail,
            )
        )


class AccessReportAccess:
    """The access report for SSO's internal applications: scope ``audit``, itself audited."""

    def __init__(self, *, gate: AdminGate, service: AccessReportService) -> None:
        self._gate = gate
        self._service = service

    async def report(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        national_id: str,
        from_: Bound = None,
        to: Bound = None,
        rendered_as: str = "json",
    ) -> AccessReport:
        """Every access to ``national_id`` in ``[from_, to)``; one AccessReport record."""

        async def body(call: Admitted) -> AccessReport:
            assert call.national_id is not None
            report = await self._service.build(call.national_id, from_, to)
            await call.audit.ok(
                name_returned=report.person_name, entries=len(report.entries), format=rendered_as
            )
            return report

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation=OPERATION,
            scope=AUDIT_SCOPE,
            body=body,
            national_id=national_id,
        )
