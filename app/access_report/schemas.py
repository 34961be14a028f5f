"""Bodies of the access-report, complaint and partner-feed endpoints; the access report as CSV
and HTML too; the feed download's headers.

The HTML report is the Jinja2 template ``templates/access_report.html`` beside this module: a
printable A4 page in Thai with English below, the person's name and masked ID on top. The
command line renders reports with the same functions, so both give the same document.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote

import jinja2
from pydantic import ConfigDict, Field

from app.access_report.service import AccessEntry, AccessReport
from app.complaints.records import (
    Complaint,
    ComplaintEvent,
    ComplaintPage,
    LinkedAudit,
    LinkedPayment,
    NewComplaint,
)
from app.domain.calendar import BANGKOK
from app.domain.money import to_baht
from app.feed.access import FeedDownload
from app.feed.service import FeedExport
from app.rest.wire import Baht, InModel, MonthText, NationalIdIn, NationalIdText, OutModel

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
Category = Literal["paid-not-posted", "charged-twice", "wrong-amount", "other"]
State = Literal["open", "investigating", "resolved", "rejected"]
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
FeedFormat = Literal["fixed", "csv"]
FEED_MEDIA: Final = {"fixed": "text/plain; charset=tis-620", "csv": "text/csv; charset=utf-8"}
_UNSAFE_IN_NAME: Final = re.compile(r"[^A-Za-z0-9._-]")


# --- the access report -----------------------------------------------------------------------
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
                }
            ]
        }
    )

    seq: int = Field(description="Position in the audit trail's hash chain.")
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

    @classmethod
    def of(cls, e: AccessEntry) -> AccessEntryOut:
        return cls(
            seq=e.seq, at=e.at, who=e.who, who_kind=e.principal_kind, who_kind_th=e.who_kind.th,
            who_kind_en=e.who_kind.en, operation=e.operation, operation_th=e.operation_words.th,
            operation_en=e.operation_words.en, purpose_th=e.purpose.th, purpose_en=e.purpose.en,
            disclosed_th=[w.th for w in e.disclosed], disclosed_en=[w.en for w in e.disclosed],
            outcome=e.outcome, refused=e.refused, result_th=e.result.th, result_en=e.result.en,
            protocol=e.protocol, operator=e.operator, terminal=e.terminal,
            request_id=e.request_id,
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
    truncated: bool = Field(description="True when only the first accesses are listed.")
    accesses: list[AccessEntryOut]

    @classmethod
    def of(cls, r: AccessReport) -> AccessReportOut:
        return cls(
            national_id=r.national_id, masked_national_id=r.masked_id, name=r.person_name,
            from_=r.from_, to=r.to, period_th=r.period.th, period_en=r.period.en,
            generated_at=r.generated_at, count=len(r.entries), truncated=r.truncated,
            accesses=[AccessEntryOut.of(e) for e in r.entries],
        )  # fmt: skip


CSV_COLUMNS: Final = tuple(
    name for name in AccessEntryOut.model_json_schema(by_alias=True)["properties"]
)


def _cell(value: object) -> str:
    if isinstance(value, list):
        value = "; ".join(map(str, value))
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell that starts like a formula; names come from outside.
    return "'" + text if text.startswith(_FORMULA_START) else text


def access_report_csv(report: AccessReport) -> str:
    """The accesses as CSV with a header row (the JSON field names), oldest first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in report.entries:
        row = AccessEntryOut.of(entry).model_dump(by_alias=True, mode="json")
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def access_report_html(report: AccessReport) -> str:
    """The printable report: Thai with English below, A4, name and masked ID on top."""
    return _templates().get_template("access_report.html").render(report=report)


