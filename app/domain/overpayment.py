"""Refunds owed per person and month, of two kinds (``reason``):

* ``rate_cut``: a rate was cut after members had paid (a retroactive cut, or a future cut over
  Section 40 months paid ahead): the difference between what was paid and today's rate is owed;
* ``cover_ended``: a month was paid under a membership that had ended by then (a return to
  Section 33 employment or an officer's termination recorded after the months were paid): the
  month is not covered, so **everything paid for it** is owed (due 0). It is never carried over
  to the membership that follows: the sections are different funds, with their own rates and
  benefits, and the new membership's rules decide what it owes. A month that a later membership
  *of the same section* covers is not refunded: it counts for that membership.

A month that is both is refunded once, in full, as ``cover_ended``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from app.domain.months import Month
from app.domain.rates import RateTable
from app.errors import NoRate

RATE_CUT: Final = "rate_cut"
COVER_ENDED: Final = "cover_ended"
REFUND_REASONS: Final = (RATE_CUT, COVER_ENDED)


@dataclass(frozen=True, slots=True)
class PaidMonth:
    """One month a member paid: what was taken for it, and the late surcharge that includes
    (a rate cut is judged on the contribution alone, the surcharge excluded)."""

    national_id: str
    section: int
    option: int | None
    month: Month
    amount_satang: int
    surcharge_satang: int = 0

    @property
    def contribution_satang(self) -> int:
        """What was taken for the month's rate: the amount without its late surcharge."""
        return self.amount_satang - self.surcharge_satang


@dataclass(frozen=True, slots=True)
class Overpayment:
    """A month paid above what is due for it today, and the difference to refund."""

    national_id: str
    section: int
    option: int | None
    month: Month
    paid_satang: int
    due_satang: int
    refund_satang: int
    reason: str = RATE_CUT  # RATE_CUT or COVER_ENDED


@dataclass(frozen=True, slots=True)
class Cover:
    """The months one membership of a person covers: from ``start`` up to, not including,
    ``end`` (the first month no longer covered; None while it has not ended)."""

    section: int
    start: Month
    end: Month | None

    def covers(self, section: int, month: Month) -> bool:
        """Whether this membership covers ``month`` of ``section``."""
        return (
            section == self.section
            and self.start <= month
            and (self.end is None or month < self.end)
        )


def compute_overpayments(paid: Iterable[PaidMonth], rates: RateTable) -> list[Overpayment]:
    """Every paid month whose amount due under ``rates`` is now lower than what was paid."""
    refunds: list[Overpayment] = []
    for item in paid:
        due = rates.amount(item.section, item.option, item.month)
        if due < item.contribution_satang:
            refunds.append(_owed(item, item.contribution_satang, due, RATE_CUT))
    return refunds


def _owed(item: PaidMonth, paid_satang: int, due_satang: int, reason: str) -> Overpayment:
    """``paid_satang`` of ``item`` owed back down to ``due_satang``, for ``reason``."""
    return Overpayment(
        national_id=item.national_id,
        section=item.section,
        option=item.option,
        month=item.month,
        paid_satang=paid_satang,
        due_satang=due_satang,
        refund_satang=paid_satang - due_satang,
        reason=reason,
    )


def cover_ended(item: PaidMonth, covers: Sequence[Cover]) -> bool:
    """Whether ``item`` was paid for a month after a membership of its section ended, that no
    membership of its section covers."""
    ended = any(
        c.section == item.section and c.end is not None and c.end <= item.month for c in covers
    )
    return ended and not any(c.covers(item.section, item.month) for c in covers)


def refunds_owed(
    paid: Iterable[PaidMonth], *, covers: Sequence[Cover], rates: RateTable
) -> list[Overpayment]:
    """What is owed for ``paid`` (one person's months), given the person's memberships
    ``covers``: a month after its cover ended in full, else what a rate cut left over. A month
    without a rate today owes nothing for a cut (there is nothing to compare it with)."""
    refunds: list[Overpayment] = []
    for item in paid:
        if cover_ended(item, covers):
            if item.amount_satang == 0:
                continue  # nothing was taken for it
            refunds.append(_owed(item, item.amount_satang, 0, COVER_ENDED))
            continue
        try:
            refunds.extend(compute_overpayments([item], rates))
        except NoRate:
            continue
    return refunds
