"""Bodies of the complaint endpoints: a new case, a move, and a case as listed or shown."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import ConfigDict, Field

from app.complaints.records import (
    Complaint,
    ComplaintEvent,
    ComplaintPage,
    LinkedAudit,
    LinkedPayment,
    NewComplaint,
)
from app.domain.money import to_baht
from app.rest.wire import (
    Baht,
    DateIn,
    InModel,
    MonthText,
    NationalIdIn,
    NationalIdText,
    OutModel,
)

Category = Literal["paid-not-posted", "charged-twice", "wrong-amount", "other"]
State = Literal["open", "investigating", "resolved", "rejected"]


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
    paid_on: DateIn | None = Field(None, description="The day the member says they paid.")
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
                    "receiptNo": "R261126-00000042-0",
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
                        "receiptNo": "R261126-00000042-0",
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
