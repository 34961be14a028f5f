"""The inquiry answer of the counter: the person, their standing and the payable months.

A field that may be unknown, and each section's own fields from the source system, are left out
of the answer when they have no value (as ``minOccurs="0"`` elements are in the SOAP answer):
absent, never a zero or an empty string standing in for what is not known.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Final, Literal

import orjson
from pydantic import ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from app.counter.records import EndedMembership, InquiryResult, PayableMonth
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

#: The None of a field that is absent when it has no value: the spec shows the field as
#: optional, never as nullable.
Absent = SkipJsonSchema[None]


def _is_none(value: object) -> bool:
    return value is None


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # not sent at all, rather than sent as null


def _baht_or_none(satang: int | None) -> str | None:
    return None if satang is None else baht(satang)


def absent_when_none(description: str, example: object) -> Any:
    """A field that is left out of the answer when it is None (not nullable: absent)."""
    return Field(
        default=None,
        exclude_if=_is_none,
        description=description,
        examples=[example],
        json_schema_extra=_no_default,
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
                }
            ]
        }
    )

    month: MonthText
    amount: Baht = Field(description="What the insured pays for this month.")
    due_date: date | None = Field(description="Section 39: the last day to pay on time.")
    overdue: bool = Field(description="Past its due date but still payable.")
    government_amount: Baht | Absent = absent_when_none(
        "The government's share (information only); absent when not known (Section 39).", "50.00"
    )

    @classmethod
    def of(cls, m: PayableMonth) -> PayableMonthOut:
        return cls(
            month=m.month,
            amount=baht(m.amount_satang),
            due_date=m.due_date,
            overdue=m.overdue,
            government_amount=_baht_or_none(m.government_satang),
        )


class EndedMembershipOut(OutModel):
    """A membership of the person that ended before the one the answer is for."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "section": 39,
                    "coverageStart": "2019-03-01",
                    "endedMonth": "2024-02",
                    "endReason": "three_consecutive_unpaid",
                }
            ]
        }
    )

    section: SectionOut
    coverage_start: date = Field(description="The day cover under that membership began.")
    ended_month: MonthText = Field(description="The first month it no longer covered.")
    end_reason: str | Absent = absent_when_none(
        "Why it ended, when known, as a code: three_consecutive_unpaid, fewer_than_9_of_12,"
        " section33_employment (back to employment under Section 33), or terminated_by_sso"
        " (SSO recorded it); never free text. Treat a code you do not know like"
        " terminated_by_sso.",
        "three_consecutive_unpaid",
    )
    option: int | Absent = absent_when_none("Section 40: the option held when it ended.", 2)

    @classmethod
    def of(cls, m: EndedMembership) -> EndedMembershipOut:
        return cls(
            section=m.section,
            coverage_start=m.coverage_start,
            ended_month=m.ended_month,
            end_reason=m.end_reason,
            option=m.option,
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
                    "familyName": "ใจดี",
                    "section": 40,
                    "status": "active",
                    "statusReason": None,
                    "endedMonth": None,
                    "option": 2,
                    "paymentPeriod": "202405",
                    "paymentMethod": "counter",
                    "lastPaymentDate": "2024-05-20",
                    "lastPaymentAmount": "100.00",
                    "amountDue": "100.00",
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
    family_name: str
    section: SectionOut
    status: MemberStatus
    status_reason: str | None = Field(
        description="Why the membership ended or was suspended, as a code (null while it is"
        " active, or when no reason is known); never free text: three_consecutive_unpaid and"
        " fewer_than_9_of_12 (the Section 39 rules), section33_employment (back to employment"
        " under Section 33), terminated_by_sso and suspended_by_sso (SSO recorded the"
        " termination or suspension; the person asks SSO why). Treat a code you do not know"
        " like terminated_by_sso."
    )
    ended_month: MonthText | None = Field(description="The first month no longer covered.")
    option: int | None = Field(description="Section 40 option 1, 2 or 3.")
    effective_date: date | Absent = absent_when_none(
        "Section 39 only: the effective date, when cover under Section 39 began.", "2019-03-01"
    )
    return_code: str | Absent = absent_when_none(
        "Section 39 only: the source system's return code; absent when it has none.", "00"
    )
    payment_period: str | Absent = absent_when_none(
        "As the source system gives it. Section 39: the period of payment (such as monthly);"
        " Section 40: the payment period of the last payment (such as 202406).",
        "202405",
    )
    payment_method: str | Absent = absent_when_none(
        "Section 40 only: the method of payment (such as counter or bank).", "counter"
    )
    last_payment_date: date | Absent = absent_when_none(
        "Section 40 only: the date of the last payment the source system recorded.", "2024-05-20"
    )
    last_payment_amount: Baht | Absent = absent_when_none(
        "Section 40 only: the amount of that last payment.", "100.00"
    )
    amount_due: Baht | Absent = absent_when_none(
        "Section 40 only: the monthly contribution for the current month at the option in"
        " force, from the rate table, whether or not that month is paid (what may be paid"
        " today is in `months`).",
        "100.00",
    )
    months: list[PayableMonthOut]
    default_months: list[MonthText] = Field(description="The months a counter offers first.")
    default_total: Baht
    savings_allowed: bool = Field(description="Additional savings may be paid (S40 options 2, 3).")
    max_savings_per_month: Baht
    as_of: datetime = Field(description="The data read is at least this fresh.")
    served_by: ReadPathName
    eligibility: Literal["eligible", "override"] | Absent = absent_when_none(
        "Section 39 only: how the member was admitted: `eligible` (12 months of Section 33"
        " contributions, applied within 6 months of leaving work) or `override` (by an SSO"
        " officer, with a reason SSO keeps); absent when none was recorded.",
        "eligible",
    )
    previous_memberships: list[EndedMembershipOut] | Absent = absent_when_none(
        "What ended before: the person's earlier memberships, newest first (such as a Section"
        " 39 membership before the Section 40 one this answer is for); absent when none.",
        [
            {
                "section": 39,
                "coverageStart": "2019-03-01",
                "endedMonth": "2024-02",
                "endReason": "three_consecutive_unpaid",
            }
        ],
    )

    @classmethod
    def of(cls, r: InquiryResult) -> InquiryOut:
        return cls(
            national_id=r.national_id,
            title=r.title,
            first_name=r.first_name,
            family_name=r.family_name,
            section=r.section,
            status=r.status,
            status_reason=r.status_reason,
            ended_month=r.ended_month,
            option=r.option,
            effective_date=r.effective_date,
            return_code=r.return_code,
            payment_period=r.payment_period,
            payment_method=r.payment_method,
            last_payment_date=r.last_payment_date,
            last_payment_amount=_baht_or_none(r.last_payment_satang),
            amount_due=_baht_or_none(r.amount_due_satang),
            months=[PayableMonthOut.of(m) for m in r.months],
            default_months=list(r.default_months),
            default_total=baht(r.default_total_satang),
            savings_allowed=r.savings_allowed,
            max_savings_per_month=baht(r.max_savings_per_month_satang),
            as_of=r.as_of,
            served_by=r.served_by.value,
            eligibility=r.eligibility,
            previous_memberships=[EndedMembershipOut.of(m) for m in r.previous_memberships] or None,
        )


# --- the answer written by hand ---------------------------------------------------------------
# The hot route (``PlainInquiry``) writes the answer without building the models: the same
# JSON, byte for byte, as ``InquiryOut.of(result)`` serialised by alias (a property test
# holds the two together: tests/unit/counter/test_inquiry_json.py). orjson writes what the
# models' serialiser writes for these values (strings, whole numbers, booleans, null, lists):
# compact, UTF-8 unescaped. A 17-field answer with a Thai name took 9.5 µs through the
# standard library's C encoder and its UTF-8 encoding, 0.56 µs this way (bench/RESULTS.md,
# session 22). No value here is a float. orjson refuses an integer past 64 bits, which the
# models write (a section and an option are plain ``int`` there): such an answer, and any
# other orjson refuses, the standard library writes, as before (a lone surrogate, which the
# models refuse too, still raises).
_std_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _dumps(value: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _std_dumps(value).encode()


def _instant(value: datetime) -> str:
    # As pydantic writes an aware datetime: ISO 8601, "Z" for a zero offset.
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@lru_cache(maxsize=4096)  # every inquiry offers the same dozen months at the same amounts
def _month_json(m: PayableMonth) -> bytes:
    return _dumps(_month_fields(m))


# The months written out, by the identity of the service's tuple of them: the service hands
# every inquiry of the same offer the same tuple (app.counter.service), so this finds it
# without hashing a dozen months. Each entry holds its tuple, so an id is not reused while
# its entry stands.
_MONTHS_WRITTEN: dict[int, tuple[tuple[PayableMonth, ...], bytes]] = {}
_MAX_MONTHS_WRITTEN: Final = 4096


def _months_json(months: tuple[PayableMonth, ...]) -> bytes:
    """``months`` as the ``"months"`` member of a JSON object, UTF-8, with a leading comma."""
    known = _MONTHS_WRITTEN.get(id(months))
    if known is not None and known[0] is months:
        return known[1]
    written = b',"months":[%b]' % b",".join([_month_json(m) for m in months])
    if len(_MONTHS_WRITTEN) >= _MAX_MONTHS_WRITTEN:
        _MONTHS_WRITTEN.clear()
    _MONTHS_WRITTEN[id(months)] = (months, written)
    return written


def _month_fields(m: PayableMonth) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "month": m.month,
        "amount": baht(m.amount_satang),
        "dueDate": None if m.due_date is None else m.due_date.isoformat(),
        "overdue": m.overdue,
    }
    if m.government_satang is not None:
        fields["governmentAmount"] = baht(m.government_satang)
    return fields


def _ended_fields(m: EndedMembership) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "section": m.section,
        "coverageStart": m.coverage_start.isoformat(),
        "endedMonth": m.ended_month,
    }
    if m.end_reason is not None:
        fields["endReason"] = m.end_reason
    if m.option is not None:
        fields["option"] = m.option
    return fields


