"""A person's history as the full record shows it: payments, paid months, option changes, the
memberships that ended before the latest one, and the events that changed its status."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import ConfigDict, Field

from app.insured.records import (
    ClosedMembership,
    InsuredDetail,
    OptionChangeEntry,
    PaidMonthEntry,
    PaymentEntry,
    StatusEvent,
)
from app.insured.schemas import PERSON_EXAMPLE, PersonOut
from app.rest.wire import (
    Baht,
    MonthText,
    OutModel,
    ReadPathName,
    SectionOut,
    baht,
)


class PaymentEntryOut(OutModel):
    """One payment in a person's history."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "receiptNo": "R240612-00000123-D",
                    "partnerTxnId": "POS-20240612-000123",
                    "channelKind": "partner",
                    "channelName": "cvs-demo",
                    "section": 40,
                    "option": 2,
                    "months": ["2024-06"],
                    "amount": "100.00",
                    "savings": "0.00",
                    "state": "confirmed",
                    "businessDate": "2024-06-12",
                    "paidAt": "2024-06-12T02:31:00Z",
                    "postedAt": "2024-06-12T02:31:05Z",
                    "cancelledAt": None,
                }
            ]
        }
    )

    receipt_no: str
    partner_txn_id: str
    channel_kind: Literal["partner", "client"]
    channel_name: str
    section: SectionOut
    option: int | None
    months: list[MonthText]
    amount: Baht
    savings: Baht
    state: Literal["confirmed", "cancelled"]
    business_date: date
    paid_at: datetime
    posted_at: datetime
    cancelled_at: datetime | None

    @classmethod
    def of(cls, e: PaymentEntry) -> PaymentEntryOut:
        return cls.model_validate(
            {
                "receipt_no": e.receipt_no,
                "partner_txn_id": e.partner_txn_id,
                "channel_kind": e.channel_kind,
                "channel_name": e.channel_name,
                "section": e.section,
                "option": e.option,
                "months": [str(m) for m in e.months],
                "amount": baht(e.amount_satang),
                "savings": baht(e.savings_satang),
                "state": e.state,
                "business_date": e.business_date,
                "paid_at": e.paid_at,
                "posted_at": e.posted_at,
                "cancelled_at": e.cancelled_at,
            }
        )


class PaidMonthOut(OutModel):
    """A month recorded as paid; ``receiptNo`` is null when it came from the source system."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "month": "2024-06",
                    "section": 40,
                    "option": 2,
                    "amount": "100.00",
                    "paidOn": "2024-06-12",
                    "receiptNo": "R240612-00000123-D",
                }
            ]
        }
    )

    month: MonthText
    section: SectionOut
    option: int | None
    amount: Baht
    paid_on: date
    receipt_no: str | None

    @classmethod
    def of(cls, e: PaidMonthEntry) -> PaidMonthOut:
        return cls(
            month=str(e.month),
            section=e.section,
            option=e.option,
            amount=baht(e.amount_satang),
            paid_on=e.paid_on,
            receipt_no=e.receipt_no,
        )


class OptionChangeOut(OutModel):
    """A Section 40 option change: the new option applies from ``effectiveMonth``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "changedOn": "2024-06-12",
                    "previousOption": 1,
                    "newOption": 2,
                    "effectiveMonth": "2024-07",
                    "changedBy": "sso-backoffice",
                }
            ]
        }
    )

    changed_on: date
    previous_option: int
    new_option: int
    effective_month: MonthText
    changed_by: str | None

    @classmethod
    def of(cls, e: OptionChangeEntry) -> OptionChangeOut:
        return cls(
            changed_on=e.changed_on,
            previous_option=e.previous_option,
            new_option=e.new_option,
            effective_month=str(e.effective_month),
            changed_by=e.changed_by,
        )


