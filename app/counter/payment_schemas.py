"""Request and answer bodies of confirm, cancel and status (the REST face of the SOAP contract)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import ConfigDict, Field

from app.counter.records import (
    CancelRequest,
    CancelResult,
    ConfirmRequest,
    ConfirmResult,
    CounterInfo,
    StatusResult,
)
from app.rest.wire import (
    Baht,
    BahtIn,
    DateIn,
    InModel,
    InstantIn,
    MonthIn,
    MonthText,
    NationalIdIn,
    NationalIdText,
    OutModel,
    SectionNo,
    SectionOut,
    baht,
    plain_text,
    satang,
)

TxnStateName = Annotated[
    str,
    Field(
        json_schema_extra={"enum": ["confirmed", "cancelled", "unknown"]}, examples=["confirmed"]
    ),
]


class CounterIn(InModel):
    """Where the payment was taken: store, terminal, shift and operator (all optional)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"storeId": "S-0001", "terminalId": "T-01", "shift": "1", "operatorId": "op7"}
            ]
        }
    )

    store_id: Annotated[str, plain_text(64)] | None = None
    terminal_id: Annotated[str, plain_text(64)] | None = None
    shift: Annotated[str, plain_text(64)] | None = None
    operator_id: Annotated[str, plain_text(64)] | None = None


class ConfirmIn(InModel):
    """A payment taken: your own transaction id, the person, the months and the exact amount."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "partnerTxnId": "POS-20240612-000123",
                    "nationalId": "3100600445635",
                    "section": 40,
                    "months": ["2024-06", "2024-07"],
                    "amount": "200.00",
                    "savings": "0.00",
                    "businessDate": "2024-06-12",
                    "paidAt": "2024-06-12T09:31:05+07:00",
                    "counter": {"storeId": "S-0001", "terminalId": "T-01"},
                }
            ]
        }
    )

    partner_txn_id: str = Field(
        max_length=200, description="Your id for this payment (1-64 characters), for retries."
    )
    national_id: NationalIdIn
    section: SectionNo
    months: list[MonthIn] = Field(max_length=24, description="The months paid, YYYY-MM.")
    amount: BahtIn = Field(description="The whole cash amount taken, savings included.")
    savings: BahtIn = Field(
        default=Decimal(0), description="Additional savings (S40 options 2, 3)."
    )
    business_date: DateIn | None = Field(
        default=None,
        description="Optional. If sent, it must be the business day the gateway decides for this "
        "payment: the Bangkok date it arrives on, or the next day once the cut-off (23:00 "
        "Asia/Bangkok) has passed; otherwise client.business_date_mismatch.",
    )
    paid_at: InstantIn = Field(
        description="When the cash was taken, with a time zone. It must lie within 5 minutes "
        "before and 1 minute after the gateway's clock (settings), else "
        "client.paid_at_out_of_window; the payable months are judged at this moment."
    )
    counter: CounterIn | None = None

    def to_request(self) -> ConfirmRequest:
        c = self.counter or CounterIn()
        return ConfirmRequest(
            partner_txn_id=self.partner_txn_id,
            national_id=self.national_id,
            section=self.section,
            months=tuple(self.months),
            amount_satang=satang(self.amount),
            savings_satang=satang(self.savings),
            business_date=self.business_date,
            paid_at=self.paid_at,
            counter=CounterInfo(c.store_id, c.terminal_id, c.shift, c.operator_id),
        )


class ConfirmOut(OutModel):
    """The recorded payment and its SSO receipt number; ``replayed`` when sent before."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "partnerTxnId": "POS-20240612-000123",
                    "receiptNo": "R240612-00000123-D",
                    "nationalId": "3100600445635",
                    "section": 40,
                    "months": ["2024-06", "2024-07"],
                    "amount": "200.00",
                    "savings": "0.00",
                    "postedAt": "2024-06-12T02:31:05.412000Z",
                    "businessDate": "2024-06-12",
                    "replayed": False,
                }
            ]
        }
    )

    partner_txn_id: str
    receipt_no: str
    national_id: NationalIdText
    section: SectionOut
    months: list[MonthText]
    amount: Baht
    savings: Baht
    posted_at: datetime
    business_date: date
    replayed: bool = Field(description="True when this answers a repeat of an earlier request.")

    @classmethod
    def of(cls, r: ConfirmResult) -> ConfirmOut:
        return cls(
            partner_txn_id=r.partner_txn_id,
            receipt_no=r.receipt_no,
            national_id=r.national_id,
            section=r.section,
            months=list(r.months),
            amount=baht(r.amount_satang),
            savings=baht(r.savings_satang),
            posted_at=r.posted_at,
            business_date=r.business_date,
            replayed=r.replayed,
        )


class CancelIn(InModel):
    """Why the payment is cancelled (required)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Customer changed mind"}]})

    reason: str = plain_text(2000, "Why (kept up to 500 characters).")

    def to_request(self, partner_txn_id: str) -> CancelRequest:
        return CancelRequest(partner_txn_id=partner_txn_id, reason=self.reason)


class CancelOut(OutModel):
    """The cancelled payment; its months are payable again."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "partnerTxnId": "POS-20240612-000123",
                    "receiptNo": "R240612-00000123-D",
                    "state": "cancelled",
                    "cancelledAt": "2024-06-12T02:40:00Z",
                    "amount": "200.00",
                    "months": ["2024-06", "2024-07"],
                }
            ]
        }
    )

    partner_txn_id: str
    receipt_no: str
    state: TxnStateName
    cancelled_at: datetime
    amount: Baht
    months: list[MonthText]

    @classmethod
    def of(cls, r: CancelResult) -> CancelOut:
        return cls(
            partner_txn_id=r.partner_txn_id,
            receipt_no=r.receipt_no,
            state=r.state.value,
            cancelled_at=r.cancelled_at,
            amount=baht(r.amount_satang),
            months=list(r.months),
        )


class StatusOut(OutModel):
    """A transaction's state by your id: ``unknown`` means it was never recorded (send again)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "partnerTxnId": "POS-20240612-000123",
                    "state": "confirmed",
                    "receiptNo": "R240612-00000123-D",
                    "nationalId": "3100600445635",
                    "section": 40,
                    "months": ["2024-06", "2024-07"],
                    "amount": "200.00",
                    "savings": "0.00",
                    "postedAt": "2024-06-12T02:31:05.412000Z",
                    "cancelledAt": None,
                    "businessDate": "2024-06-12",
                }
            ]
        }
    )

    partner_txn_id: str
    state: TxnStateName
    receipt_no: str | None = None
    national_id: NationalIdText | None = None
    section: int | None = None
    months: list[MonthText] = Field(default_factory=list)
    amount: Baht | None = None
    savings: Baht | None = None
    posted_at: datetime | None = None
    cancelled_at: datetime | None = None
    business_date: date | None = None

    @classmethod
    def of(cls, r: StatusResult) -> StatusOut:
        return cls(
            partner_txn_id=r.partner_txn_id,
            state=r.state.value,
            receipt_no=r.receipt_no,
            national_id=r.national_id,
            section=r.section,
            months=list(r.months),
            amount=baht(r.amount_satang) if r.amount_satang is not None else None,
            savings=baht(r.savings_satang) if r.savings_satang is not None else None,
            posted_at=r.posted_at,
            cancelled_at=r.cancelled_at,
            business_date=r.business_date,
        )
