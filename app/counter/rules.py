"""The settings the counter's use cases apply: section policies, ceiling, cut-off, paid-at
window, ID prefixes; and how they are read from the gateway's settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta

from app.domain.calendar import PaidAtWindow
from app.domain.section39 import S39Policy
from app.domain.section40 import S40Policy
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class CounterRules:
    """The settings the counter use cases apply."""

    s39: S39Policy
    s40: S40Policy
    ceiling_satang: int
    cutoff: time  # a business day closes at this time (Asia/Bangkok); later cash is the next's
    paid_at_window: PaidAtWindow  # how far a counter's paidAt may lie from the gateway's clock
    prefixes: dict[int, frozenset[str]]


def counter_rules(settings: Settings) -> CounterRules:
    """The business-rule settings the counter applies."""
    return CounterRules(
        s39=S39Policy(
            max_overdue_months=settings.s39_max_overdue_months,
            late_counts_as_paid=settings.s39_late_counts_as_paid,
            late_surcharge_satang=settings.s39_late_surcharge_satang,
            advance_months=settings.s39_advance_months,
            application_backdate_days=settings.s39_application_backdate_days,
        ),
        s40=S40Policy(
            max_months_ahead=settings.s40_max_months_ahead,
            max_savings_per_month_satang=settings.s40_max_savings_per_month_satang,
            option_changes_per_year=settings.s40_option_changes_per_year,
            option_change_period=settings.s40_option_change_period,
        ),
        ceiling_satang=settings.counter_ceiling_satang,
        cutoff=settings.settlement_cutoff,
        paid_at_window=PaidAtWindow(
            back=timedelta(seconds=settings.paid_at_max_behind_s),
            ahead=timedelta(seconds=settings.paid_at_max_ahead_s),
        ),
        prefixes=settings.prefixes(),
    )
