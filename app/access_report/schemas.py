"""The access report's JSON body, and the same entries as CSV (the JSON field names as columns).

The command line renders reports with these too, so both give the same document.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Final

from pydantic import ConfigDict, Field

from app.access_report.service import AccessEntry, AccessReport
from app.domain.calendar import thai_datetime
from app.domain.spreadsheet_cells import escape_cell
from app.rest.wire import NationalIdText, OutModel


class AccessEntryOut(OutModel):
    """One access: when (Bangkok time), who, what in plain words, why, what it showed, outcome."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "seq": 1024,
                    "at": "2026-11-26T15:40:00+07:00",
                    "who": "Demo convenience store",
                    "whoKind": "partner",
                    "whoKindTh": "หน่วยบริการรับชำระ",
                    "whoKindEn": "payment partner",
                    "operation": "InquireContribution",
                    "operationTh": "สอบถามยอดเงินสมทบ",
                    "operationEn": "Contribution inquiry",
                    "purposeTh": "ชำระเงินสมทบที่เคาน์เตอร์",
                    "purposeEn": "counter payment",
                    "disclosedTh": ["ชื่อ-นามสกุล", "มาตรา", "สถานะ", "เดือนที่ชำระได้และยอดเงิน"],
                    "disclosedEn": ["name", "section", "status", "payable months and amounts"],
                    "outcome": "ok",
                    "refused": False,
                    "resultTh": "สำเร็จ",
                    "resultEn": "answered",
                    "protocol": "soap",
                    "operator": "OP-9",
                    "terminal": "T-07",
                    "requestId": "6f1c2e0a9b8d4c3e",
                    "calls": 1,
                    "lastAt": None,
                    "sourceIp": None,
                    "noteTh": None,
                    "noteEn": None,
                    "atTh": "26 พ.ย. 2569 15:40:00 น.",
                    "lastAtTh": None,
                }
            ]
        }
    )

    seq: int | None = Field(
        description="Position in the audit trail's hash chain; null for a record committed a "
        "moment ago, whose chain link follows within a second."
    )
    at: datetime
    who: str = Field(description="The partner's display name, the client or the officer.")
    who_kind: str = Field(description="partner, client, operator or anonymous.")
    who_kind_th: str
    who_kind_en: str
    operation: str
    operation_th: str
    operation_en: str
    purpose_th: str
    purpose_en: str
    disclosed_th: list[str]
    disclosed_en: list[str]
    outcome: str = Field(description="ok, or the error code of a refused call.")
    refused: bool
    result_th: str
    result_en: str
    protocol: str = Field(description="soap, rest or cli.")
    operator: str | None
    terminal: str | None
    request_id: str
    calls: int = Field(
        description="1, or how many refused calls of callers never admitted this line counts "
        "(per source address and minute; the first at `at`)."
    )
    last_at: datetime | None = Field(description="The last of the calls this line counts.")
    source_ip: str | None = Field(description="Where the calls this line counts came from.")
    note_th: str | None = Field(description="What the line stands for, when not one call.")
    note_en: str | None
    at_th: str = Field(description="`at` as people read it: Bangkok time, Buddhist Era (พ.ศ.).")
    last_at_th: str | None = Field(description="`lastAt` the same way.")

    @classmethod
    def of(cls, e: AccessEntry) -> AccessEntryOut:
        return cls(
            seq=e.seq, at=e.at, who=e.who, who_kind=e.principal_kind, who_kind_th=e.who_kind.th,
            who_kind_en=e.who_kind.en, operation=e.operation, operation_th=e.operation_words.th,
            operation_en=e.operation_words.en, purpose_th=e.purpose.th, purpose_en=e.purpose.en,
            disclosed_th=[w.th for w in e.disclosed], disclosed_en=[w.en for w in e.disclosed],
            outcome=e.outcome, refused=e.refused, result_th=e.result.th, result_en=e.result.en,
            protocol=e.protocol, operator=e.operator, terminal=e.terminal,
            request_id=e.request_id, calls=e.calls, last_at=e.last_at, source_ip=e.source_ip,
            note_th=e.note.th if e.note else None, note_en=e.note.en if e.note else None,
            at_th=e.when.th, last_at_th=thai_datetime(e.last_at) if e.last_at else None,
        )  # fmt: skip


