"""The published catalogue of error codes: what each code means, whether the same request may
succeed later, and the message in Thai for the person at the counter.

The codes are those of ``app/errors/``; this module adds the Thai words (one fixed message a
code, in plain Thai a cashier can act on: what happened and what to do) and lists every code
once, for the contracts. ``wsdl/contribution.xsd`` (the ErrorCode enumeration, with an English
and a Thai ``xs:documentation`` per code) and the OpenAPI Problem schema (``code``'s enum) publish
exactly this list; ``tests/contract/test_error_codes.py`` keeps the three the same, so a code
cannot be added without publishing it.

A code's Thai message never changes with the request. What a particular refusal is about, when
it turns on a date (the month a membership ended, the last day to apply for Section 39, the
business day of a payment), is told in Thai by ``thai_detail`` (``detailTh`` in a REST problem
and a SOAP GatewayFault), with the dates in the Buddhist Era (พ.ศ.); the error's details keep the
ISO dates for programs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Final

from app.domain.calendar import thai_date_long, thai_datetime, thai_month
from app.domain.months import Month
from app.errors import ClientError, ServiceError, all_error_classes

_ASK_ADMIN: Final = "กรุณาแจ้งผู้ดูแลระบบ"

#: Each code's message in Thai (language tag ``th``).
THAI: Final[Mapping[str, str]] = MappingProxyType(
    {
        # --- the request -------------------------------------------------------------------
        "client.bad_request": f"ระบบอ่านคำขอที่ส่งมาไม่ได้ {_ASK_ADMIN}",
        "client.invalid_input": "ข้อมูลในคำขอไม่ถูกต้อง กรุณาตรวจสอบแล้วทำรายการใหม่",
        "client.invalid_national_id": "เลขประจำตัวประชาชนไม่ถูกต้อง กรุณาตรวจสอบเลข 13 หลักอีกครั้ง",
        "client.invalid_month": "เดือนที่ขอชำระไม่ถูกต้อง กรุณาตรวจสอบเดือนที่เลือก",
        "client.invalid_amount": "จำนวนเงินไม่ถูกต้อง กรุณาตรวจสอบจำนวนเงิน",
        "client.invalid_envelope": f"ระบบรับชำระส่งข้อความในรูปแบบที่ไม่ถูกต้อง {_ASK_ADMIN}",
        "client.invalid_settlement_file": "ไฟล์สรุปรายการรับชำระประจำวันไม่ถูกต้อง",
        "client.invalid_extract": "ไฟล์ข้อมูลผู้ประกันตนจากระบบต้นทางไม่ถูกต้อง",
        "client.application_backdated": (
            "วันที่สมัครมาตรา 39 ย้อนหลังจากวันที่บันทึกการสมัครเกินกว่าที่กำหนด"
            " ต้องให้เจ้าหน้าที่ สปส. บันทึกการยกเว้นพร้อมเหตุผล"
        ),
        "client.business_date_mismatch": (
            "วันทำการที่ส่งมาไม่ตรงกับวันทำการที่ระบบกำหนด กรุณาตรวจสอบวันที่ของเครื่องแล้วทำรายการใหม่"
        ),
        "client.paid_at_out_of_window": (
            "เวลารับเงินห่างจากเวลาของระบบมากเกินไป กรุณาตรวจสอบนาฬิกาของเครื่อง"
            " หากรับเงินไว้นานกว่า 5 นาที ให้ส่งรายการด้วยเวลาปัจจุบัน"
        ),
        # --- not found ---------------------------------------------------------------------
        "client.not_found": "ไม่พบข้อมูลที่ต้องการ",
        "client.person_not_found": "ไม่พบข้อมูลผู้ประกันตนตามเลขประจำตัวประชาชนนี้",
        "client.transaction_not_found": "ไม่พบรายการชำระเงินตามเลขที่รายการนี้",
        "client.unknown_operation": f"ระบบไม่รู้จักรายการที่ขอ {_ASK_ADMIN}",
        "client.method_not_allowed": f"เรียกใช้งานด้วยวิธีนี้ไม่ได้ {_ASK_ADMIN}",
        # --- conflicts ---------------------------------------------------------------------
        "client.conflict": "รายการนี้ขัดกับข้อมูลปัจจุบันในระบบ",
        "client.already_paid": "มีเดือนที่ชำระเงินสมทบแล้ว กรุณาสอบถามยอดใหม่ก่อนรับเงิน",
        "client.duplicate_transaction": (
            "เลขที่รายการนี้ถูกใช้กับรายการชำระอื่นแล้ว กรุณาตรวจสอบสถานะรายการก่อนทำรายการใหม่"
        ),
        "client.already_exists": "ข้อมูลนี้มีอยู่ในระบบแล้ว",
        "client.status_contradicts_rules": (
            "เปลี่ยนสถานะตามที่ขอไม่ได้ เพราะขัดกับเงื่อนไขของมาตราและประวัติที่บันทึกไว้"
        ),
        # --- the contribution rules ----------------------------------------------------------
        "client.refused": "รายการนี้ไม่เป็นไปตามเงื่อนไขการชำระเงินสมทบ",
        "client.month_not_payable": "ไม่สามารถชำระเงินสมทบของเดือนที่เลือกได้ในวันนี้",
        "client.months_not_contiguous": "ต้องชำระเรียงตามเดือน เริ่มจากเดือนที่ค้างชำระเก่าที่สุด",
        "client.amount_mismatch": "จำนวนเงินไม่ตรงกับยอดที่ต้องชำระ กรุณาสอบถามยอดใหม่",
        "client.over_ceiling": "จำนวนเงินเกินวงเงินสูงสุดที่รับได้ต่อหนึ่งรายการ",
        "client.savings_not_allowed": "ผู้ประกันตนรายนี้ออมเงินเพิ่มไม่ได้ หรือเงินออมเพิ่มเกินที่กำหนด",
        "client.member_terminated": "สิ้นสภาพความเป็นผู้ประกันตนแล้ว รับชำระเงินสมทบไม่ได้",
        "client.member_inactive": "สถานะผู้ประกันตนไม่ปกติ รับชำระเงินสมทบไม่ได้",
        "client.section_mismatch": "ผู้ประกันตนไม่ได้อยู่ในมาตราที่เลือก กรุณาตรวจสอบมาตรา 39 หรือ 40",
        "client.no_rate": "ยังไม่มีอัตราเงินสมทบของเดือนนี้ รับชำระไม่ได้",
        "client.option_change_refused": "เปลี่ยนทางเลือกการจ่ายเงินสมทบมาตรา 40 ไม่ได้ในขณะนี้",
        "client.s39_not_eligible": (
            "ไม่มีสิทธิสมัครเป็นผู้ประกันตนมาตรา 39 (ต้องจ่ายเงินสมทบมาตรา 33 ไม่น้อยกว่า 12 เดือน"
            " และสมัครภายใน 6 เดือนนับแต่วันที่ออกจากงาน)"
        ),
        "client.cancel_not_allowed": "ยกเลิกรายการนี้ที่เคาน์เตอร์ไม่ได้",
        "client.transaction_cancelled": "รายการชำระเงินนี้ถูกยกเลิกแล้ว",
        # --- access ------------------------------------------------------------------------
        "client.access_refused": "ไม่ได้รับอนุญาตให้ทำรายการนี้",
        "client.unauthenticated": f"ระบบรับชำระยืนยันตัวตนไม่สำเร็จ {_ASK_ADMIN}",
        "client.clock_skew": (
            "เวลาของเครื่องรับชำระไม่ตรงกับเวลาของระบบ กรุณาตั้งเวลาเครื่องให้ถูกต้องแล้วทำรายการใหม่"
        ),
        "client.operation_not_allowed": "หน่วยรับชำระนี้ไม่ได้รับอนุญาตให้ทำรายการประเภทนี้",
        "client.partner_disabled": f"ผู้ใช้งานนี้ถูกระงับการใช้งาน {_ASK_ADMIN}",
        "client.scope_not_allowed": "ผู้ใช้งานนี้ไม่มีสิทธิ์ทำรายการนี้",
        "client.rate_limited": "ทำรายการถี่เกินไป กรุณารอสักครู่แล้วลองใหม่",
        "client.headers_too_large": f"ส่วนหัวของคำขอมีขนาดใหญ่เกินกำหนด {_ASK_ADMIN}",
        "client.payload_too_large": f"ข้อมูลที่ส่งมามีขนาดใหญ่เกินกำหนด {_ASK_ADMIN}",
        # --- the gateway -------------------------------------------------------------------
        "server.internal": f"ระบบขัดข้อง ทำรายการไม่สำเร็จ {_ASK_ADMIN}",
        "server.store_unavailable": "ฐานข้อมูลขัดข้องชั่วคราว กรุณาลองทำรายการเดิมอีกครั้งภายหลัง",
        "server.read_only_store": f"ระบบขัดข้อง บันทึกข้อมูลไม่ได้ {_ASK_ADMIN}",
        "server.audit_unavailable": "ระบบขัดข้อง รายการนี้ยังไม่ได้บันทึก กรุณาลองทำรายการเดิมอีกครั้งภายหลัง",
        "server.rate_added_unlisted": "เพิ่มอัตราเงินสมทบแล้ว แต่บันทึกการเข้าถึงไม่ได้ จึงไม่แสดงรายชื่อผู้ที่ชำระเกิน"
        f" ห้ามเพิ่มอัตรานี้ซ้ำ {_ASK_ADMIN}",
        "server.overloaded": "ระบบมีผู้ใช้งานมาก กรุณาลองทำรายการเดิมอีกครั้งภายหลัง",
        "server.shutting_down": "ระบบกำลังหยุดให้บริการชั่วคราว กรุณาลองทำรายการเดิมอีกครั้ง",
    }
)
_FALLBACK: Final = {True: THAI["client.bad_request"], False: THAI["server.internal"]}


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """One published code: its meaning in English, its message in Thai, whether to retry."""

    code: str
    meaning: str
    message_th: str
    retryable: bool
    http_status: int

    @property
    def documentation(self) -> str:
        """The English documentation the contracts give the code."""
        return f"{self.meaning} {'Retryable.' if self.retryable else 'Not retryable.'}"


def thai_message(error: ServiceError) -> str:
    """The Thai message of ``error``'s code."""
    # Every code has one (the contract tests say so); a subclass made without one still answers.
    return THAI.get(error.code) or _FALLBACK[isinstance(error, ClientError)]


