"""A member's standing and payable months today: the domain rules applied to a snapshot.

The standing is the one status of ``app.domain.standing``: what was recorded (registration,
source system, an officer's events) and, for an active Section 39 member, the rules judged from
the latest of the coverage start, the history read and an officer's reinstatement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.counter.ports import HISTORY_MONTHS, MemberSnapshot
from app.domain.months import Month
from app.domain.payable import MonthDue
from app.domain.rates import RateTable
from app.domain.section39 import S39Policy, s39_payable_months
from app.domain.section40 import SECTION as S40
from app.domain.section40 import S40Policy, s40_payable_months
from app.domain.standing import (
    MembershipFacts,
    Standing,
    derive_standing,
    reason_code,
    rules_start,
)
from app.errors import MemberInactive, MemberTerminated, NoRate
from app.frozen_records import quick_init


@quick_init
@dataclass(frozen=True, slots=True)
class Entitlement:
    status: str  # active | terminated | inactive
    reason: str | None  # a code of app.domain.standing.STATUS_REASONS
    ended_month: Month | None
    months: list[MonthDue]

    def ensure_may_pay(self) -> None:
        """Refuse a payment from a member who may not pay (distinct codes)."""
        if self.status == "terminated":
            raise MemberTerminated(
                f"The membership ended from {self.ended_month}; payments are refused.",
                ended_month=str(self.ended_month) if self.ended_month else None,
                reason=self.reason,
            )
        if self.status != "active":
            raise MemberInactive(
                f"The membership is {self.status}; payments are refused.", status=self.status
            )


def history_start(today: date) -> Month:
    """The first month of payment history read for a standing on ``today``."""
    return Month.of(today).minus(HISTORY_MONTHS)


def amount_due(member: MemberSnapshot, *, today: date, rates: RateTable) -> int | None:
    """Section 40: the monthly contribution for the month of ``today`` at the option in force
    then, in satang, whatever the standing; None for Section 39 or when no rate covers it."""
    month = Month.of(today)
    option = member.option_for(month)
    if member.section != S40 or option is None:
        return None
    try:
        return rates.rate(S40, option, month).amount_satang
    except NoRate:
        return None  # unknown, so absent: never a made-up zero


def facts_of(member: MemberSnapshot) -> MembershipFacts:
    """What ``member``'s status is derived from."""
    return MembershipFacts(
        section=member.section,
        recorded=Standing(member.status, member.status_reason, member.ended_month),
        coverage_start=member.coverage_start,
        rules_from=member.rules_from,
        paid=member.paid,
        earlier=member.earlier,
    )


def entitlement(
    member: MemberSnapshot, *, today: date, rates: RateTable, s39: S39Policy, s40: S40Policy
) -> Entitlement:
    """Standing and payable months of ``member`` on ``today``."""
    facts = facts_of(member)
    standing = derive_standing(facts, today=today, policy=s39)
    if standing.status != "active":
        # A partner sees a code, never an officer's words (app.domain.standing).
        reason = reason_code(standing.status, standing.reason)
        return Entitlement(standing.status, reason, standing.ended_month, [])
    if member.section == 39:
        start = rules_start(facts, today)
        months = s39_payable_months(
            coverage_start=start,
            paid=member.paid.keys(),
            today=today,
            rates=rates,
            policy=s39,
            paid_on=member.paid,
        )
        return Entitlement("active", None, None, months)
    assert member.option is not None
    months = s40_payable_months(
        option=member.option,
        paid=member.paid.keys(),
        today=today,
        rates=rates,
        policy=s40,
        coverage_start=member.coverage_start,
    )
    before = member.previous_option
    if before is not None and member.option_effective is not None:
        # Months before a pending option change are still priced at the option held then.
        earlier = s40_payable_months(
            option=before,
            paid=member.paid.keys(),
            today=today,
            rates=rates,
            policy=s40,
            coverage_start=member.coverage_start,
        )
        months = [m for m in earlier if m.month < member.option_effective] + [
            m for m in months if m.month >= member.option_effective
        ]
    return Entitlement("active", None, None, months)