class AccessReportOut(OutModel):
    """Every access to the person's record in the period, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "nationalId": "3100600445635",
                    "maskedNationalId": "3-1006-xxxxx-xx-5",
                    "name": "นางสมหญิง ใจดี",
                    "from": "2026-11-01T00:00:00+07:00",
                    "to": "2026-12-01T00:00:00+07:00",
                    "periodTh": "1 พ.ย. 2569 – 30 พ.ย. 2569",
                    "periodEn": "1 Nov 2026 – 30 Nov 2026",
                    "generatedAt": "2026-11-27T10:00:00+07:00",
                    "count": 1,
                    "truncated": False,
                    "accesses": [
                        {
                            "seq": 1024,
                            "at": "2026-11-26T15:40:00+07:00",
                            "who": "Demo convenience store",
                            "whoKind": "partner",
                            "whoKindTh": "หน่วยบริการรับชำระ",
                            "whoKindEn": "payment partner",
                            "operation": "InquireContribution",
                            "operationTh": "สอบถามยอดเงินสมทบ",
                            "operationEn": "Contribution inquiry",
                            "purposeTh": "ชำระเงินสมทบที่เคาน์เตอร์",
                            "purposeEn": "counter payment",
                            "disclosedTh": ["ชื่อ-นามสกุล", "มาตรา", "สถานะ", "เดือนที่ชำระได้และยอดเงิน"],
                            "disclosedEn": [
                                "name",
                                "section",
                                "status",
                                "payable months and amounts",
                            ],
                            "outcome": "ok",
                            "refused": False,
                            "resultTh": "สำเร็จ",
                            "resultEn": "answered",
                            "protocol": "soap",
                            "operator": "OP-9",
                            "terminal": "T-07",
                            "requestId": "6f1c2e0a9b8d4c3e",
                            "calls": 1,
                            "lastAt": None,
                            "sourceIp": None,
                            "noteTh": None,
                            "noteEn": None,
                            "atTh": "26 พ.ย. 2569 15:40:00 น.",
                            "lastAtTh": None,
                        }
                    ],
                }
            ]
        }
    )

    national_id: NationalIdText
    masked_national_id: str = Field(examples=["3-1006-xxxxx-xx-5"])
    name: str | None = Field(description="The person's name; null when nobody has the ID.")
    from_: datetime | None = Field(alias="from")
    to: datetime | None = Field(description="Exclusive.")
    period_th: str
    period_en: str
    generated_at: datetime
    count: int
    truncated: bool = Field(
        default=False, description="Always false: every access of the period is listed."
    )
    accesses: list[AccessEntryOut]

    @classmethod
    def of(cls, r: AccessReport) -> AccessReportOut:
        return cls(
            national_id=r.national_id, masked_national_id=r.masked_id, name=r.person_name,
            from_=r.from_, to=r.to, period_th=r.period.th, period_en=r.period.en,
            generated_at=r.generated_at, count=len(r.entries),
            accesses=[AccessEntryOut.of(e) for e in r.entries],
        )  # fmt: skip


CSV_COLUMNS: Final = tuple(
    name for name in AccessEntryOut.model_json_schema(by_alias=True)["properties"]
)


def _cell(value: object) -> str:
    if isinstance(value, list):
        value = "; ".join(map(str, value))
    return escape_cell(value)


def access_report_csv(report: AccessReport) -> str:
    """The accesses as CSV with a header row (the JSON field names), oldest first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in report.entries:
        row = AccessEntryOut.of(entry).model_dump(by_alias=True, mode="json")
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()
