"""Refunds owed, person by person: months paid above today's rate after a rate cut
(``rate_cut``), and months paid under a membership after it had ended (``cover_ended``).

Today's rate table gives the amount due for every section, option and month of the period; the
store returns the candidate months (paid above it, or at or after the end of a membership of
their section), person by person with the person's memberships, and
``app.domain.overpayment.refunds_owed`` decides each month. Rates are read fresh for every
listing, so a cut just entered counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from app.audit.records import AuditSink, Requester
from app.domain.money import to_baht
from app.domain.months import Month
from app.domain.overpayment import Overpayment, refunds_owed
from app.domain.rates import RateTable
from app.errors import InvalidInput, NoRate
from app.rates.records import RateSource
from app.refunds.records import DueAmount, PaidRow

MAX_MONTHS: Final = 240  # one listing covers at most 20 years of contribution months
RECORDED_TOGETHER: Final = 100  # persons whose audit records are written at once, then shown
_LINES: Final = ((39, None), (40, 1), (40, 2), (40, 3))


class PaidMonthSource(Protocol):
    """Paid months that may be owed a refund, ordered by national ID, section and month."""

    def refund_candidates(
        self, first: Month, last: Month, due: Sequence[DueAmount]
    ) -> AsyncIterator[PaidRow]: ...


@dataclass(frozen=True, slots=True)
class PersonRefund:
    """What one person is owed for one section."""

    national_id: str
    title: str
    first_name: str
    last_name: str
    section: int
    months: tuple[Overpayment, ...]

    @property
    def name(self) -> str:
        """The name as the listing shows it."""
        return f"{self.title}{self.first_name} {self.last_name}"

    @property
    def refund_satang(self) -> int:
        """The sum to refund."""
        return sum(month.refund_satang for month in self.months)

    def document(self) -> dict[str, Any]:
        """JSON-ready (camelCase, amounts in baht as strings)."""
        return {
            "nationalId": self.national_id,
            "name": self.name,
            "section": self.section,
            "months": [
                {
                    "month": str(m.month),
                    "option": m.option,
                    "paid": str(to_baht(m.paid_satang)),
                    "due": str(to_baht(m.due_satang)),
                    "refund": str(to_baht(m.refund_satang)),
                    "reason": m.reason,
                }
                for m in self.months
            ],
            "refund": str(to_baht(self.refund_satang)),
        }


def due_amounts(rates: RateTable, first: Month, last: Month) -> list[DueAmount]:
    """The amount due for every section, option and month of the period that has a rate."""
    found = []
    for month in Month.range(first, last):
        for section, option in _LINES:
            try:
                found.append(
                    DueAmount(section, option, month, rates.amount(section, option, month))
                )
            except NoRate:
                continue  # nothing can be owed for a month without a rate
    return found


class RefundsService:
    """Lists the refunds owed for a period, person by person. Each person it yields has
    been recorded first (``ListRefunds``, naming the ``requester``): the listing shows their
    ID, name and amounts, and every lookup of a person's data is on the audit trail."""

    def __init__(
        self,
        *,
        source: PaidMonthSource,
        rates: RateSource,
        sink: AuditSink,
        clock: Callable[[], datetime],
    ) -> None:
        self._source = source
        self._rates = rates
        self._sink = sink
        self._clock = clock

    async def refunds(
        self, first: Month, last: Month, *, requester: Requester
    ) -> AsyncIterator[PersonRefund]:
        """Every person owed a refund for months ``first``..``last``, by national ID."""
        shown: list[PersonRefund] = []
        async for person in self._owed(first, last):
            shown.append(person)
            if len(shown) == RECORDED_TOGETHER:
                await self._record(requester, shown)
                for each in shown:
                    yield each
                shown = []
        await self._record(requester, shown)
        for each in shown:
            yield each

    async def _record(self, requester: Requester, persons: list[PersonRefund]) -> None:
        at = self._clock()
        await asyncio.gather(
            *(
                self._sink.record(
                    requester.record(
                        at=at,
                        operation="ListRefunds",
                        outcome="ok",
                        national_id=person.national_id,
                        name_returned=person.name,
                        detail={"listed": True, "section": person.section},
                    )
                )
                for person in persons
            )
        )

    async def _owed(self, first: Month, last: Month) -> AsyncIterator[PersonRefund]:
        if last < first or last.index - first.index >= MAX_MONTHS:
            raise InvalidInput(
                f"The period must run forward and span at most {MAX_MONTHS} months.",
                field="to",
            )
        rates = RateTable(await self._rates.load_rates())
        due = due_amounts(rates, first, last)
        group: list[PaidRow] = []
        async for row in self._source.refund_candidates(first, last, due):
            if group and (row.paid.national_id, row.paid.section) != (
                group[0].paid.national_id,
                group[0].paid.section,
            ):
                refund = _person(group, rates)
                if refund is not None:
                    yield refund
                group = []
            group.append(row)
        if group and (refund := _person(group, rates)) is not None:
            yield refund


def _person(rows: list[PaidRow], rates: RateTable) -> PersonRefund | None:
    head = rows[0]
    months = refunds_owed((row.paid for row in rows), covers=head.covers, rates=rates)
    if not months:
        return None
    return PersonRefund(
        national_id=head.paid.national_id,
        title=head.title,
        first_name=head.first_name,
        last_name=head.last_name,
        section=head.paid.section,
        months=tuple(months),
    )