# --- complaint cases -------------------------------------------------------------------------
class ComplaintIn(InModel):
    """A member's complaint, with the receipt number or the partner's transaction id."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "nationalId": "3100600445635",
                    "category": "paid-not-posted",
                    "description": "Paid 3 months at the counter; not shown.",
                    "partner": "demo-counter",
                    "partnerTxnId": "POS-77",
                    "paidOn": "2026-11-26",
                    "openedBy": "officer.somchai",
                }
            ]
        }
    )

    national_id: NationalIdIn
    category: Category
    description: str = Field(max_length=2000, examples=["Paid 3 months at the counter; not shown."])
    receipt_no: str | None = Field(None, max_length=40, examples=["R2406120000123X"])
    partner: str | None = Field(None, max_length=64, description="The partner's name.")
    partner_txn_id: str | None = Field(None, max_length=64, description="Needs `partner`.")
    paid_on: date | None = Field(None, description="The day the member says they paid.")
    opened_by: str | None = Field(None, max_length=100, description="The officer taking it.")

    def to_new(self) -> NewComplaint:
        return NewComplaint(
            national_id=self.national_id, category=self.category, description=self.description,
            receipt_no=self.receipt_no, partner=self.partner, partner_txn_id=self.partner_txn_id,
            paid_on=self.paid_on, opened_by=self.opened_by,
        )  # fmt: skip


class TransitionIn(InModel):
    """A move of a case: open → investigating → resolved | rejected."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "to": "investigating",
                    "who": "officer.somchai",
                    "note": "Asked the partner for its settlement line.",
                }
            ]
        }
    )

    to: Literal["investigating", "resolved", "rejected"]
    who: str = Field(max_length=100, description="The officer making the move.")
    note: str | None = Field(None, max_length=1000)


class PaymentOut(OutModel):
    """The payment a case is about."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "receiptNo": "R261126-00000042-K",
                    "partner": "demo-counter",
                    "partnerTxnId": "POS-77",
                    "nationalId": "3100600445635",
                    "section": 40,
                    "months": ["2026-11"],
                    "amount": "70.00",
                    "state": "confirmed",
                    "businessDate": "2026-11-26",
                    "paidAt": "2026-11-26T15:41:00+07:00",
                    "postedAt": "2026-11-26T15:41:01+07:00",
                    "cancelledAt": None,
                }
            ]
        }
    )

    id: int
    receipt_no: str
    partner: str | None
    partner_txn_id: str
    national_id: NationalIdText
    section: int
    months: list[MonthText]
    amount: Baht
    state: str = Field(json_schema_extra={"enum": ["confirmed", "cancelled"]})
    business_date: date
    paid_at: datetime
    posted_at: datetime
    cancelled_at: datetime | None

    @classmethod
    def of(cls, p: LinkedPayment) -> PaymentOut:
        return cls(
            id=p.id, receipt_no=p.receipt_no, partner=p.partner, partner_txn_id=p.partner_txn_id,
            national_id=p.national_id, section=p.section, months=list(p.months),
            amount=str(to_baht(p.amount_satang)), state=p.state,
            business_date=p.business_date, paid_at=p.paid_at, posted_at=p.posted_at,
            cancelled_at=p.cancelled_at,
        )  # fmt: skip


class AuditLinkOut(OutModel):
    """An audit record of the person around the payment."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "seq": 1025,
                    "at": "2026-11-26T15:41:01+07:00",
                    "protocol": "soap",
                    "operation": "ConfirmPayment",
                    "outcome": "ok",
                    "principalKind": "partner",
                    "principalName": "demo-counter",
                }
            ]
        }
    )

    seq: int
    at: datetime
    protocol: str
    operation: str
    outcome: str
    principal_kind: str
    principal_name: str | None

    @classmethod
    def of(cls, a: LinkedAudit) -> AuditLinkOut:
        return cls.model_validate(a, from_attributes=True)


