"""Registering an insured person: the checks a registration must pass before it is stored.

Section 40 needs an option (1-3) and, when a birth date is given, a registration age of 15 to
65; Section 39 has no option and needs the person's Section 33 history (months contributed, the
last day of employment) for its eligibility rule (``app.domain.section39``), which an SSO
officer may override with a reason. Its application date (``appliedOn``, default: today) lies
in the future never, and before today by at most the policy's ``application_backdate_days``
(default 0) unless an officer overrides (``client.application_backdated``): the six months to
apply are counted to it. Names are trimmed, printable and bounded; the coverage start
lies between the first rate of the table and a year ahead. (The national ID is checked against
the section's accepted first digits before this, by the admin gate.)

A person already on record registers again only once their latest membership has ended
(``ensure_may_register_again``): it is closed, and the new one begins no earlier than the month
it ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from app.domain.months import Month
from app.domain.rates import S40_OPTIONS
from app.domain.section39 import S39Policy, Section33History, earliest_application_date
from app.domain.standing import TERMINATED, Standing, reason_code
from app.errors import AlreadyExists, ApplicationBackdated, BusinessRefusal, InvalidInput
from app.insured.records import ClosedMembership, InsuredPerson, NewInsured

S40_AGE: Final = (15, 65)  # registration age, completed years, both included
EARLIEST_EFFECTIVE: Final = date(1990, 1, 1)
MAX_NAME: Final = 100
MAX_TITLE: Final = 40
MAX_CODE: Final = 40
MAX_REASON: Final = 500


@dataclass(frozen=True, slots=True)
class Registration:
    """A registration as the caller sent it (checked by ``InsuredAdmin.register``)."""

    national_id: str
    title: str
    first_name: str
    last_name: str
    section: int
    option: int | None = None
    effective_date: date | None = None  # default: today
    birth_date: date | None = None
    payment_method: str | None = None
    period_of_payment: str | None = None
    return_code: str | None = None
    section33: Section33History | None = None  # Section 39: what the source system sent
    applied_on: date | None = None  # Section 39: the day the person applied; default today
    override_reason: str | None = None  # Section 39: an SSO officer admits outside the rule


def _text(value: str, *, field: str, limit: int) -> str:
    text = value.strip()
    if not 1 <= len(text) <= limit or not text.isprintable():
        raise InvalidInput(f"{field} must be 1 to {limit} printable characters.", field=field)
    return text


def optional_text(value: str | None, *, field: str, limit: int) -> str | None:
    """``value`` trimmed (None when blank), or InvalidInput naming ``field``."""
    if value is None or not value.strip():
        return None
    return _text(value, field=field, limit=limit)


def age_on(birth: date, day: date) -> int:
    """Completed years of age on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def checked_registration(
    reg: Registration, *, national_id: str, today: date, s39: S39Policy
) -> NewInsured:
    """The registration as it will be stored, or the rule it breaks (as a ClientError)."""
    if reg.section == 40 and reg.option not in S40_OPTIONS:
        raise InvalidInput("A Section 40 member needs option 1, 2 or 3.", field="option")
    if reg.section == 39 and reg.option is not None:
        raise InvalidInput("Section 39 has no option.", field="option")
    effective = reg.effective_date or today
    latest = Month.of(today).plus(12).last_day
    if not EARLIEST_EFFECTIVE <= effective <= latest:
        raise InvalidInput(
            f"effectiveDate must be between {EARLIEST_EFFECTIVE} and {latest}.",
            field="effectiveDate",
        )
    if reg.birth_date is not None:
        if reg.birth_date > today:
            raise InvalidInput("birthDate is in the future.", field="birthDate")
        age = age_on(reg.birth_date, today)
        if reg.section == 40 and not S40_AGE[0] <= age <= S40_AGE[1]:
            raise BusinessRefusal(
                f"Section 40 registration is for ages {S40_AGE[0]} to {S40_AGE[1]};"
                f" the person is {age}.",
                reason="registration_age",
                field="birthDate",
                age=age,
            )
    history = _section39_fields(reg, today=today, policy=s39)
    return NewInsured(
        national_id=national_id,
        title=_text(reg.title, field="title", limit=MAX_TITLE),
        first_name=_text(reg.first_name, field="firstName", limit=MAX_NAME),
        last_name=_text(reg.last_name, field="lastName", limit=MAX_NAME),
        section=reg.section,
        option=reg.option,
        effective_date=effective,
        birth_date=reg.birth_date,
        payment_method=optional_text(reg.payment_method, field="paymentMethod", limit=MAX_CODE),
        period_of_payment=optional_text(
            reg.period_of_payment, field="periodOfPayment", limit=MAX_CODE
        ),
        return_code=optional_text(reg.return_code, field="returnCode", limit=MAX_CODE),
        s33_months=history[0],
        s33_employment_ended_on=history[1],
        s39_applied_on=history[2],
    )


