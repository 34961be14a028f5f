"""Plain words for the access report, in Thai and English: operations, purposes, data, outcomes.

Pure and table-driven: an audit record's operation, principal kind and outcome become the words
an insured person reads. An operation not listed here is shown by its own name, so a new use
case never disappears from a report; it only reads less well until it is given words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from app.domain import calendar
from app.domain import national_id as national_id_rules
from app.domain.calendar import BANGKOK


@dataclass(frozen=True, slots=True)
class Words:
    """The same thing said in Thai and in English."""

    th: str
    en: str


# --- what was disclosed ----------------------------------------------------------------------
NAME: Final = Words("ชื่อ-นามสกุล", "name")
SECTION: Final = Words("มาตราที่ประกันตน", "section")
STATUS: Final = Words("สถานะผู้ประกันตน", "status")
OPTION: Final = Words("ทางเลือกมาตรา 40", "Section 40 option")
PAYABLE: Final = Words("เดือนที่ชำระได้และยอดเงิน", "payable months and amounts")
RECEIPT: Final = Words("เลขที่ใบเสร็จ", "receipt number")
MONTHS_PAID: Final = Words("เดือนที่ชำระ", "months paid")
AMOUNT_PAID: Final = Words("จำนวนเงินที่ชำระ", "amount paid")
PAYMENT_STATE: Final = Words("สถานะการชำระเงิน", "payment status")
CANCELLED_AT: Final = Words("เวลาที่ยกเลิก", "cancellation time")
REGISTRATION: Final = Words("ข้อมูลการขึ้นทะเบียน", "registration details")
HISTORY: Final = Words("ประวัติการชำระเงิน", "payment history")
REFUND: Final = Words("ยอดเงินที่ต้องคืน", "amount to refund")
MEMBERSHIPS: Final = Words("ประวัติการเป็นผู้ประกันตน", "membership history")
ACCESSES: Final = Words("ประวัติการเข้าถึงข้อมูล", "access records")
COMPLAINT: Final = Words("ข้อมูลเรื่องร้องเรียน", "complaint case")
NOTHING: Final = Words("ไม่มีการเปิดเผยข้อมูล", "nothing disclosed")
NATIONAL_ID: Final = Words("เลขประจำตัวประชาชน", "national ID")
AMOUNT_DUE: Final = Words("ยอดเงินสมทบต่อเดือน", "monthly contribution due")
# The partner feed's fields (app/feed: FIELDS), as a feed that included the person showed them.
FEED_FIELDS: Final[dict[str, Words]] = {
    "national_id": NATIONAL_ID, "title": NAME, "first_name": NAME, "last_name": NAME,
    "section": SECTION, "status": STATUS, "amount_due": AMOUNT_DUE,
}  # fmt: skip

OPERATIONS: Final[dict[str, Words]] = {
    "InquireContribution": Words("สอบถามยอดเงินสมทบ", "Contribution inquiry"),
    "ConfirmPayment": Words("ชำระเงินสมทบ", "Contribution payment"),
    "CancelPayment": Words("ยกเลิกการชำระเงินสมทบ", "Payment cancellation"),
    "GetPaymentStatus": Words("ตรวจสอบสถานะการชำระเงิน", "Payment status check"),
    "ListInsured": Words("แสดงรายชื่อผู้ประกันตน", "Insured-person listing"),
    "GetInsured": Words("เรียกดูข้อมูลผู้ประกันตน", "Insured-person record viewed"),
    "CreateInsured": Words("ขึ้นทะเบียนผู้ประกันตน", "Registration"),
    "SetInsuredStatus": Words("เปลี่ยนสถานะผู้ประกันตน", "Status change"),
    "ChangeInsuredOption": Words("เปลี่ยนทางเลือกมาตรา 40", "Section 40 option change"),
    "EndBySection33": Words(
        "บันทึกการกลับเข้าทำงานตามมาตรา 33", "Return to Section 33 employment recorded"
    ),
    "PrintInsuredStatement": Words(
        "พิมพ์หนังสือแสดงประวัติการเป็นผู้ประกันตน", "Membership statement printed"
    ),
    "AuditLookups": Words("ตรวจสอบประวัติการเข้าถึงข้อมูล", "Audit-trail lookup"),
    "AccessReport": Words("ออกรายงานการเข้าถึงข้อมูล", "Access report"),
    "OpenComplaint": Words("รับเรื่องร้องเรียน", "Complaint opened"),
    "GetComplaint": Words("เรียกดูเรื่องร้องเรียน", "Complaint viewed"),
    "ListComplaints": Words("แสดงรายการเรื่องร้องเรียน", "Complaint listing"),
    "TransitionComplaint": Words("ปรับสถานะเรื่องร้องเรียน", "Complaint status change"),
    "ComplaintPaymentShown": Words(
        "แสดงการชำระเงินในเรื่องร้องเรียนของผู้อื่น", "Payment shown in another person's complaint"
    ),
    "ListRefunds": Words("แสดงรายการเงินสมทบที่ต้องคืน", "Refund listing"),
    "ListOverpayments": Words(
        "แสดงรายการเงินสมทบที่ชำระเกินหลังเปลี่ยนอัตรา", "Overpayments listed after a rate change"
    ),
    "ImportSettlement": Words(
        "ตรวจสอบไฟล์ยอดรับชำระของหน่วยรับชำระเงิน", "Partner settlement file checked"
    ),
    "GetSettlement": Words(
        "เรียกดูผลตรวจสอบยอดรับชำระของหน่วยรับชำระเงิน", "Partner settlement result viewed"
    ),
    "ExportSettlement": Words(
        "ส่งรายการรับชำระในไฟล์ยอดรับชำระให้หน่วยรับชำระเงิน",
        "Included in the settlement file sent to a payment partner",
    ),
    "PartnerFeedExportStart": Words(
        "ส่งรายชื่อในไฟล์ข้อมูลให้หน่วยรับชำระเงิน", "Included in the feed sent to a payment partner"
    ),
    "RefusedCallsOverflow": Words("คำขอที่ถูกปฏิเสธจำนวนมาก", "Many refused requests"),
}

DISCLOSED: Final[dict[str, tuple[Words, ...]]] = {
    "InquireContribution": (NAME, SECTION, STATUS, OPTION, PAYABLE, MEMBERSHIPS),
    "ConfirmPayment": (RECEIPT, MONTHS_PAID, AMOUNT_PAID),
    "CancelPayment": (RECEIPT, MONTHS_PAID, AMOUNT_PAID, CANCELLED_AT),
    "GetPaymentStatus": (PAYMENT_STATE, RECEIPT, SECTION, MONTHS_PAID, AMOUNT_PAID),
    "ListInsured": (NAME, SECTION, STATUS),
    "GetInsured": (NAME, SECTION, STATUS, OPTION, REGISTRATION, MEMBERSHIPS, HISTORY),
    "CreateInsured": (REGISTRATION,),
    "SetInsuredStatus": (NAME, STATUS),
    "ChangeInsuredOption": (NAME, OPTION),
    "EndBySection33": (NAME, STATUS),
    "PrintInsuredStatement": (NAME, SECTION, STATUS, OPTION, REGISTRATION, MEMBERSHIPS, HISTORY),
    "AuditLookups": (ACCESSES,),
    "AccessReport": (NAME, ACCESSES),
    "OpenComplaint": (COMPLAINT, RECEIPT),
    "GetComplaint": (NAME, COMPLAINT, RECEIPT),
    "ListComplaints": (NAME, COMPLAINT),
    "TransitionComplaint": (NAME, COMPLAINT),
    "ComplaintPaymentShown": (NATIONAL_ID, RECEIPT, MONTHS_PAID, AMOUNT_PAID),
    "ListRefunds": (NAME, SECTION, OPTION, MONTHS_PAID, AMOUNT_PAID, REFUND),
    "ListOverpayments": (NATIONAL_ID, SECTION, OPTION, MONTHS_PAID, AMOUNT_PAID, REFUND),
    "ImportSettlement": (NATIONAL_ID, SECTION, MONTHS_PAID, AMOUNT_PAID),
    "GetSettlement": (NATIONAL_ID, SECTION, MONTHS_PAID, AMOUNT_PAID),
    "ExportSettlement": (NATIONAL_ID, NAME, SECTION, MONTHS_PAID, AMOUNT_PAID),
}

# --- who and why -----------------------------------------------------------------------------
KINDS: Final[dict[str, Words]] = {
    "partner": Words("หน่วยรับชำระเงิน", "payment partner"),
    "client": Words("ระบบงานภายในของสำนักงานประกันสังคม", "SSO internal application"),
    "operator": Words("เจ้าหน้าที่สำนักงานประกันสังคม", "SSO officer"),
    "anonymous": Words("ผู้ที่ยืนยันตัวตนไม่สำเร็จ", "unidentified caller"),
}
COUNTER_PAYMENT: Final = Words("การรับชำระเงินสมทบที่เคาน์เตอร์", "Counter payment")
INTERNAL_WORK: Final = Words("งานภายในของสำนักงานประกันสังคม", "SSO internal work")
UNKNOWN_PURPOSE: Final = Words("ไม่ทราบ (ไม่ได้รับอนุญาต)", "Unknown (not admitted)")

# --- outcomes --------------------------------------------------------------------------------
COMPLETED: Final = Words("ดำเนินการแล้ว", "Completed")
REFUSED: Final = Words("ถูกปฏิเสธ", "Refused")
FAILED: Final = Words("ไม่สำเร็จ (ระบบขัดข้อง)", "Failed (system error)")
_ACCESS_REFUSED: Final = Words("ไม่มีสิทธิ์ดำเนินการ", "not permitted")
_UNAUTHENTICATED: Final = Words("ยืนยันตัวตนไม่สำเร็จ", "authentication failed")
REASONS: Final[dict[str, Words]] = {
    "client.unauthenticated": _UNAUTHENTICATED,
    "client.clock_skew": _UNAUTHENTICATED,
    "client.ip_not_allowed": Words("ที่อยู่เครือข่ายไม่ได้รับอนุญาต", "address not allowed"),
    "client.scope_not_allowed": _ACCESS_REFUSED,
    "client.operation_not_allowed": _ACCESS_REFUSED,
    "client.access_refused": _ACCESS_REFUSED,
    "client.partner_disabled": Words("ผู้ใช้งานถูกระงับ", "caller disabled"),
    "client.rate_limited": Words("เรียกใช้ถี่เกินกำหนด", "too many requests"),
    "client.person_not_found": Words("ไม่พบข้อมูล", "not found"),
}
_OTHER_REASON: Final = Words("คำขอไม่เป็นไปตามเงื่อนไข", "request not accepted")

_MONTHS_EN: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip


def operation_words(operation: str) -> Words:
    """The operation in plain words (its own name when it has none yet)."""
    return OPERATIONS.get(operation, Words(operation, operation))


def purpose_words(principal_kind: str) -> Words:
    """Why such a caller touches a record: partners take payments, SSO does its own work."""
    if principal_kind == "partner":
        return COUNTER_PAYMENT
    if principal_kind in ("client", "operator"):
        return INTERNAL_WORK
    return UNKNOWN_PURPOSE


def kind_words(principal_kind: str) -> Words:
    """What kind of caller this is."""
    return KINDS.get(principal_kind, KINDS["anonymous"])


def disclosed_words(operation: str, outcome: str) -> tuple[Words, ...]:
    """The data a call showed its caller: nothing unless it completed."""
    if outcome != "ok":
        return (NOTHING,)
    return DISCLOSED.get(operation, (Words("ข้อมูลตามรายการ", "data of this operation"),))


def feed_disclosed(scope: tuple[str, ...]) -> tuple[Words, ...]:
    """The data a feed export sent of each person: its fields, each once, in the feed's order."""
    words: list[Words] = []
    for field in scope:
        word = FEED_FIELDS.get(field, Words(field, field))
        if word not in words:
            words.append(word)
    return tuple(words)