def inquiry_json(r: InquiryResult) -> bytes:
    """``InquiryOut.of(r)`` as JSON (by alias), written without the models."""
    fields: dict[str, Any] = {
        "nationalId": r.national_id,
        "title": r.title,
        "firstName": r.first_name,
        "familyName": r.family_name,
        "section": r.section,
        "status": r.status,
        "statusReason": r.status_reason,
        "endedMonth": r.ended_month,
        "option": r.option,
    }
    if r.effective_date is not None:
        fields["effectiveDate"] = r.effective_date.isoformat()
    if r.return_code is not None:
        fields["returnCode"] = r.return_code
    if r.payment_period is not None:
        fields["paymentPeriod"] = r.payment_period
    if r.payment_method is not None:
        fields["paymentMethod"] = r.payment_method
    if r.last_payment_date is not None:
        fields["lastPaymentDate"] = r.last_payment_date.isoformat()
    if r.last_payment_satang is not None:
        fields["lastPaymentAmount"] = baht(r.last_payment_satang)
    if r.amount_due_satang is not None:
        fields["amountDue"] = baht(r.amount_due_satang)
    fields["defaultMonths"] = list(r.default_months)
    fields["defaultTotal"] = baht(r.default_total_satang)
    fields["savingsAllowed"] = r.savings_allowed
    fields["maxSavingsPerMonth"] = baht(r.max_savings_per_month_satang)
    fields["asOf"] = _instant(r.as_of)
    fields["servedBy"] = r.served_by.value
    if r.eligibility is not None:
        fields["eligibility"] = r.eligibility
    if r.previous_memberships:
        fields["previousMemberships"] = [_ended_fields(m) for m in r.previous_memberships]
    # The months are spliced in as JSON already written, before "defaultMonths": the first
    # such key in the text is the key (inside a JSON string a quote is always escaped). As
    # bytes: the months, ASCII, never widened to the width of a Thai name's text.
    text = _dumps(fields)
    cut = text.index(b',"defaultMonths":')
    return b"".join((text[:cut], _months_json(r.months), text[cut:]))