def catalogue() -> list[CodeEntry]:
    """Every code of the vocabulary once, in code order."""
    entries: dict[str, CodeEntry] = {}
    for cls in all_error_classes():
        if cls.code not in entries:
            entries[cls.code] = CodeEntry(
                code=cls.code,
                meaning=cls.default_message,
                message_th=THAI.get(cls.code, ""),
                retryable=cls.retryable,
                http_status=cls.http_status,
            )
    return sorted(entries.values(), key=lambda entry: entry.code)


def codes() -> list[str]:
    """Every code of the vocabulary, in order."""
    return [entry.code for entry in catalogue()]


# --- what one refusal is about, in Thai, with Buddhist-era dates ---------------------------------
def _day(value: Any) -> str | None:
    try:
        return thai_date_long(date.fromisoformat(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _month(value: Any) -> str | None:
    try:
        return thai_month(Month.parse(value)) if isinstance(value, str) else None
    except ServiceError:
        return None


def _instant(value: Any) -> str | None:
    try:
        return thai_datetime(datetime.fromisoformat(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _terminated(d: Mapping[str, Any]) -> list[str | None]:
    month = _month(d.get("ended_month"))
    return [month and f"สิ้นสภาพตั้งแต่เดือน{month}"]


def _s39(d: Mapping[str, Any]) -> list[str | None]:
    reasons = d.get("reasons") or [d.get("reason")]
    parts: list[str | None] = []
    if "too_few_s33_months" in reasons:
        parts.append(
            f"จ่ายเงินสมทบมาตรา 33 มาแล้ว {d.get('months_contributed')} เดือน"
            f" ต้องไม่น้อยกว่า {d.get('minimum_months')} เดือน"
        )
    ended, deadline, applied = (_day(d.get(k)) for k in ("employment_ended_on", "deadline",
                                                          "applied_on"))  # fmt: skip
    if "applied_too_late" in reasons and ended and deadline and applied:
        parts.append(f"ออกจากงานเมื่อ {ended} ต้องสมัครภายใน {deadline} แต่สมัครเมื่อ {applied}")
    previous = _month(d.get("previous_ended_month"))
    if "reentry_needs_section33" in reasons and previous:
        parts.append(
            f"เคยสิ้นสภาพผู้ประกันตนมาตรา 39 ตั้งแต่เดือน{previous}"
            " จะกลับเข้ามาตรา 39 ได้ต้องเป็นผู้ประกันตนมาตรา 33 อีกครั้งก่อน"
        )
    return parts


def _backdated(d: Mapping[str, Any]) -> list[str | None]:
    applied, registered, earliest = (_day(d.get(k)) for k in ("applied_on", "registered_on",
                                                              "earliest_applied_on"))  # fmt: skip
    return [applied and registered and earliest
            and f"สมัครเมื่อ {applied} บันทึกการสมัครเมื่อ {registered}"
                f" วันที่สมัครต้องไม่ก่อน {earliest}"]  # fmt: skip


def _contradicts(d: Mapping[str, Any]) -> list[str | None]:
    month = _month(d.get("ended_month"))
    if d.get("derived_status") == "terminated" and month:
        return [f"ตามเงื่อนไขและประวัติที่บันทึกไว้ สิ้นสภาพตั้งแต่เดือน{month}"]
    return []


def _option(d: Mapping[str, Any]) -> list[str | None]:
    last, following = _day(d.get("last_change")), _day(d.get("next_change_on"))
    return [last and f"เปลี่ยนทางเลือกครั้งล่าสุดเมื่อ {last}",
            following and f"เปลี่ยนได้อีกครั้งตั้งแต่ {following}"]  # fmt: skip


def _business_day(d: Mapping[str, Any]) -> list[str | None]:
    day = _day(d.get("business_date"))
    return [day and f"วันทำการของรายการนี้คือ {day}"]


def _cancel(d: Mapping[str, Any]) -> list[str | None]:
    later = d.get("later_receipt_no")
    if d.get("reason") == "later_payment" and isinstance(later, str):
        return [f"ต้องยกเลิกใบเสร็จเลขที่ {later} ซึ่งชำระเดือนถัดไปก่อน"]
    day, closed = _day(d.get("business_date")), _instant(d.get("cutoff_at"))
    return [day and closed and f"วันทำการ {day} ปิดรับยกเลิกเมื่อ {closed}"]


def _conflict(d: Mapping[str, Any]) -> list[str | None]:
    month = _month(d.get("ended_month"))
    return [month and f"สิ้นสภาพไปแล้วตั้งแต่เดือน{month}"]


_DETAILS: Final[Mapping[str, Callable[[Mapping[str, Any]], list[str | None]]]] = {
    "client.member_terminated": _terminated,
    "client.s39_not_eligible": _s39,
    "client.application_backdated": _backdated,
    "client.status_contradicts_rules": _contradicts,
    "client.option_change_refused": _option,
    "client.business_date_mismatch": _business_day,
    "client.cancel_not_allowed": _cancel,
    "client.conflict": _conflict,
}


def thai_detail(error: ServiceError) -> str | None:
    """What this refusal is about, in Thai with Buddhist-era dates; None when its code says all."""
    build = _DETAILS.get(error.code)
    parts = [part for part in build(error.details) if part] if build else []
    return " ".join(parts) or None
