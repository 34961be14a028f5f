"""Request and answer bodies of the insured-person administration."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from app.insured.records import (
    InsuredPage,
    InsuredPerson,
    OptionChangeResult,
)
from app.insured.registration import Registration
from app.rest.wire import (
    Baht,
    InModel,
    MemberStatus,
    MonthIn,
    MonthText,
    NationalIdIn,
    NationalIdText,
    OutModel,
    ReadPathName,
    SectionNo,
    SectionOut,
    baht,
)

Option = Annotated[int, Field(ge=1, le=3, description="Section 40 option 1, 2 or 3.")]
PERSON_EXAMPLE: dict[str, Any] = {
    "nationalId": "3100600445635",
    "title": "นาง",
    "firstName": "สมหญิง",
    "lastName": "ใจดี",
    "section": 40,
    "status": "active",
    "statusReason": None,
    "endedMonth": None,
    "effectiveDate": "2023-01-01",
    "option": 2,
    "optionChangedOn": None,
    "paymentMethod": "counter",
    "periodOfPayment": None,
    "returnCode": None,
    "birthDate": "1985-04-02",
    "lastPaidOn": None,
    "lastPaidAmount": None,
    "createdAt": "2023-01-01T03:00:00Z",
    "updatedAt": "2023-01-01T03:00:00Z",
}


class PersonOut(OutModel):
    """An insured person's record, with every field of the source system's extracts."""

    model_config = ConfigDict(json_schema_extra={"examples": [PERSON_EXAMPLE]})

    national_id: NationalIdText
    title: str
    first_name: str
    last_name: str
    section: SectionOut
    status: MemberStatus
    status_reason: str | None
    ended_month: MonthText | None = Field(description="The first month no longer covered.")
    effective_date: date = Field(description="Coverage start.")
    option: int | None = Field(description="Section 40 option 1, 2 or 3 (now held).")
    option_changed_on: date | None
    payment_method: str | None
    period_of_payment: str | None
    return_code: str | None
    birth_date: date | None
    last_paid_on: date | None
    last_paid_amount: Baht | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: InsuredPerson) -> PersonOut:
        return cls(
            national_id=p.national_id,
            title=p.title,
            first_name=p.first_name,
            last_name=p.last_name,
            section=p.section,
            status=p.status,
            status_reason=p.status_reason,
            ended_month=str(p.ended_month) if p.ended_month else None,
            effective_date=p.effective_date,
            option=p.option,
            option_changed_on=p.option_changed_on,
            payment_method=p.payment_method,
            period_of_payment=p.period_of_payment,
            return_code=p.return_code,
            birth_date=p.birth_date,
            last_paid_on=p.last_paid_on,
            last_paid_amount=baht(p.last_paid_satang) if p.last_paid_satang is not None else None,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class PersonPageOut(OutModel):
    """One page of insured persons in national-ID order; pass ``nextCursor`` for the next."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [PERSON_EXAMPLE],
                    "nextCursor": "bjozMTAwNjAwNDQ1NjM1",
                    "asOf": "2024-06-12T09:30:00.123456+07:00",
                    "servedBy": "replica",
                }
            ]
        }
    )

    items: list[PersonOut]
    next_cursor: str | None = Field(description="None on the last page.")
    as_of: datetime
    served_by: ReadPathName

    @classmethod
    def of(cls, page: InsuredPage) -> PersonPageOut:
        return cls(
            items=[PersonOut.of(p) for p in page.persons],
            next_cursor=page.next_cursor,
            as_of=page.meta.as_of,
            served_by=page.meta.path,
        )


class PersonIn(InModel):
    """A person to register: Section 40 needs an option, and (with a birth date) age 15-65."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "nationalId": "3100600445635",
                    "title": "นาง",
                    "firstName": "สมหญิง",
                    "lastName": "ใจดี",
                    "section": 40,
                    "option": 2,
                    "effectiveDate": "2024-07-01",
                    "birthDate": "1985-04-02",
                    "paymentMethod": "counter",
                }
            ]
        }
    )

    national_id: NationalIdIn
    title: str = Field(max_length=200, description="นาย, นาง, นางสาว or an initial.")
    first_name: str = Field(max_length=500)
    last_name: str = Field(max_length=500)
    section: SectionNo
    option: Option | None = None
    effective_date: date | None = Field(default=None, description="Coverage start; default today.")
    birth_date: date | None = None
    payment_method: str | None = Field(default=None, max_length=200)
    period_of_payment: str | None = Field(default=None, max_length=200)
    return_code: str | None = Field(default=None, max_length=200)

    def to_registration(self) -> Registration:
        return Registration(
            national_id=self.national_id,
            title=self.title,
            first_name=self.first_name,
            last_name=self.last_name,
            section=self.section,
            option=self.option,
            effective_date=self.effective_date,
            birth_date=self.birth_date,
            payment_method=self.payment_method,
            period_of_payment=self.period_of_payment,
            return_code=self.return_code,
        )


class StatusIn(InModel):
    """A new status; a termination may name the first month no longer covered."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "terminated",
                    "reason": "three_consecutive_unpaid",
                    "endedMonth": "2024-05",
                }
            ]
        }
    )

    status: Literal["active", "terminated", "inactive"]
    reason: str | None = Field(default=None, max_length=1000, description="Why (200 characters).")
    ended_month: MonthIn | None = Field(default=None, description="Default: this month.")


class OptionIn(InModel):
    """The Section 40 option to hold from next month."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"option": 2}]})

    option: Option


class OptionChangeResultOut(OutModel):
    """The option change made, and the person's record after it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "person": PERSON_EXAMPLE,
                    "previousOption": 1,
                    "option": 2,
                    "effectiveMonth": "2024-07",
                    "changedOn": "2024-06-12",
                }
            ]
        }
    )

    person: PersonOut
    previous_option: int
    option: int
    effective_month: MonthText = Field(description="The first month at the new option.")
    changed_on: date

    @classmethod
    def of(cls, r: OptionChangeResult) -> OptionChangeResultOut:
        return cls(
            person=PersonOut.of(r.person),
            previous_option=r.previous_option,
            option=r.option,
            effective_month=str(r.effective_month),
            changed_on=r.changed_on,
        )
