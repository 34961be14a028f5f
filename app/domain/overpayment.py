"""Refunds owed when a rate is cut after members have paid (retroactive cuts)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.domain.months import Month
from app.domain.rates import RateTable


@dataclass(frozen=True, slots=True)
class PaidMonth:
    """One month a member paid, with the contribution taken (late surcharge excluded)."""

    national_id: str
    section: int
    option: int | None
    month: Month
    amount_satang: int


@dataclass(frozen=True, slots=True)
class Overpayment:
    """A month paid above today's rate for it, and the difference to refund."""

    national_id: str
    section: int
    option: int | None
    month: Month
    paid_satang: int
    due_satang: int
    refund_satang: int


def compute_overpayments(paid: Iterable[PaidMonth], rates: RateTable) -> list[Overpayment]:
    """Every paid month whose amount due under ``rates`` is now lower than what was paid."""
    refunds: list[Overpayment] = []
    for item in paid:
        due = rates.amount(item.section, item.option, item.month)
        if due < item.amount_satang:
            refunds.append(
                Overpayment(
                    national_id=item.national_id,
                    section=item.section,
                    option=item.option,
                    month=item.month,
                    paid_satang=item.amount_satang,
                    due_satang=due,
                    refund_satang=item.amount_satang - due,
                )
            )
    return refunds
