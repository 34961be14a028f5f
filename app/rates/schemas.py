"""Request and answer bodies of the rate-table administration."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import ConfigDict, Field

from app.domain.overpayment import Overpayment
from app.rates.records import RateRecord
from app.rates.service import OverpaymentTally, RateRequest
from app.rest.wire import (
    Baht,
    BahtIn,
    InModel,
    MonthIn,
    MonthText,
    NationalIdText,
    OutModel,
    SectionNo,
    SectionOut,
    WholeIn,
    baht,
    satang,
)

_RATE_EXAMPLE: dict[str, Any] = {
    "id": 10,
    "section": 40,
    "option": 1,
    "firstMonth": "2021-08",
    "lastMonth": "2022-01",
    "amount": "42.00",
    "governmentAmount": "30.00",
    "note": "S40 option 1 cut to 60% Aug 2021-Jan 2022",
    "createdAt": "2021-07-20T03:00:00Z",
}
_OVERPAYMENT_EXAMPLE: dict[str, Any] = {
    "nationalId": "3100600445635",
    "section": 40,
    "option": 1,
    "month": "2021-08",
    "paid": "70.00",
    "due": "42.00",
    "refund": "28.00",
    "reason": "rate_cut",
}


class RateOut(OutModel):
    """One line of the rate table: what the insured pays per month over a span of months."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RATE_EXAMPLE]})

    id: int
    section: SectionOut
    option: int | None = Field(description="Section 40 option; null for Section 39.")
    first_month: MonthText
    last_month: MonthText | None = Field(description="Null: open-ended.")
    amount: Baht = Field(description="Paid by the insured per month.")
    government_amount: Baht = Field(description="Added by the government (information only).")
    note: str | None
    created_at: datetime

    @classmethod
    def of(cls, r: RateRecord) -> RateOut:
        return cls(
            id=r.id,
            section=r.rate.section,
            option=r.rate.option,
            first_month=str(r.rate.first_month),
            last_month=str(r.rate.last_month) if r.rate.last_month else None,
            amount=baht(r.rate.amount_satang),
            government_amount=baht(r.rate.government_satang),
            note=r.note,
            created_at=r.created_at,
        )


class RateListOut(OutModel):
    """The rate table in the order rates were added; the latest start covering a month wins."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"rates": [_RATE_EXAMPLE]}]})

    rates: list[RateOut]


class RateIn(InModel):
    """A rate to add for a section (and Section 40 option) over a span of months."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "section": 40,
                    "option": 1,
                    "firstMonth": "2021-08",
                    "lastMonth": "2022-01",
                    "amount": "42.00",
                    "governmentAmount": "30.00",
                    "note": "Cabinet resolution: 60% for six months",
                }
            ]
        }
    )

    section: SectionNo
    option: WholeIn | None = Field(default=None, description="Required for Section 40 (1, 2, 3).")
    first_month: MonthIn
    last_month: MonthIn | None = Field(default=None, description="Omit for open-ended.")
    amount: BahtIn
    government_amount: BahtIn = Field(default=Decimal(0), description="Information only.")
    note: str | None = Field(default=None, max_length=1000)

    def to_request(self) -> RateRequest:
        return RateRequest(
            section=self.section,
            option=self.option,
            first_month=self.first_month,
            last_month=self.last_month,
            amount_satang=satang(self.amount),
            government_satang=satang(self.government_amount),
            note=self.note,
        )


class OverpaymentOut(OutModel):
    """A month paid above the rate now due for it, and the refund owed."""

    model_config = ConfigDict(json_schema_extra={"examples": [_OVERPAYMENT_EXAMPLE]})

    national_id: NationalIdText
    section: SectionOut
    option: int | None
    month: MonthText
    paid: Baht
    due: Baht
    refund: Baht
    reason: Literal["rate_cut", "cover_ended"] = Field(
        description="Why it is owed: `rate_cut`, a rate cut after the month was paid (here"
        " always); `cover_ended`, a month paid after its membership ended, refunded in full"
        " (in the refund listing, `ssogw refunds list`)."
    )

    @classmethod
    def of(cls, o: Overpayment) -> OverpaymentOut:
        return cls(
            national_id=o.national_id,
            section=o.section,
            option=o.option,
            month=str(o.month),
            paid=baht(o.paid_satang),
            due=baht(o.due_satang),
            refund=baht(o.refund_satang),
            reason=o.reason,
        )


class RateChangeOut(OutModel):
    """The rate added and every overpayment it creates, with their count and refund total."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rate": _RATE_EXAMPLE,
                    "retroactive": True,
                    "overpayments": [_OVERPAYMENT_EXAMPLE],
                    "overpaymentCount": 1,
                    "refundTotal": "28.00",
                }
            ]
        }
    )

    rate: RateOut
    retroactive: bool
    overpayments: list[OverpaymentOut] = Field(description="In month order.")
    overpayment_count: int
    refund_total: Baht


class RateChangeTail(OutModel):
    """The end of a streamed RateChangeOut, written after its overpayments."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"overpaymentCount": 1, "refundTotal": "28.00"}]}
    )

    overpayment_count: int
    refund_total: Baht

    @classmethod
    def of(cls, tally: OverpaymentTally) -> RateChangeTail:
        return cls(overpayment_count=tally.count, refund_total=baht(tally.refund_satang))
