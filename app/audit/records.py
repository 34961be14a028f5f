"""One audit record: who touched which national ID, when, how, what they saw, and the outcome."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from app.domain.calendar import has_utc_instant
from app.errors import InvalidInput
from app.frozen_records import quick_init


@quick_init
@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A call that touched a national ID (or was refused before it could)."""

    at: datetime  # aware (UTC)
    protocol: str  # soap | rest | cli
    operation: str  # SOAP operation name or REST operation id
    outcome: str  # "ok" or the error code
    request_id: str
    principal_kind: str  # partner | client | operator | anonymous
    principal_id: int | None = None
    principal_name: str | None = None
    operator: str | None = None
    terminal: str | None = None
    source_ip: str | None = None
    national_id: str | None = None
    name_returned: str | None = None  # the insured person's name as the caller saw it
    detail: dict[str, Any] | None = None


#: Records committed together at most, by ``commit_together``: a page of thousands of persons
#: goes in turns. A writer with a smaller queue takes smaller groups (``AuditSink.together``).
TOGETHER: Final = 500


async def commit_together(sink: AuditSink, records: Sequence[AuditRecord]) -> None:
    """Commit ``records`` through ``sink``, ``sink.together`` at a time (each group in the
    writer's group commits at once), returning once all are committed."""
    size = max(1, sink.together)
    for start in range(0, len(records), size):
        group = records[start : start + size]
        await asyncio.gather(*(sink.record(record) for record in group))


class AuditSink(Protocol):
    """Where use cases put their records; ``record`` returns once the record is committed."""

    async def record(self, record: AuditRecord) -> None:
        """Commit ``record`` (batched with others); raise AuditUnavailable if it cannot be."""
        ...

    def link_soon(self) -> None:
        """A record was committed inside a business transaction: put it on the chain soon."""
        ...

    @property
    def together(self) -> int:
        """How many records one listing may send at once: a share of the writer's queue, so a
        page of thousands never fills it (``commit_together``)."""
        ...


class AuditTransaction(Protocol):
    """A business transaction that can carry its call's audit record: the record commits with
    the transaction's own writes, or not at all (and the chain link follows the commit)."""

    async def add_audit_record(self, record: AuditRecord) -> None:
        """Write ``record`` in this transaction; AuditUnavailable if the trail refuses it."""
        ...


#: Where a record still waiting for its chain link sorts among records of the same instant.
UNLINKED_SEQ = 2**63 - 1


@dataclass(frozen=True, slots=True)
class LookupCursor:
    """Position after the last record of a page (records are ordered by ``at``, then ``seq``;
    a record waiting for its chain link counts as ``UNLINKED_SEQ``)."""

    at: datetime
    seq: int

    def encode(self) -> str:
        """An opaque token for the next page."""
        text = f"{self.at.astimezone(UTC).isoformat(timespec='microseconds')}|{self.seq}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> LookupCursor:
        """The cursor a token stands for; InvalidInput if it is not one of ours."""
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            at_text, seq_text = text.split("|")
            at = datetime.fromisoformat(at_text)
            if at.tzinfo is None or not has_utc_instant(at):
                raise ValueError("naive cursor time, or none the store holds")
            seq = int(seq_text)
            if not 0 <= seq < 2**63:  # a bigint, as the records' seq is
                raise ValueError("seq out of range")
            return cls(at, seq)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise InvalidInput("The cursor is not valid.", field="cursor") from None


@dataclass(frozen=True, slots=True)
class LookupRecord:
    """One call that touched the ID: who, from where, how, what name they saw, the outcome."""

    seq: int | None  # None: committed, its chain link follows within the writer's cadence
    at: datetime
    national_id: str
    principal_kind: str
    principal_id: int | None
    principal_name: str | None
    operator: str | None
    terminal: str | None
    source_ip: str | None
    protocol: str
    operation: str
    name_returned: str | None
    outcome: str
    request_id: str
    calls: int = 1  # refused calls a record of refusals counts (the first at ``at``)
    last_at: datetime | None = None  # the last of them
    feed_partner: str | None = None  # a feed export that included the ID: to whom
    feed_export_id: str | None = None  # and which (its start record is this record)


@dataclass(frozen=True, slots=True)
class BrokenRecord:
    """The first record where the chain does not hold (``at`` is None if it is missing, or the
    fault is over a range: a rewritten range, or a seal lost)."""

    seq: int
    at: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """How many records were checked, and where the chain first breaks, if it does, against the
    hashes and links of the records and the signed checkpoints; ``ok`` only when nothing broke
    and a checkpoint holds the records (``first_unsealed`` is set when none does)."""

    checked: int
    ok: bool
    first_broken: BrokenRecord | None
    broken: int = 0  # how many faults were found in all
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: int = 0  # signed checkpoints that verified
    sealed_seq: int | None = None  # the last record a verified checkpoint sealed
    head_seq: int | None = None  # the chain's last record
    unlinked: int = 0  # records committed but still waiting for their chain link
    # No checkpoint verifies, yet there are records: the first of them (nothing holds them).
    first_unsealed: int | None = None


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks the audit trail, as an audit record will name them."""

    protocol: str  # cli | rest
    principal_kind: str  # operator | client
    request_id: str
    principal_id: int | None = None
    principal_name: str | None = None
    operator: str | None = None
    terminal: str | None = None
    source_ip: str | None = None

    def listed(
        self,
        people: Iterable[tuple[str, str | None]],
        *,
        at: datetime,
        operation: str,
        **detail: Any,
    ) -> list[AuditRecord]:
        """One record per person a listing shows (national ID, name as shown or None), as
        ``CallAudit.people_seen`` writes them for a call through the gate."""
        return [
            self.record(
                at=at, operation=operation, outcome="ok", national_id=national_id,
                name_returned=name or None, detail={"listed": True, **detail},
            )
            for national_id, name in people
        ]  # fmt: skip

    def record(
        self,
        *,
        at: datetime,
        operation: str,
        outcome: str,
        national_id: str | None = None,
        name_returned: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """The audit record of this requester's call (an operator's command, in practice)."""
        return AuditRecord(
            at=at,
            protocol=self.protocol,
            operation=operation,
            outcome=outcome,
            request_id=self.request_id,
            principal_kind=self.principal_kind,
            principal_id=self.principal_id,
            principal_name=self.principal_name,
            operator=self.operator,
            terminal=self.terminal,
            source_ip=self.source_ip,
            national_id=national_id,
            name_returned=name_returned,
            detail=detail,
        )
