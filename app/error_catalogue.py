"""The published catalogue of error codes: what each code means, whether the same request may
succeed later, and the message in Thai for the person at the counter.

The codes are those of ``app/errors/``; this module adds the Thai words (one fixed message a
code, in plain Thai a cashier can act on: what happened and what to do) and lists every code
once, for the contracts. ``wsdl/contribution.xsd`` (the ErrorCode enumeration, with an English
and a Thai ``xs:documentation`` per code) and the OpenAPI Problem schema (``code``'s enum) publish
exactly this list; ``tests/contract/test_error_codes.py`` keeps the three the same, so a code
cannot be added without publishing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

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
        "client.cancel_not_allowed": "เลยเวลาที่ยกเลิกรายการที่เคาน์เตอร์ได้แล้ว",
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
