"""Answer bodies of the audit endpoints, as JSON and (lookups) as CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any, Final

from pydantic import ConfigDict, Field

from app.audit.records import LookupRecord, VerifyResult
from app.audit.service import LookupPage
from app.domain.calendar import thai_datetime
from app.domain.spreadsheet_cells import escape_row
from app.rest.wire import NationalIdText, OutModel

_RECORD_EXAMPLE: dict[str, Any] = {
    "seq": 1024,
    "at": "2024-06-12T02:31:05.412000Z",
    "nationalId": "3100600445635",
    "principalKind": "partner",
    "principalId": 3,
    "principalName": "cvs-demo",
    "operator": "op7",
    "terminal": "T-01",
    "sourceIp": "203.0.113.10",
    "protocol": "soap",
    "operation": "InquireContribution",
    "nameReturned": "นางสมหญิง ใจดี",
    "outcome": "ok",
    "requestId": "6f1c2e0a9b8d4c3e",
    "calls": 1,
    "lastAt": None,
    "feedPartner": None,
    "feedExportId": None,
}
CSV_COLUMNS: Final = tuple(_RECORD_EXAMPLE)
#: Appended to the CSV (for the officers who read it): `at` and `lastAt` in Bangkok time with
#: the year in the Buddhist Era (พ.ศ.). The JSON keeps ISO instants only.
CSV_THAI_COLUMNS: Final = ("atTh", "lastAtTh")


class LookupRecordOut(OutModel):
    """One call that touched the ID: when, who, from where, how, what name they saw, outcome."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RECORD_EXAMPLE]})

    seq: int | None = Field(
        description="Position in the hash chain; null for a record committed a moment ago "
        "with the payment it describes, whose chain link follows within a second."
    )
    at: datetime
    national_id: NationalIdText
    principal_kind: str = Field(description="partner, client, operator or anonymous.")
    principal_id: int | None
    principal_name: str | None
    operator: str | None
    terminal: str | None
    source_ip: str | None
    protocol: str = Field(description="soap, rest or cli.")
    operation: str
    name_returned: str | None = Field(description="The insured person's name as the caller saw it.")
    outcome: str = Field(description="ok, or the error code of a refused call.")
    request_id: str
    calls: int = Field(
        description="1, or for refused calls of callers never admitted, counted per source "
        "address and minute: how many (the first at `at`, its request id)."
    )
    last_at: datetime | None = Field(description="The last of the counted calls.")
    feed_partner: str | None = Field(
        description="The partner of a feed export whose manifest held the ID (this record is "
        "the export's start: the ID was included in the feed sent to that partner)."
    )
    feed_export_id: str | None = Field(description="That export's id.")

    @classmethod
    def of(cls, r: LookupRecord) -> LookupRecordOut:
        return cls(
            seq=r.seq,
            at=r.at,
            national_id=r.national_id,
            principal_kind=r.principal_kind,
            principal_id=r.principal_id,
            principal_name=r.principal_name,
            operator=r.operator,
            terminal=r.terminal,
            source_ip=r.source_ip,
            protocol=r.protocol,
            operation=r.operation,
            name_returned=r.name_returned,
            outcome=r.outcome,
            request_id=r.request_id,
            calls=r.calls,
            last_at=r.last_at,
            feed_partner=r.feed_partner,
            feed_export_id=r.feed_export_id,
        )


class LookupPageOut(OutModel):
    """Records newest first; pass ``nextCursor`` as ``cursor`` for the next page."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"records": [_RECORD_EXAMPLE], "nextCursor": "MjAyNC0wNi0xMlQwMjo"}]
        }
    )

    records: list[LookupRecordOut]
    next_cursor: str | None = Field(description="None on the last page.")

    @classmethod
    def of(cls, page: LookupPage) -> LookupPageOut:
        return cls(
            records=[LookupRecordOut.of(r) for r in page.records], next_cursor=page.next_cursor
        )


def lookup_csv(page: LookupPage) -> str:
    """A page of lookups as CSV with a header row (the JSON field names, then the Thai times)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS + CSV_THAI_COLUMNS)
    for record in page.records:
        row = LookupRecordOut.of(record).model_dump(by_alias=True, mode="json")
        thai = (thai_datetime(record.at), thai_datetime(record.last_at) if record.last_at else "")
        writer.writerow(escape_row([*(row[column] for column in CSV_COLUMNS), *thai]))
    return out.getvalue()


class BrokenRecordOut(OutModel):
    """The first record where the chain does not hold (``at`` is null when it is missing)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"seq": 2048, "at": "2024-06-12T02:31:05Z", "reason": "hash mismatch"}]
        }
    )

    seq: int
    at: datetime | None
    reason: str


class VerifyOut(OutModel):
    """How many records were checked, and where the hash chain first breaks, if it does: a record
    edited, removed or reordered, a range rewritten with recomputed hashes, a tail cut off, or a
    signed checkpoint kept outside the database missing or forged."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "checked": 15000,
                    "ok": True,
                    "firstBroken": None,
                    "broken": 0,
                    "firstSeq": 1,
                    "lastSeq": 15000,
                    "checkpoints": 42,
                    "sealedSeq": 14980,
                    "headSeq": 15000,
                    "unlinked": 0,
                    "firstUnsealed": None,
                }
            ]
        }
    )

    checked: int
    ok: bool
    first_broken: BrokenRecordOut | None
    broken: int = Field(description="How many faults were found in all.")
    first_seq: int | None
    last_seq: int | None
    checkpoints: int = Field(description="Signed checkpoints that verified with the public keys.")
    sealed_seq: int | None = Field(description="The last record a verified checkpoint sealed.")
    head_seq: int | None = Field(description="The chain's last record.")
    unlinked: int = Field(
        description="Records in the range committed but still waiting for their chain link "
        "(normally 0 after a second)."
    )
    first_unsealed: int | None = Field(
        default=None,
        description="No checkpoint: the chain holds records but no signed checkpoint verifies, "
        "so nothing holds them (ok is false); the first of them. Null otherwise.",
    )

    @classmethod
    def of(cls, r: VerifyResult) -> VerifyOut:
        broken = r.first_broken
        return cls(
            checked=r.checked,
            ok=r.ok,
            first_broken=(
                BrokenRecordOut(seq=broken.seq, at=broken.at, reason=broken.reason)
                if broken is not None
                else None
            ),
            broken=r.broken,
            first_seq=r.first_seq,
            last_seq=r.last_seq,
            checkpoints=r.checkpoints,
            sealed_seq=r.sealed_seq,
            head_seq=r.head_seq,
            unlinked=r.unlinked,
            first_unsealed=r.first_unsealed,
        )