class EventOut(OutModel):
    """A move of the case (``from`` is null for its opening)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "at": "2026-11-27T09:00:00+07:00",
                    "from": "open",
                    "to": "investigating",
                    "who": "officer.somchai",
                    "via": "rest",
                    "note": "Asked the partner for its settlement line.",
                }
            ]
        }
    )

    at: datetime
    from_: str | None = Field(alias="from")
    to: str
    who: str
    via: str | None
    note: str | None

    @classmethod
    def of(cls, e: ComplaintEvent) -> EventOut:
        return cls(at=e.at, from_=e.from_state, to=e.to_state, who=e.who, via=e.via, note=e.note)


class ComplaintSummaryOut(OutModel):
    """A case as listed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "nationalId": "3100600445635",
                    "name": "นางสมหญิง ใจดี",
                    "category": "paid-not-posted",
                    "description": "Paid 3 months at the counter; not shown.",
                    "state": "investigating",
                    "receiptNo": None,
                    "partner": "demo-counter",
                    "partnerTxnId": "POS-77",
                    "paymentId": None,
                    "paidOn": "2026-11-26",
                    "openedBy": "officer.somchai",
                    "createdAt": "2026-11-27T08:30:00+07:00",
                    "updatedAt": "2026-11-27T09:00:00+07:00",
                }
            ]
        }
    )

    id: int
    national_id: NationalIdText
    name: str | None
    category: Category
    description: str
    state: State
    receipt_no: str | None
    partner: str | None
    partner_txn_id: str | None
    payment_id: int | None
    paid_on: date | None
    opened_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Complaint) -> ComplaintSummaryOut:
        return cls.model_validate(c, from_attributes=True)


class ComplaintOut(ComplaintSummaryOut):
    """A case with its payment, the person's audit records around it and its history."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "nationalId": "3100600445635",
                    "name": "นางสมหญิง ใจดี",
                    "category": "paid-not-posted",
                    "description": "Paid 3 months at the counter; not shown.",
                    "state": "investigating",
                    "receiptNo": None,
                    "partner": "demo-counter",
                    "partnerTxnId": "POS-77",
                    "paymentId": None,
                    "paidOn": "2026-11-26",
                    "openedBy": "officer.somchai",
                    "createdAt": "2026-11-27T08:30:00+07:00",
                    "updatedAt": "2026-11-27T09:00:00+07:00",
                    "payment": {
                        "id": 42,
                        "receiptNo": "R261126-00000042-K",
                        "partner": "demo-counter",
                        "partnerTxnId": "POS-77",
                        "nationalId": "3100600445635",
                        "section": 40,
                        "months": ["2026-11"],
                        "amount": "70.00",
                        "state": "confirmed",
                        "businessDate": "2026-11-26",
                        "paidAt": "2026-11-26T15:41:00+07:00",
                        "postedAt": "2026-11-26T15:41:01+07:00",
                        "cancelledAt": None,
                    },
                    "auditRecords": [
                        {
                            "seq": 1025,
                            "at": "2026-11-26T15:41:01+07:00",
                            "protocol": "soap",
                            "operation": "ConfirmPayment",
                            "outcome": "ok",
                            "principalKind": "partner",
                            "principalName": "demo-counter",
                        }
                    ],
                    "history": [
                        {
                            "at": "2026-11-27T09:00:00+07:00",
                            "from": "open",
                            "to": "investigating",
                            "who": "officer.somchai",
                            "via": "rest",
                            "note": "Asked the partner for its settlement line.",
                        }
                    ],
                }
            ]
        }
    )

    payment: PaymentOut | None
    audit_records: list[AuditLinkOut]
    history: list[EventOut]

    @classmethod
    def of(cls, c: Complaint) -> ComplaintOut:
        summary = ComplaintSummaryOut.of(c).model_dump()
        return cls(
            **summary,
            payment=PaymentOut.of(c.payment) if c.payment else None,
            audit_records=[AuditLinkOut.of(a) for a in c.audit_records],
            history=[EventOut.of(e) for e in c.history],
        )


class ComplaintPageOut(OutModel):
    """Cases oldest first; pass ``nextCursor`` as ``cursor`` for the next page."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "complaints": [
                        {
                            "id": 7,
                            "nationalId": "3100600445635",
                            "name": "นางสมหญิง ใจดี",
                            "category": "paid-not-posted",
                            "description": "Paid 3 months at the counter; not shown.",
                            "state": "investigating",
                            "receiptNo": None,
                            "partner": "demo-counter",
                            "partnerTxnId": "POS-77",
                            "paymentId": None,
                            "paidOn": "2026-11-26",
                            "openedBy": "officer.somchai",
                            "createdAt": "2026-11-27T08:30:00+07:00",
                            "updatedAt": "2026-11-27T09:00:00+07:00",
                        }
                    ],
                    "nextCursor": None,
                }
            ]
        }
    )

    complaints: list[ComplaintSummaryOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: ComplaintPage) -> ComplaintPageOut:
        return cls(
            complaints=[ComplaintSummaryOut.of(c) for c in page.complaints],
            next_cursor=page.next_cursor,
        )


