"""Dates as people in Thailand read them: the Buddhist Era (พ.ศ.), on every human surface; and
what a refusal is about, in Thai (``detailTh``), beside the ISO dates of its details."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.domain.calendar import (
    buddhist_year,
    thai_date,
    thai_date_long,
    thai_datetime,
    thai_month,
    thai_month_short,
)
from app.domain.months import Month
from app.error_catalogue import thai_detail
from app.errors import (
    AlreadyPaid,
    BusinessDateMismatch,
    CancelNotAllowed,
    MemberTerminated,
    NotEligibleForSection39,
    OptionChangeRefused,
    StatusContradictsRules,
)


def test_the_buddhist_era_is_543_years_ahead() -> None:
    assert buddhist_year(2024) == 2567
    assert thai_date(date(2024, 6, 12)) == "12 มิ.ย. 2567"
    assert thai_date_long(date(2024, 6, 12)) == "12 มิถุนายน พ.ศ. 2567"
    assert thai_date_long(date(2025, 1, 1)) == "1 มกราคม พ.ศ. 2568"
    assert thai_month(Month(2024, 5)) == "พฤษภาคม พ.ศ. 2567"
    assert thai_month_short(Month(2023, 12)) == "ธ.ค. 2566"
    # An instant is read in Bangkok: 31 Dec 2024 20:00 UTC is 1 Jan 2568 03:00.
    assert thai_datetime(datetime(2024, 12, 31, 20, 0, tzinfo=UTC)) == "1 ม.ค. 2568 03:00:00 น."


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (MemberTerminated(ended_month="2024-05"), "สิ้นสภาพตั้งแต่เดือนพฤษภาคม พ.ศ. 2567"),
        (
            NotEligibleForSection39(
                reasons=["too_few_s33_months", "applied_too_late"], months_contributed=11,
                minimum_months=12, employment_ended_on="2024-01-15", deadline="2024-07-15",
                applied_on="2024-08-15",
            ),
            "จ่ายเงินสมทบมาตรา 33 มาแล้ว 11 เดือน ต้องไม่น้อยกว่า 12 เดือน"
            " ออกจากงานเมื่อ 15 มกราคม พ.ศ. 2567 ต้องสมัครภายใน 15 กรกฎาคม พ.ศ. 2567"
            " แต่สมัครเมื่อ 15 สิงหาคม พ.ศ. 2567",
        ),
        (
            StatusContradictsRules(derived_status="terminated", ended_month="2024-02"),
            "ตามเงื่อนไขและประวัติที่บันทึกไว้ สิ้นสภาพตั้งแต่เดือนกุมภาพันธ์ พ.ศ. 2567",
        ),
        (
            OptionChangeRefused(last_change="2024-12-20", next_change_on="2025-12-20"),
            "เปลี่ยนทางเลือกครั้งล่าสุดเมื่อ 20 ธันวาคม พ.ศ. 2567"
            " เปลี่ยนได้อีกครั้งตั้งแต่ 20 ธันวาคม พ.ศ. 2568",
        ),
        (
            BusinessDateMismatch(business_date="2024-06-13"),
            "วันทำการของรายการนี้คือ 13 มิถุนายน พ.ศ. 2567",
        ),
        (
            CancelNotAllowed(business_date="2024-06-12", cutoff_at="2024-06-12T23:00:00+07:00"),
            "วันทำการ 12 มิถุนายน พ.ศ. 2567 ปิดรับยกเลิกเมื่อ 12 มิ.ย. 2567 23:00:00 น.",
        ),
    ],
)  # fmt: skip
def test_a_refusal_that_turns_on_a_date_says_so_in_thai(error: Exception, text: str) -> None:
    assert thai_detail(error) == text  # type: ignore[arg-type]
    assert "2024" not in text  # the ISO dates stay in the details, for programs


@pytest.mark.parametrize(
    "error",
    [
        AlreadyPaid(months=["2024-05"]),
        MemberTerminated(),  # no month to tell
        MemberTerminated(ended_month="not a month"),
        OptionChangeRefused(reason="same_option"),
    ],
)
def test_otherwise_the_code_says_all(error: Exception) -> None:
    assert thai_detail(error) is None  # type: ignore[arg-type]
