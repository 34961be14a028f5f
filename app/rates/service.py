"""Administering the effective-dated rate table: list, add a future rate, add a retroactive one.

A new rate may lower what is due for months already paid: a retroactive cut, or a future cut
over Section 40 months paid ahead. Each such month is an overpayment to refund. The answer to
adding a rate lists them, computed by the domain rule from the paid-month ledger rows of the
months the rate covers; they are produced chunk by chunk as the ledger is read, so a cut over
millions of paid months never sits in memory at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Protocol

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.admin_gate import ADMIN_SCOPE, AdminGate, Admitted
from app.domain.calendar import bangkok_date
from app.domain.money import format_baht
from app.domain.months import Month
from app.domain.overpayment import Overpayment, PaidMonth, compute_overpayments
from app.domain.rates import Rate
from app.errors import InvalidAmount, InvalidInput
from app.rates.book import RateBook
from app.rates.records import RateRecord

MAX_NOTE: Final = 200
#: The rate table keeps satang in ``integer`` columns: at most 21,474,836.47 baht.
MAX_RATE_SATANG: Final = 2**31 - 1
CHUNK: Final = 2000  # paid-month rows read (and overpayments computed) at a time
#: The record of each person an answer's overpayments show, written before their chunk goes out.
OVERPAYMENTS_LISTED: Final = "ListOverpayments"


@dataclass(frozen=True, slots=True)
class RateRequest:
    """A rate to add, as the caller sent it."""

    section: int
    option: int | None
    first_month: str  # YYYY-MM
    last_month: str | None  # YYYY-MM; None: open-ended
    amount_satang: int
    government_satang: int = 0
    note: str | None = None


@dataclass(slots=True)
class OverpaymentTally:
    """How many overpayments have been produced so far, and their refunds in all."""

    count: int = 0
    refund_satang: int = 0


@dataclass(frozen=True, slots=True)
class RateChange:
    """A rate just added, and the overpayments it creates (read as they are consumed).

    ``tally`` is complete once ``overpayments`` is exhausted.
    """

    record: RateRecord
    retroactive: bool
    overpayments: AsyncGenerator[Overpayment, None]
    tally: OverpaymentTally


class RatesStore(Protocol):
    """The rate table and the paid-month ledger rows a rate covers."""

    async def list_rates(self, *, section: int | None) -> list[RateRecord]: ...

    async def insert_rate(self, rate: Rate, *, note: str | None) -> RateRecord: ...

    def paid_months(
        self,
        *,
        section: int,
        option: int | None,
        first: Month,
        last: Month | None,
        above_satang: int,
        chunk: int,
    ) -> AsyncGenerator[list[PaidMonth], None]:
        """Paid months of the section and option in ``[first, last]`` whose contribution is
        above a bound, of the months a membership of the person still covers (a month after
        its cover ended is owed back whole, not for a cut: ``app.refunds``)."""
        ...


class RatesAdmin:
    """Rate-table use cases for SSO's internal applications (scope ``admin``)."""

    def __init__(
        self,
        *,
        gate: AdminGate,
        store: RatesStore,
        rates: RateBook,
        clock: Callable[[], datetime],  # the business clock (app.main)
    ) -> None:
        self._gate = gate
        self._store = store
        self._rates = rates
        self._clock = clock

    async def list_rates(
        self, *, caller: Caller, credentials: Credentials, section: int | None = None
    ) -> list[RateRecord]:
        """Every rate line (of one section when given), in the order they were added."""
        await self._gate.admit(
            caller=caller, credentials=credentials, operation="ListRates", scope=ADMIN_SCOPE
        )
        if section is not None and section not in (39, 40):
            raise InvalidInput("section must be 39 or 40.", field="section")
        return await self._store.list_rates(section=section)

    async def add_rate(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        request: RateRequest,
        retroactive: bool,
    ) -> RateChange:
        """Add a rate that starts after this month, or (``retroactive``) this month or earlier."""
        operation = "AddRetroactiveRate" if retroactive else "AddRate"

        async def body(call: Admitted) -> RateChange:
            rate = self._checked(request, retroactive=retroactive)
            note = request.note.strip() if request.note and request.note.strip() else None
            if note is not None and (len(note) > MAX_NOTE or not note.isprintable()):
                raise InvalidInput(
                    f"note is at most {MAX_NOTE} printable characters.", field="note"
                )
            record = await self._store.insert_rate(rate, note=note)
            self._rates.invalidate()
            await call.audit.ok(
                rateId=record.id,
                section=rate.section,
                option=rate.option,
                firstMonth=str(rate.first_month),
                lastMonth=str(rate.last_month) if rate.last_month else None,
                amountSatang=rate.amount_satang,
            )
            tally = OverpaymentTally()
            overpayments = self._overpayments(rate, tally, call)
            return RateChange(record, retroactive, overpayments, tally)

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation=operation,
            scope=ADMIN_SCOPE,
            body=body,
        )

    def _checked(self, request: RateRequest, *, retroactive: bool) -> Rate:
        first = Month.parse(request.first_month)
        last = Month.parse(request.last_month) if request.last_month else None
        if request.amount_satang <= 0:
            raise InvalidAmount("A contribution rate must be above zero.", field="amount")
        amounts = {"amount": request.amount_satang, "governmentAmount": request.government_satang}
        for field, satang in amounts.items():
            if satang > MAX_RATE_SATANG:
                most = format_baht(MAX_RATE_SATANG)
                raise InvalidAmount(f"{field} must be at most {most} baht.", field=field)
        rate = Rate(
            section=request.section,
            option=request.option,
            first_month=first,
            last_month=last,
            amount_satang=request.amount_satang,
            government_satang=request.government_satang,
        )
        current = Month.of(self._today())
        if retroactive and first > current:
            raise InvalidInput(
                f"A retroactive rate starts in {current} or earlier; {first} is a future month.",
                field="firstMonth",
                reason="not_retroactive",
            )
        if not retroactive and first <= current:
            raise InvalidInput(
                f"A future rate starts after {current}; add a rate for {first} as retroactive.",
                field="firstMonth",
                reason="not_future",
            )
        return rate

    def _today(self) -> date:
        return bangkok_date(self._clock())

    async def _overpayments(
        self, rate: Rate, tally: OverpaymentTally, call: Admitted
    ) -> AsyncGenerator[Overpayment, None]:
        """The overpayments the new rate makes, chunk by chunk. The answer shows each one's
        national ID, so every person of a chunk is recorded before the chunk is shown."""
        table = await self._rates.table()
        # Only months paid above the new amount can be overpaid because of it.
        chunks = self._store.paid_months(
            section=rate.section,
            option=rate.option,
            first=rate.first_month,
            last=rate.last_month,
            above_satang=rate.amount_satang,
            chunk=CHUNK,
        )
        async with aclosing(chunks):
            async for paid in chunks:
                owed = compute_overpayments(paid, table)
                people = {o.national_id: "" for o in owed}.items()
                await call.audit.people_seen(people, operation=OVERPAYMENTS_LISTED)
                for overpayment in owed:
                    tally.count += 1
                    tally.refund_satang += overpayment.refund_satang
                    yield overpayment