# --- the partner feed ------------------------------------------------------------------------
def feed_file_name(download: FeedDownload) -> str:
    """``ssofeed-PARTNER-s40-20261126T154000.txt``: partner, section (or all), generation time."""
    plan = download.plan
    section = "all" if plan.query.section is None else f"s{plan.query.section}"
    extension = "txt" if plan.file_format == "fixed" else "csv"
    return f"ssofeed-{plan.partner.name}-{section}-{plan.generated_at:%Y%m%dT%H%M%S}.{extension}"


def feed_headers(download: FeedDownload) -> dict[str, str]:
    """An attachment named for the export (ASCII, and exactly per RFC 6266), never cached."""
    name = feed_file_name(download)
    ascii_name = _UNSAFE_IN_NAME.sub("_", name)
    return {
        "Content-Disposition": (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
        ),
        "Cache-Control": "no-store",
    }


class FeedExportOut(OutModel):
    """The manifest of a partner's newest feed export, read from that export's audit record:
    check a downloaded file against ``sha256``, ``byteCount`` and ``rowCount``, and that
    ``requestId`` is the X-Request-ID of your download."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "layout": "SSOFEEDV01",
                    "format": "fixed",
                    "encoding": "TIS-620",
                    "partner": "cvs-demo",
                    "partnerDisplayName": "ร้านสะดวกซื้อทดสอบ",
                    "section": 40,
                    "scope": ["national_id", "title", "first_name", "last_name", "section",
                              "status", "amount_due"],
                    "rowCount": 12842,
                    "byteCount": 3288064,
                    "sha256": "9f2c7d0e5b1a4c3d8e6f7a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
                    "generatedAt": "2026-11-26T15:40:00+07:00",
                    "amountMonth": "2026-11",
                    "recordedAt": "2026-11-26T15:40:07+07:00",
                    "requestId": "6f1c2e0a9b8d4c3e",
                    "protocol": "rest",
                    "exportedBy": "back-office",
                }
            ]
        }
    )  # fmt: skip

    layout: str = Field(description="The layout's id, as in the fixed file's H record.")
    format: FeedFormat
    encoding: str = Field(description="TIS-620 (fixed) or UTF-8 (csv).")
    partner: str
    partner_display_name: str
    section: int | None = Field(description="39 or 40; null when the feed holds both.")
    scope: list[str] = Field(description="The fields the partner's data scope allowed.")
    row_count: int = Field(description="Persons in the file (D records, or CSV rows).")
    byte_count: int = Field(description="The file's length in bytes.")
    sha256: str = Field(description="The file's SHA-256, lowercase hex.")
    generated_at: datetime = Field(description="When the export began (Bangkok time).")
    amount_month: MonthText = Field(description="The month whose rates priced the amounts.")
    recorded_at: datetime = Field(description="When its audit record was committed: its end.")
    request_id: str = Field(description="The request id of the export.")
    protocol: str = Field(description="rest or cli.")
    exported_by: str | None = Field(description="The client, or the operator of the command.")

    @classmethod
    def of(cls, e: FeedExport) -> FeedExportOut:
        m = e.manifest
        document = m.document()
        return cls(
            layout=document["layout"], format=m.file_format, encoding=document["encoding"],
            partner=m.partner, partner_display_name=m.partner_display_name, section=m.section,
            scope=list(m.scope), row_count=m.row_count, byte_count=m.byte_count,
            sha256=m.sha256, generated_at=m.generated_at, amount_month=str(m.amount_month),
            recorded_at=e.recorded_at.astimezone(BANGKOK), request_id=e.request_id,
            protocol=e.protocol, exported_by=e.exported_by,
        )  # fmt: skip