def feed_words(partner: str) -> Words:
    """Where a feed export that included the person went."""
    return Words(f"รวมอยู่ในไฟล์ข้อมูลที่ส่งให้ {partner}", f"included in the feed sent to {partner}")


def refused_calls_words(calls: int, source: str | None, first: datetime, last: datetime) -> Words:
    """``calls`` refused calls from ``source`` naming the person, counted together."""
    source = source or "-"
    first_local, last_local = first.astimezone(BANGKOK), last.astimezone(BANGKOK)
    span_th = f"{first_local:%H:%M:%S}–{last_local:%H:%M:%S} น."
    span_en = f"{first_local:%H:%M:%S}–{last_local:%H:%M:%S}"
    return Words(
        f"ถูกปฏิเสธ {calls} ครั้ง จากที่อยู่ {source} ระบุเลขประจำตัวนี้ ช่วงเวลา {span_th}",
        f"{calls} refused calls from {source} naming this ID between {span_en}",
    )


def outcome_words(outcome: str) -> Words:
    """Completed, refused (with the reason) or failed."""
    if outcome == "ok":
        return COMPLETED
    if outcome.startswith("client."):
        reason = REASONS.get(outcome, _OTHER_REASON)
        return Words(f"{REFUSED.th} ({reason.th})", f"{REFUSED.en} ({reason.en})")
    return FAILED


def mask_national_id(national_id: str) -> str:
    """A national ID as people write it, middle digits hidden: ``1-1234-xxxxx-xx-1``."""
    return national_id_rules.mask_national_id(national_id)


def thai_datetime(moment: datetime) -> str:
    """``12 มิ.ย. 2567 09:31:05 น.`` (Bangkok time, Buddhist Era)."""
    return calendar.thai_datetime(moment)


def english_datetime(moment: datetime) -> str:
    """``12 Jun 2024 09:31:05`` (Bangkok time; the month's name does not follow the locale)."""
    local = moment.astimezone(BANGKOK)
    return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year} {local:%H:%M:%S}"


def thai_date(moment: datetime) -> str:
    """``12 มิ.ย. 2567`` (Bangkok date, Buddhist Era)."""
    return calendar.thai_date(moment.astimezone(BANGKOK).date())


def english_date(moment: datetime) -> str:
    """``12 Jun 2024`` (Bangkok date)."""
    local = moment.astimezone(BANGKOK)
    return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year}"
