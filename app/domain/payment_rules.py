"""The checks a counter payment must pass before it is recorded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

from app.domain.money import COUNTER_CEILING_SATANG, format_baht
from app.domain.months import Month
from app.domain.payable import MonthDue, total_satang
from app.domain.rates import SECTIONS
from app.domain.section40 import S40Policy
from app.errors import (
    AlreadyPaid,
    AmountMismatch,
    InvalidAmount,
    InvalidInput,
    MonthNotPayable,
    MonthsNotContiguous,
    OverCeiling,
    SavingsNotAllowed,
)


@dataclass(frozen=True, slots=True)
class ValidatedPayment:
    """A payment that passed every rule: its months, oldest first, and its amounts."""

    months: tuple[Month, ...]
    contribution_satang: int
    savings_satang: int
    total_satang: int
    lines: tuple[MonthDue, ...]  # the amount due for each month, as charged


def _names(months: Collection[Month]) -> list[str]:
    return [str(month) for month in sorted(months)]


#: The months one payment may hold (the ledger's CHECK on payments.months, 0001_core.sql): the
#: current month and twelve more. The rule settings are bounded by it (``app.settings``); a
#: payment of more months than that, each of them offered, is refused as the client's.
MAX_MONTHS_A_PAYMENT: Final = 13


def _check_shape(requested: Sequence[Month], amount_satang: int, savings_satang: int) -> None:
    if not requested:
        raise InvalidInput("Name at least one month to pay.", field="months", reason="empty")

    duplicates = [month for month, count in Counter(requested).items() if count > 1]
    if duplicates:
        raise InvalidInput(
            f"Each month may be named once; repeated: {', '.join(_names(duplicates))}.",
            field="months",
            reason="duplicate",
            months=_names(duplicates),
        )
    if amount_satang < 0 or savings_satang < 0:
        raise InvalidAmount("Amounts cannot be negative.", reason="negative")


def _check_savings(
    *,
    section: int,
    option: int | None,
    savings_satang: int,
    months: Sequence[MonthDue],
    policy: S40Policy,
) -> None:
    """Savings go with the months paid under an option that allows them, each month at the
    option it is priced at (a month before a pending option change keeps the option held then;
    ``option``, the member's, stands for a month that names none)."""
    if savings_satang == 0:
        return
    eligible = 0
    if section == 40:
        eligible = sum(
            1
            for due in months
            if (due.option if due.option is not None else option) in policy.savings_options
        )
    if eligible == 0:
        allowed = ", ".join(str(o) for o in sorted(policy.savings_options))
        raise SavingsNotAllowed(
            f"Additional savings are only for months paid under Section 40 options {allowed}.",
            reason="not_eligible",
            section=section,
            option=option,
        )
    limit = policy.max_savings_per_month_satang * eligible
    if savings_satang > limit:
        raise SavingsNotAllowed(
            f"Additional savings are limited to {format_baht(policy.max_savings_per_month_satang)}"
            f" baht a month paid under options that allow them: at most {format_baht(limit)}"
            f" for {eligible} month(s).",
            reason="over_limit",
            max_satang=limit,
            given_satang=savings_satang,
        )


def validate_payment(
    *,
    section: int,
    option: int | None,
    requested: Sequence[Month],
    amount_satang: int,
    savings_satang: int,
    payable: Sequence[MonthDue],
    paid: Collection[Month],
    ceiling_satang: int = COUNTER_CEILING_SATANG,
    s40_policy: S40Policy = S40Policy(),
) -> ValidatedPayment:
    """Check a requested payment against today's payable months; return what it covers.

    ``amount_satang`` is the whole cash amount taken, additional savings included.
    """
    if section not in SECTIONS:
        raise InvalidInput(f"Section {section} is not served.", field="section", section=section)
    _check_shape(requested, amount_satang, savings_satang)
    already = [month for month in requested if month in paid]
    if already:
        raise AlreadyPaid(f"Already paid: {', '.join(_names(already))}.", months=_names(already))
    open_months = sorted((due for due in payable if due.month not in paid), key=lambda d: d.month)
    offered = {due.month for due in open_months}
    refused = [month for month in requested if month not in offered]
    if refused:
        names = _names(refused)
        raise MonthNotPayable(
            f"Cannot be paid today: {', '.join(names)}. "
            f"Payable: {', '.join(_names(offered)) or 'none'}.",
            month=names[0],
            months=names,
            payable=_names(offered),
        )
    if len(requested) > MAX_MONTHS_A_PAYMENT:
        raise InvalidInput(
            f"One payment holds at most {MAX_MONTHS_A_PAYMENT} months; pay the rest in another.",
            field="months",
            reason="too_many",
            limit=MAX_MONTHS_A_PAYMENT,
        )
    chosen = open_months[: len(requested)]
    wanted = sorted(requested)
    if [due.month for due in chosen] != wanted:
        skipped = [due.month for due in chosen if due.month not in requested]
        raise MonthsNotContiguous(
            f"Pay the earliest months first, without gaps: {', '.join(_names(skipped))}"
            " must be paid before later months.",
            expected=[str(due.month) for due in chosen],
            given=_names(wanted),
            skipped=_names(skipped),
        )
    _check_savings(
        section=section,
        option=option,
        savings_satang=savings_satang,
        months=chosen,
        policy=s40_policy,
    )
    contribution = total_satang(chosen)
    total = contribution + savings_satang
    if total > ceiling_satang:
        raise OverCeiling(
            f"{format_baht(total)} baht is over the counter ceiling of"
            f" {format_baht(ceiling_satang)} baht; pay fewer months.",
            total_satang=total,
            ceiling_satang=ceiling_satang,
        )
    if amount_satang != total:
        raise AmountMismatch(
            f"The amount due is {format_baht(total)} baht, not {format_baht(amount_satang)}.",
            expected_satang=total,
            given_satang=amount_satang,
            contribution_satang=contribution,
            savings_satang=savings_satang,
        )
    return ValidatedPayment(
        months=tuple(wanted),
        contribution_satang=contribution,
        savings_satang=savings_satang,
        total_satang=total,
        lines=tuple(chosen),
    )
