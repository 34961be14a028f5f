"""Request and answer bodies of the insured-person administration."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field

from app.domain.section39 import Section33History, s39_application_deadline
from app.insured.records import (
    InsuredPage,
    InsuredPerson,
    OptionChangeResult,
)
from app.insured.registration import Registration
from app.rest.wire import (
    Baht,
    DateIn,
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
    WholeIn,
    baht,
    whole_number,
)

Option = Annotated[
    int,
    Field(ge=1, le=3, description="Section 40 option 1, 2 or 3."),
    BeforeValidator(whole_number),
]
Reason = Annotated[str, Field(min_length=1, max_length=1000, description="Why (500 characters).")]
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
    "section33": None,
    "appliedOn": None,
    "eligibility": None,
    "rulesFrom": None,
}
SECTION33_EXAMPLE: dict[str, Any] = {
    "monthsContributed": 48,
    "employmentEndedOn": "2024-01-15",
}


class Section33Out(OutModel):
    """The person's Section 33 history as the source system sent it at a Section 39
    registration, and the last day to apply that it gave."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [SECTION33_EXAMPLE | {"applyBy": "2024-07-15"}]}
    )

    months_contributed: int = Field(description="Months of Section 33 contributions.")
    employment_ended_on: date = Field(description="The last day of employment.")
    apply_by: date = Field(
        description="The last day to apply for Section 39: six months counted from the day"
        " after employment ended (docs/domain.md)."
    )


class Section33In(InModel):
    """The person's Section 33 history, as the source system gives it."""

    model_config = ConfigDict(json_schema_extra={"examples": [SECTION33_EXAMPLE]})

    months_contributed: WholeIn = Field(
        ge=0, le=1200, description="Months of Section 33 contributions (at least 12 to qualify)."
    )
    employment_ended_on: DateIn = Field(description="The last day of employment under Section 33.")

    def to_history(self) -> Section33History:
        return Section33History(self.months_contributed, self.employment_ended_on)


class OverrideIn(InModel):
    """An SSO officer admits the person to Section 39 outside the eligibility rule."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "Appeal 2567/0142 upheld by the branch"}]}
    )

    reason: Reason


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
    section33: Section33Out | None = Field(
        description="Section 39: the Section 33 history sent at registration (null: none)."
    )
    applied_on: date | None = Field(description="Section 39: the day the person applied.")
    eligibility: Literal["eligible", "override"] | None = Field(
        description="Section 39: `eligible` (the rule was met) or `override` (an SSO officer"
        " admitted the person outside it, with a reason: see `statusEvents`); null when not"
        " recorded (such as a person loaded from an extract)."
    )
    rules_from: MonthText | None = Field(
        description="Section 39: an officer's reinstatement has the rules judged from this"
        " month on (null: from the coverage start)."
    )

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
            section33=_section33(p),
            applied_on=p.s39_applied_on,
            eligibility=p.s39_eligibility,
            rules_from=str(p.rules_from) if p.rules_from else None,
        )


def _section33(p: InsuredPerson) -> Section33Out | None:
    if p.s33_months is None or p.s33_employment_ended_on is None:
        return None
    return Section33Out(
        months_contributed=p.s33_months,
        employment_ended_on=p.s33_employment_ended_on,
        apply_by=s39_application_deadline(p.s33_employment_ended_on),
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
    """A person to register: Section 40 needs an option, and (with a birth date) age 15-65;
    Section 39 needs the Section 33 history (12 months or more, applied within 6 months of
    leaving work), unless an SSO officer overrides the rule with a reason. A person whose
    latest membership has ended registers again here (under Section 40 after Section 39, say)."""

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
                },
                {
                    "nationalId": "1112034563562",
                    "title": "นาย",
                    "firstName": "สมชาย",
                    "lastName": "รักงาน",
                    "section": 39,
                    "effectiveDate": "2024-02-01",
                    "section33": SECTION33_EXAMPLE,
                    "appliedOn": "2024-02-20",
                },
            ]
        }
    )

    national_id: NationalIdIn
    title: str = Field(max_length=200, description="นาย, นาง, นางสาว or an initial.")
    first_name: str = Field(max_length=500)
    last_name: str = Field(max_length=500)
    section: SectionNo
    option: Option | None = None
    effective_date: DateIn | None = Field(
        default=None, description="Coverage start; default today."
    )
    birth_date: DateIn | None = None
    payment_method: str | None = Field(default=None, max_length=200)
    period_of_payment: str | None = Field(default=None, max_length=200)
    return_code: str | None = Field(default=None, max_length=200)
    section33: Section33In | None = Field(
        default=None, description="Section 39: the person's Section 33 history."
    )
    applied_on: DateIn | None = Field(
        default=None,
        description="Section 39: the day the person applied; default today. Earlier than today"
        " by more than SSOGW_S39_APPLICATION_BACKDATE_DAYS days (default 0) only with"
        " `eligibilityOverride` (else 422 client.application_backdated).",
    )
    eligibility_override: OverrideIn | None = Field(
        default=None,
        description="Section 39: an SSO officer admits the person outside the eligibility rule"
        " (recorded with its reason and audited).",
    )

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
            section33=None if self.section33 is None else self.section33.to_history(),
            applied_on=self.applied_on,
            override_reason=None
            if self.eligibility_override is None
            else (self.eligibility_override.reason),
        )


class StatusIn(InModel):
    """An officer's change of status, with its reason: recorded as an event that the status
    the person is in must then show, or refused (409 client.status_contradicts_rules)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "terminated",
                    "reason": "three_consecutive_unpaid",
                    "endedMonth": "2024-05",
                },
                {
                    "status": "active",
                    "reason": "Payment of 2024-03 proven by bank slip 0042",
                    "rulesFrom": "2024-06",
                },
            ]
        }
    )

    status: Literal["active", "terminated", "inactive"]
    reason: Reason
    ended_month: MonthIn | None = Field(
        default=None,
        description="A termination: the first month no longer covered, between the coverage"
        " start and this month (default: this month); never after the month the rules ended it.",
    )
    rules_from: MonthIn | None = Field(
        default=None,
        description="A reinstatement (Section 39): judge the rules again from this month (such"
        " as after a proven payment); needed when the rules have ended the membership.",
    )


class Section33EmploymentIn(InModel):
    """The person is employed under Section 33 again: their open membership ends."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"employedFrom": "2024-06-10", "reason": "Employer notice 2567/88"}]
        }
    )

    employed_from: DateIn = Field(description="The first day of employment (cover ends from"
                                " that month).")  # fmt: skip
    reason: str | None = Field(default=None, max_length=1000, description="Why (optional).")


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
