"""The membership statement: a printable page of a person's memberships, in Thai with English.

What an SSO officer prints for the insured person: the membership they hold now (section,
status, coverage start, Section 39 eligibility), the memberships that ended before it, the
events that changed its status, and the latest payments with their receipt numbers. People read
it, so every date is in the Buddhist Era (พ.ศ.) with Thai month names, with the ISO date below
in the English line; receipt numbers are printed as issued. The Jinja2 template is
``templates/membership_statement.html``; values are autoescaped and stripped of bidirectional
controls, as the access report's are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Final

import jinja2
from markupsafe import Markup

from app.domain.calendar import thai_date_long, thai_datetime, thai_month
from app.domain.money import format_baht
from app.domain.months import Month
from app.domain.national_id import mask_national_id
from app.domain.section39 import s39_application_deadline
from app.insured.records import InsuredDetail

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
_BIDI: Final = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")

STATUS_TH: Final = {
    "active": "ปกติ (อยู่ในความคุ้มครอง)",
    "terminated": "สิ้นสภาพ",
    "inactive": "ระงับชั่วคราว",
}
REASON_TH: Final = {
    "three_consecutive_unpaid": "ไม่ชำระเงินสมทบ 3 เดือนติดต่อกัน",
    "fewer_than_9_of_12": "ชำระเงินสมทบไม่ถึง 9 เดือนในระยะเวลา 12 เดือน",
    "section33_employment": "กลับเข้าทำงานเป็นผู้ประกันตนมาตรา 33",
    "terminated_by_sso": "สำนักงานประกันสังคมบันทึกการสิ้นสภาพ",
    "suspended_by_sso": "สำนักงานประกันสังคมบันทึกการระงับสถานะ",
}
EVENT_TH: Final = {
    "terminated": "เจ้าหน้าที่บันทึกการสิ้นสภาพ",
    "suspended": "เจ้าหน้าที่บันทึกการระงับ",
    "reinstated": "เจ้าหน้าที่คืนสถานะ",
    "section33_employment": "กลับเข้าทำงานตามมาตรา 33",
    "eligibility_override": "เจ้าหน้าที่อนุมัติการสมัครมาตรา 39 เป็นกรณีพิเศษ",
}
ELIGIBILITY_TH: Final = {
    "eligible": "มีคุณสมบัติครบตามเงื่อนไข",
    "override": "เจ้าหน้าที่อนุมัติเป็นกรณีพิเศษ",
}


@dataclass(frozen=True, slots=True)
class When:
    """A date as people read it (Buddhist Era) and as machines do (ISO)."""

    th: str
    iso: str


def _day(value: date | None) -> When | None:
    return None if value is None else When(thai_date_long(value), value.isoformat())


def _month(value: Month | None) -> When | None:
    return None if value is None else When(thai_month(value), str(value))


def _clean(value: object) -> object:
    if isinstance(value, Markup):  # already escaped: only characters are taken out
        return Markup(_BIDI.sub("\ufffd", str(value)))  # noqa: S704
    if isinstance(value, str):
        return _BIDI.sub("\ufffd", value)
    return value


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_clean,
    )


def membership_statement_html(detail: InsuredDetail) -> str:
    """The printable statement of ``detail`` (its person with the status they are in)."""
    person = detail.person
    deadline = (
        s39_application_deadline(person.s33_employment_ended_on)
        if person.s33_employment_ended_on is not None
        else None
    )
    return (
        _templates()
        .get_template("membership_statement.html")
        .render(
            person=person,
            masked_id=mask_national_id(person.national_id),
            status_th=STATUS_TH.get(person.status, person.status),
            reason_th=REASON_TH.get(person.status_reason or "", person.status_reason),
            effective=_day(person.effective_date),
            ended=_month(person.ended_month),
            rules_from=_month(person.rules_from),
            s33_ended=_day(person.s33_employment_ended_on),
            apply_by=_day(deadline),
            applied=_day(person.s39_applied_on),
            eligibility_th=ELIGIBILITY_TH.get(person.s39_eligibility or ""),
            previous=[
                {
                    "membership": m,
                    "start": _day(m.coverage_start),
                    "ended": _month(m.ended_month),
                    "reason_th": REASON_TH.get(m.end_reason or "", m.end_reason),
                }
                for m in detail.previous
            ],
            events=[
                {
                    "event": e,
                    "on": _day(e.recorded_on),
                    "kind_th": EVENT_TH.get(e.kind, e.kind),
                    "month": _month(e.ended_month or e.rules_from),
                }
                for e in detail.events
            ],
            payments=[
                {
                    "payment": p,
                    "on": _day(p.business_date),
                    "months": [When(thai_month(m), str(m)) for m in p.months],
                    "amount": format_baht(p.amount_satang),
                }
                for p in detail.payments[:24]
            ],
            as_of=When(thai_datetime(detail.meta.as_of), _iso(detail.meta.as_of)),
        )
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