class ClosedMembershipOut(OutModel):
    """A membership that ended before the person's latest one."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "section": 39,
                    "option": None,
                    "coverageStart": "2019-03-01",
                    "endedMonth": "2024-02",
                    "endReason": "three_consecutive_unpaid",
                    "eligibility": "eligible",
                    "closedOn": "2024-06-12",
                    "closedBy": "sso-backoffice",
                }
            ]
        }
    )

    section: SectionOut
    option: int | None = Field(description="Section 40: the option held when it ended.")
    coverage_start: date
    ended_month: MonthText = Field(description="The first month it no longer covered.")
    end_reason: str | None
    eligibility: Literal["eligible", "override"] | None
    closed_on: date = Field(description="When the next membership was registered.")
    closed_by: str | None

    @classmethod
    def of(cls, m: ClosedMembership) -> ClosedMembershipOut:
        return cls(
            section=m.section,
            option=m.option,
            coverage_start=m.coverage_start,
            ended_month=str(m.ended_month),
            end_reason=m.end_reason,
            eligibility=m.s39_eligibility,
            closed_on=m.closed_on,
            closed_by=m.closed_by,
        )


class StatusEventOut(OutModel):
    """An event that changed the status of the person's membership, with its reason."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "reinstated",
                    "section": 39,
                    "status": "active",
                    "endedMonth": None,
                    "rulesFrom": "2024-06",
                    "reason": "Payment of 2024-03 proven by bank slip 0042",
                    "recordedOn": "2024-06-12",
                    "recordedBy": "sso-backoffice",
                    "operator": "officer-17",
                }
            ]
        }
    )

    kind: Literal[
        "terminated", "suspended", "reinstated", "section33_employment", "eligibility_override"
    ]
    section: SectionOut
    status: str = Field(description="The status recorded after it.")
    ended_month: MonthText | None
    rules_from: MonthText | None
    reason: str
    recorded_on: date
    recorded_by: str = Field(description="The client that recorded it.")
    operator: str | None = Field(description="The officer, when the call named one.")

    @classmethod
    def of(cls, e: StatusEvent) -> StatusEventOut:
        return cls.model_validate(
            {
                "kind": e.kind,
                "section": e.section,
                "status": e.status,
                "ended_month": str(e.ended_month) if e.ended_month else None,
                "rules_from": str(e.rules_from) if e.rules_from else None,
                "reason": e.reason,
                "recorded_on": e.recorded_on,
                "recorded_by": e.recorded_by,
                "operator": e.operator,
            }
        )


class PersonDetailOut(OutModel):
    """A person's full record with their latest payments, paid months and option changes."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "person": PERSON_EXAMPLE,
                    "payments": [],
                    "paidMonths": [],
                    "optionChanges": [],
                    "previousMemberships": [],
                    "statusEvents": [],
                    "asOf": "2024-06-12T09:30:00.123456+07:00",
                    "servedBy": "replica",
                }
            ]
        }
    )

    person: PersonOut
    payments: list[PaymentEntryOut] = Field(description="Newest first (at most 120).")
    paid_months: list[PaidMonthOut] = Field(description="Newest first (at most 120).")
    option_changes: list[OptionChangeOut] = Field(description="Newest first.")
    previous_memberships: list[ClosedMembershipOut] = Field(
        description="The memberships that ended before the latest one, newest first."
    )
    status_events: list[StatusEventOut] = Field(
        description="Officers' changes of status and overrides, newest first (at most 120)."
    )
    as_of: datetime
    served_by: ReadPathName

    @classmethod
    def of(cls, d: InsuredDetail) -> PersonDetailOut:
        return cls(
            person=PersonOut.of(d.person),
            payments=[PaymentEntryOut.of(p) for p in d.payments],
            paid_months=[PaidMonthOut.of(m) for m in d.paid_months],
            option_changes=[OptionChangeOut.of(c) for c in d.option_changes],
            previous_memberships=[ClosedMembershipOut.of(m) for m in d.previous],
            status_events=[StatusEventOut.of(e) for e in d.events],
            as_of=d.meta.as_of,
            served_by=d.meta.path,
        )
