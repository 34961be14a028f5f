"""Refused calls of callers never admitted: counted per source and window, written as few records.

A caller that is not admitted (its address in no allowlist, its credential unknown or wrong, its
clock off, its account disabled, over its rate, without the scope, or its check not made at all:
the argon2 pool full, the nonce ledger away) gets its refusal at once; its call is still on the
audit trail, but not as a record of its own. ``RefusalTally`` stands in front of the audit
writer as the ``AuditSink`` every use case writes to: a record of an *anonymous* caller (nobody
was admitted), whatever its outcome, is counted in this instance's memory by (window, source
address, protocol, operation, outcome, reason, claimed principal, national ID); every other
record goes to the writer as before, one per call. Whatever stopped the admission, a caller
never admitted can make no more records than the bounds below: a stranger's flood that fills
the argon2 pool (``server.overloaded``) is counted as one that fails its checks is.

The claimed principal is the username the caller gave only when the refusal proves it is a
principal's (its credential was checked against that principal, or the principal was admitted
and then refused: ``PROVEN_REASONS``, ``PROVEN_OUTCOMES``); any other name is the caller's own
invention as far as the gateway knows, and all of them count as one ``unknown`` claim (the
record names nobody and says ``"claimed": "unknown"``). Inventing usernames makes no new counts.

When a window (a minute by default) is over, each count becomes one ordinary audit record
through the writer, on the hash chain: the first call's time and request id, the ID it named,
and ``detail`` ``{"aggregated": true, "calls": N, "first_at", "last_at", "reason"}``: "N refused
calls from 203.0.113.9 naming this ID between 10:01:07 and 10:01:58". Only INSERTs, as the
service's database role allows: nothing is counted up in the database.

Bounds, per window and instance: one source address has at most ``per_source`` counts; its
calls beyond them go into one overflow record of that source without national IDs
(``RefusedCallsOverflow``, with the calls per outcome). At most ``sources`` addresses are
counted; calls from further ones go into one overflow record of the window without an address.
So a flood costs at most ``sources × (per_source + 1) + 1`` records a window, however many
calls it makes and however many IDs it names.

Writing a window's counts (up to ``sources × (per_source + 1) + 1`` records, 10,251 with the
defaults) goes through the writer ``flush_chunk`` records at a time, each chunk committed before
the next is queued: admitted calls' records never queue behind more than one chunk, and the
writer's queue bound is never reached by a flush.

The price: a refused call answers before its count is committed, and the counts of a window
not yet written are lost if the instance dies (they are written at a graceful stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from app.audit.records import AuditRecord, AuditSink
from app.errors import (
    AccessRefused,
    AuditUnavailable,
    OperationNotAllowed,
    PartnerDisabled,
    RateLimited,
    ScopeNotAllowed,
)

log = logging.getLogger(__name__)

OVERFLOW_OPERATION: Final = "RefusedCallsOverflow"
OVERFLOW_OUTCOME: Final = AccessRefused.code
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
REQUEST_IDS_KEPT: Final = 20  # of the calls a count record stands for, besides its own
_KEPT_UNWRITTEN: Final = 100_000  # records whose write failed, kept for the next flush
# Refusals that prove the claimed username is a principal's: its credential was checked against
# that principal's (a wrong password or token, a replayed nonce, a password form it may not
# use, a correct digest whose nonce the ledger could not take), or it held and the principal
# was then refused (disabled, outside its allowlist).
PROVEN_REASONS: Final = frozenset({
    "bad_password", "replayed_nonce", "password_text_not_allowed", "bad_token",
    "partner_disabled", "client_disabled", "ip_not_allowed", "nonce_ledger_unavailable",
})  # fmt: skip
# Refusals of a caller whose credential held (refused after it was known).
PROVEN_OUTCOMES: Final = frozenset(
    cls.code for cls in (OperationNotAllowed, ScopeNotAllowed, RateLimited, PartnerDisabled)
)
UNKNOWN_CLAIM: Final = "unknown"


def aggregated(record: AuditRecord) -> bool:
    """Whether ``record`` is a refusal of a caller never admitted (it is counted, not written),
    whatever refused it: an admission refusal or a server error met before admission."""
    return record.principal_kind == "anonymous" and record.outcome != "ok"


def claimed(record: AuditRecord) -> str | None:
    """Whom a refused caller claimed to be, as counted: the username when the refusal proves it
    is a principal's, ``UNKNOWN_CLAIM`` for any other name, None when it gave none."""
    name = record.principal_name
    if name is None:
        return None
    reason = (record.detail or {}).get("reason")
    if record.outcome in PROVEN_OUTCOMES or reason in PROVEN_REASONS:
        return name
    return UNKNOWN_CLAIM


