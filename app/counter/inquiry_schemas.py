"""The inquiry answer of the counter: the person, their standing and the payable months."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import ConfigDict, Field

from app.counter.records import InquiryResult, PayableMonth
from app.rest.wire import (
    Baht,
    MemberStatus,
    MonthText,
    NationalIdText,
    OutModel,
    ReadPathName,
    SectionOut,
    baht,
)


class PayableMonthOut(OutModel):
    """A month the person may pay today, with its amount and (Section 39) due date."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "month": "2024-06",
                    "amount": "432.00",
                    "dueDate": "2024-07-15",
                    "overdue": False,
                    "governmentAmount": "0.00",
                }
            ]
        }
    )

    month: MonthText
    amount: Baht = Field(description="What the insured pays for this month.")
    due_date: date | None = Field(description="Section 39: the last day to pay on time.")
    overdue: bool = Field(description="Past its due date but still payable.")
    government_amount: Baht = Field(description="The government's share (information only).")

    @classmethod
    def of(cls, m: PayableMonth) -> PayableMonthOut:
        return cls(
            month=m.month,
            amount=baht(m.amount_satang),
            due_date=m.due_date,
            overdue=m.overdue,
            government_amount=baht(m.government_satang),
        )


class InquiryOut(OutModel):
    """What a counter shows: the person, their standing, the payable months and the default."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "nationalId": "3100600445635",
                    "title": "นาง",
                    "firstName": "สมหญิง",
                    "lastName": "ใจดี",
                    "section": 40,
                    "status": "active",
                    "statusReason": None,
                    "endedMonth": None,
                    "option": 2,
                    "months": [
                        {
                            "month": "2024-06",
                            "amount": "100.00",
                            "dueDate": None,
                            "overdue": False,
                            "governmentAmount": "50.00",
                        }
                    ],
                    "defaultMonths": ["2024-06"],
                    "defaultTotal": "100.00",
                    "savingsAllowed": True,
                    "maxSavingsPerMonth": "1000.00",
                    "asOf": "2024-06-12T09:30:00.123456+07:00",
                    "servedBy": "replica",
                }
            ]
        }
    )

    national_id: NationalIdText
    title: str
    first_name: str
    last_name: str
    section: SectionOut
    status: MemberStatus
    status_reason: str | None = Field(description="Why the membership ended, when it did.")
    ended_month: MonthText | None = Field(description="The first month no longer covered.")
    option: int | None = Field(description="Section 40 option 1, 2 or 3.")
    months: list[PayableMonthOut]
    default_months: list[MonthText] = Field(description="The months a counter offers first.")
    default_total: Baht
    savings_allowed: bool = Field(description="Additional savings may be paid (S40 options 2, 3).")
    max_savings_per_month: Baht
    as_of: datetime = Field(description="The data read is at least this fresh.")
    served_by: ReadPathName

    @classmethod
    def of(cls, r: InquiryResult) -> InquiryOut:
        return cls(
            national_id=r.national_id,
            title=r.title,
            first_name=r.first_name,
            last_name=r.last_name,
            section=r.section,
            status=r.status,
            status_reason=r.status_reason,
            ended_month=r.ended_month,
            option=r.option,
            months=[PayableMonthOut.of(m) for m in r.months],
            default_months=list(r.default_months),
            default_total=baht(r.default_total_satang),
            savings_allowed=r.savings_allowed,
            max_savings_per_month=baht(r.max_savings_per_month_satang),
            as_of=r.as_of,
            served_by=r.served_by.value,
        )