def _section39_fields(
    reg: Registration, *, today: date, policy: S39Policy
) -> tuple[int | None, date | None, date | None]:
    """Months of Section 33 contributions, the last day of that employment, the application
    date: what a Section 39 registration stores (none for Section 40). An application date
    set back further than the policy allows needs an officer's override."""
    if reg.section != 39:
        given = (
            ("section33", reg.section33),
            ("appliedOn", reg.applied_on),
            ("eligibilityOverride", reg.override_reason),
        )
        for name, value in given:
            if value is not None:
                raise InvalidInput(f"{name} is for a Section 39 registration.", field=name)
        return None, None, None
    applied = reg.applied_on or today
    if applied > today:
        raise InvalidInput("appliedOn is in the future.", field="appliedOn")
    if backdated(applied, today=today, policy=policy) and override_reason(reg) is None:
        earliest = earliest_application_date(today, policy)
        raise ApplicationBackdated(
            f"appliedOn {applied.isoformat()} is before {earliest.isoformat()}: the application"
            f" date may lie at most {policy.application_backdate_days} days before the day of"
            " the registration, unless an SSO officer records an override with a reason.",
            field="appliedOn",
            applied_on=applied.isoformat(),
            registered_on=today.isoformat(),
            earliest_applied_on=earliest.isoformat(),
            backdate_days=policy.application_backdate_days,
        )
    history = reg.section33
    if history is None:
        return None, None, applied
    return history.months_contributed, history.employment_ended_on, applied


def backdated(applied_on: date, *, today: date, policy: S39Policy) -> bool:
    """Whether an application date needs an officer's override to be set back so far."""
    return applied_on < earliest_application_date(today, policy)


def override_reason(reg: Registration) -> str | None:
    """The officer's reason for admitting outside the Section 39 rule, trimmed (None: none)."""
    return optional_text(reg.override_reason, field="eligibilityOverride.reason", limit=MAX_REASON)


def ensure_may_register_again(person: InsuredPerson, current: Standing, new: NewInsured) -> Month:
    """The month the person's latest membership ended, if a new one may follow it now; else
    AlreadyExists (it is still open) or InvalidInput (the new one would begin before it ended)."""
    if current.status != TERMINATED:
        raise AlreadyExists(
            f"This person holds an open Section {person.section} membership ({current.status});"
            " a new one may be registered once it has ended.",
            field="nationalId",
            section=person.section,
            status=current.status,
        )
    ended = current.ended_month or Month.of(new.effective_date)
    if Month.of(new.effective_date) < ended:
        raise InvalidInput(
            f"effectiveDate is before {ended}, the month the previous membership ended.",
            field="effectiveDate",
            ended_month=str(ended),
        )
    return ended


def closing_of(
    person: InsuredPerson, current: Standing, ended: Month, *, today: date, by: str
) -> ClosedMembership:
    """The person's latest membership as it is kept once a new one replaces it."""
    return ClosedMembership(
        national_id=person.national_id,
        section=person.section,
        option=person.option,
        coverage_start=person.effective_date,
        ended_month=ended,
        end_reason=reason_code(TERMINATED, current.reason),  # a code (app.domain.standing)
        s33_months=person.s33_months,
        s33_employment_ended_on=person.s33_employment_ended_on,
        s39_applied_on=person.s39_applied_on,
        s39_eligibility=person.s39_eligibility,
        closed_on=today,
        closed_by=by,
    )