@dataclass(frozen=True, slots=True)
class _Key:
    protocol: str
    operation: str
    outcome: str
    reason: str | None
    claimed: str | None  # the principal a refused caller named (``claimed()``)
    national_id: str | None


@dataclass(slots=True)
class _Count:
    first: AuditRecord
    last_at: datetime
    calls: int = 1
    # The request ids of the calls after the first, up to REQUEST_IDS_KEPT: support finds a
    # refused call by the id its caller was told, the record stays small.
    others: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Overflow:
    first_at: datetime
    last_at: datetime
    request_id: str
    protocol: str
    calls: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, record: AuditRecord) -> None:
        self.calls += 1
        self.first_at = min(self.first_at, record.at)
        self.last_at = max(self.last_at, record.at)
        self.outcomes[record.outcome] += 1


@dataclass(slots=True)
class _Window:
    start: datetime
    sources: dict[str | None, dict[_Key, _Count]] = field(default_factory=dict)
    source_overflow: dict[str | None, _Overflow] = field(default_factory=dict)
    overflow: _Overflow | None = None


def _overflow(record: AuditRecord) -> _Overflow:
    return _Overflow(record.at, record.at, record.request_id, record.protocol)


class RefusalTally:
    """An ``AuditSink``: counts the refusals of callers never admitted, passes the rest on."""

    def __init__(
        self,
        *,
        sink: AuditSink,  # the audit writer
        clock: Callable[[], datetime],  # the business clock (app.main)
        window_s: float = 60.0,
        per_source: int = 50,
        sources: int = 200,
        flush_chunk: int = 100,
    ) -> None:
        if window_s <= 0 or per_source < 1 or sources < 1 or flush_chunk < 1:
            raise ValueError("window_s, per_source, sources and flush_chunk must be positive")
        self._chunk = flush_chunk
        self._sink = sink
        self._clock = clock
        self._window = timedelta(seconds=window_s)
        self._per_source = per_source
        self._sources = sources
        self._windows: dict[datetime, _Window] = {}
        self._unwritten: list[AuditRecord] = []
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    # --- the sink --------------------------------------------------------------------------
    async def record(self, record: AuditRecord) -> None:
        """Count ``record`` if it is a never-admitted caller's refusal; else write it."""
        if not aggregated(record):
            await self._sink.record(record)
            return
        self.count(record)

    def link_soon(self) -> None:
        """A record committed in a business transaction: the writer behind links it soon."""
        self._sink.link_soon()

    @property
    def together(self) -> int:
        """The writer behind's share for one listing."""
        return self._sink.together

    def count(self, record: AuditRecord) -> None:
        """Count one refusal of a caller never admitted in its window (bounded per source)."""
        start = self._window_of(record.at)
        window = self._windows.get(start)
        if window is None:
            window = self._windows[start] = _Window(start)
        source = record.source_ip
        counts = window.sources.get(source)
        if counts is None:
            if len(window.sources) >= self._sources:
                if window.overflow is None:
                    window.overflow = _overflow(record)
                window.overflow.add(record)
                return
            counts = window.sources[source] = {}
        key = _Key(
            protocol=record.protocol,
            operation=record.operation,
            outcome=record.outcome,
            reason=(record.detail or {}).get("reason"),
            claimed=claimed(record),
            national_id=record.national_id,
        )
        held = counts.get(key)
        if held is not None:
            held.calls += 1
            held.last_at = max(held.last_at, record.at)
            later, held.first = sorted((held.first, record), key=lambda r: r.at)[::-1]
            if len(held.others) < REQUEST_IDS_KEPT:
                held.others.append(later.request_id)
        elif len(counts) < self._per_source:
            counts[key] = _Count(record, record.at)
        else:
            spill = window.source_overflow.get(source)
            if spill is None:
                spill = window.source_overflow[source] = _overflow(record)
            spill.add(record)

    def _window_of(self, at: datetime) -> datetime:
        return at - (at - _EPOCH) % self._window

    # --- writing the counts ------------------------------------------------------------------
    async def flush(self, *, everything: bool = False) -> int:
        """Write the counts of every window that is over (all of them if ``everything``) as
        audit records; how many were written. A record that cannot be written is kept for the
        next flush."""
        async with self._flushing:
            now = self._clock()
            done = [s for s in self._windows if everything or s + self._window <= now]
            records = list(self._unwritten)
            self._unwritten.clear()
            for start in sorted(done):
                records.extend(self._records(self._windows.pop(start)))
            failed = await self._write(records)
            if failed:
                log.warning("%d aggregated refusal records not written; retried", len(failed))
                self._unwritten = failed[-_KEPT_UNWRITTEN:]
            return len(records) - len(failed)

    async def _write(self, records: list[AuditRecord]) -> list[AuditRecord]:
        """Write ``records`` a chunk at a time, each committed before the next is queued; the
        records not written (the rest are kept once a whole chunk fails: the writer is down)."""
        failed: list[AuditRecord] = []
        for start in range(0, len(records), self._chunk):
            chunk = records[start : start + self._chunk]
            results = await asyncio.gather(
                *(self._sink.record(r) for r in chunk), return_exceptions=True
            )
            lost = [r for r, result in zip(chunk, results, strict=True) if result is not None]
            for result in results:
                if result is not None and not isinstance(result, AuditUnavailable):
                    log.error("aggregated refusal not written", exc_info=result)
            failed.extend(lost)
            if len(lost) == len(chunk):
                failed.extend(records[start + self._chunk :])
                break
        return failed

    def _records(self, window: _Window) -> list[AuditRecord]:
        records = []
        for counts in window.sources.values():
            for key, held in counts.items():
                records.append(self._count_record(key, held))
        for source, spill in window.source_overflow.items():
            records.append(self._overflow_record(spill, source, kind="source"))
        if window.overflow is not None:
            records.append(self._overflow_record(window.overflow, None, kind="sources"))
        return records

    def _count_record(self, key: _Key, held: _Count) -> AuditRecord:
        first = held.first
        detail: dict[str, Any] = {
            "aggregated": True,
            "calls": held.calls,
            "first_at": first.at.isoformat(),
            "last_at": held.last_at.isoformat(),
            "window_s": self._window.total_seconds(),
        }
        if held.others:
            detail["request_ids"] = held.others
        if key.reason is not None:
            detail["reason"] = key.reason
        message = (first.detail or {}).get("message")
        if message is not None:
            detail["message"] = message
        if key.claimed == UNKNOWN_CLAIM:
            detail["claimed"] = UNKNOWN_CLAIM  # names that are no principal's, counted as one
        return AuditRecord(
            at=first.at, protocol=first.protocol, operation=first.operation,
            outcome=first.outcome, request_id=first.request_id, principal_kind="anonymous",
            principal_name=None if key.claimed == UNKNOWN_CLAIM else key.claimed,
            source_ip=first.source_ip, national_id=first.national_id, detail=detail,
        )  # fmt: skip

    def _overflow_record(self, spill: _Overflow, source: str | None, *, kind: str) -> AuditRecord:
        detail = {
            "aggregated": True,
            "overflow": kind,  # source: past per_source counts; sources: past the sources
            "calls": spill.calls,
            "first_at": spill.first_at.isoformat(),
            "last_at": spill.last_at.isoformat(),
            "window_s": self._window.total_seconds(),
            "outcomes": dict(spill.outcomes.most_common()),  # codes of the one vocabulary
        }
        return AuditRecord(
            at=spill.first_at, protocol=spill.protocol, operation=OVERFLOW_OPERATION,
            outcome=OVERFLOW_OUTCOME, request_id=spill.request_id, principal_kind="anonymous",
            source_ip=source, detail=detail,
        )  # fmt: skip

    # --- the background task -----------------------------------------------------------------
    async def start(self) -> None:
        """Write each window's counts soon after it is over (once started)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-refusal-tally")

    async def stop(self) -> None:
        """Stop the task and write every count held (before the audit writer stops)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush(everything=True)

    async def _run(self) -> None:
        tick = min(10.0, max(0.1, self._window.total_seconds() / 6))
        while True:
            await asyncio.sleep(tick)
            try:
                await self.flush()
            except Exception:  # never let the task die: the next tick tries again
                log.exception("aggregated refusals not flushed")
