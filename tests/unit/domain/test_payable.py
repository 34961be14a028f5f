"""The counter's default selection and totals."""

from __future__ import annotations

from datetime import date

from app.domain.months import Month
from app.domain.payable import MonthDue, default_selection, total_satang


def due(
    text: str, amount: int = 43_200, *, overdue: bool = False, advance: bool = False
) -> MonthDue:
    month = Month.parse(text)
    return MonthDue(
        month=month,
        amount_satang=amount,
        due_date=month.plus(1).first_day.replace(day=15),
        overdue=overdue,
        government_satang=0,
        advance=advance,
    )


def test_s39_default_is_arrears_and_current_but_not_advance() -> None:
    months = [
        due("2024-07", advance=True),
        due("2024-04", overdue=True),
        due("2024-05"),
        due("2024-06"),
    ]
    chosen = default_selection(39, months)
    assert [str(d.month) for d in chosen] == ["2024-04", "2024-05", "2024-06"]
    assert total_satang(chosen) == 129_600


def test_s40_default_is_the_earliest_month() -> None:
    months = [due("2024-08", 7_000, advance=True), due("2024-07", 7_000, advance=True)]
    assert [str(d.month) for d in default_selection(40, months)] == ["2024-07"]


def test_nothing_payable_selects_nothing() -> None:
    assert default_selection(39, []) == []
    assert default_selection(40, []) == []
    assert total_satang([]) == 0


def test_month_due_is_a_value() -> None:
    assert due("2024-05") == due("2024-05")
    assert due("2024-05").due_date == date(2024, 6, 15)
