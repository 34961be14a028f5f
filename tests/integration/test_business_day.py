"""One business day, decided by the gateway: the 23:00 cut-off, midnight, and the partner's claims.

Every test pins the business clock (``clock.at``) and calls the counter service as both
adapters do; the answers, the ledger's business date, the status, the partner's settlement
export and the statistics all name the same day.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest

from app.admission.credentials import Credentials
from app.counter.records import (
    CancelRequest,
    CancelResult,
    ConfirmRequest,
    ConfirmResult,
    StatusResult,
    TxnState,
)
from app.domain.calendar import BANGKOK, settlement_day
from app.domain.months import Month
from app.errors import (
    BusinessDateMismatch,
    CancelNotAllowed,
    MonthNotPayable,
    PaidAtOutOfWindow,
    TransactionCancelled,
)
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, confirm_request
from tests.support.people import add_person
from tests.support.rest_api import replicas
from tests.support.wsse import digest_token

CENT = 100


async def _s40(gateway: Gateway, *, since: Month) -> str:
    async with gateway.db.primary.acquire() as conn:
        return await add_person(
            conn, section=40, option=1, coverage_start=since.minus(24), replicas=replicas(gateway)
        )


async def _payments_of(gateway: Gateway, nid: str) -> int:
    count = await gateway.db.primary.fetchval(
        "SELECT count(*) FROM payments WHERE national_id = $1", nid
    )
    assert isinstance(count, int)
    return count


class _Counter:
    """One partner's counter calling the service with a fresh WS-Security token each time."""

    def __init__(self, gateway: Gateway, partner: PartnerCredentials) -> None:
        self.gateway, self.partner = gateway, partner

    def _token(self) -> Credentials:
        return digest_token(self.partner.username, self.partner.password)

    async def confirm(self, request: ConfirmRequest) -> ConfirmResult:
        return await self.gateway.counter.confirm(
            caller=caller(), credentials=self._token(), request=request
        )

    async def cancel(self, txn: str) -> CancelResult:
        return await self.gateway.counter.cancel(
            caller=caller(), credentials=self._token(), request=CancelRequest(txn, "changed mind")
        )

    async def status(self, txn: str) -> StatusResult:
        return await self.gateway.counter.status(
            caller=caller(), credentials=self._token(), partner_txn_id=txn
        )


async def test_a_confirm_at_23_30_settles_next_day_and_cancels_until_its_cutoff(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    counter = _Counter(gateway, partner)
    day = clock.today()
    nid = await _s40(gateway, since=Month.of(day))
    with clock.at(time(23, 30), on=day):
        early = confirm_request(nid, [str(Month.of(day))], 70 * CENT)
        late = confirm_request(nid, [str(Month.of(day).plus(1))], 70 * CENT)
        first = await counter.confirm(early)
        second = await counter.confirm(late)
    next_day = day + timedelta(days=1)
    assert first.business_date == second.business_date == next_day
    assert first.receipt_no.startswith(f"R{next_day:%y%m%d}-")
    status = await counter.status(early.partner_txn_id)
    assert status.state is TxnState.CONFIRMED and status.business_date == next_day

    # The partner's settlement file and the statistics of the next day hold both payments (a
    # day's file is taken once the day has closed: here the morning after the next day).
    with clock.at(time(9, 0), on=next_day + timedelta(days=1)):
        export = io.BytesIO()
        summary = await gateway.settlement_files.export(
            export.write, partner=partner.name, business_date=next_day, file_format="csv"
        )
        assert (summary.lines, summary.total_satang) == (2, 140 * CENT)
        empty = await gateway.settlement_files.export(
            io.BytesIO().write, partner=partner.name, business_date=day, file_format="csv"
        )
        assert empty.lines == 0

    with clock.at(time(23, 45), on=day):  # a quarter of an hour later: still cancellable
        assert (await counter.cancel(early.partner_txn_id)).state is TxnState.CANCELLED
    with clock.at(time(22, 59), on=next_day):  # the next evening, before its cut-off
        assert (await counter.cancel(late.partner_txn_id)).state is TxnState.CANCELLED


async def test_after_the_next_days_cutoff_the_payment_stands(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    counter = _Counter(gateway, partner)
    day = clock.today()
    nid = await _s40(gateway, since=Month.of(day))
    with clock.at(time(23, 30), on=day):
        request = confirm_request(nid, [str(Month.of(day))], 70 * CENT)
        await counter.confirm(request)
    with clock.at(time(23, 0), on=day + timedelta(days=1)), pytest.raises(CancelNotAllowed):
        await counter.cancel(request.partner_txn_id)
    assert (await counter.status(request.partner_txn_id)).state is TxnState.CONFIRMED


async def test_cash_taken_before_midnight_pays_the_month_it_was_taken_in(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """S40: 23:59:50 on 31 December, confirmed at 00:00:05 on 1 January, pays December."""
    counter = _Counter(gateway, partner)
    december = Month(clock.today().year, 12)
    nid = await _s40(gateway, since=december)
    taken = datetime(december.year, 12, 31, 23, 59, 50, tzinfo=BANGKOK)
    with clock.at(time(0, 0, 5), on=date(december.year + 1, 1, 1)):
        request = replace(
            confirm_request(nid, [str(december)], 70 * CENT), paid_at=taken, business_date=None
        )
        result = await counter.confirm(request)
        assert result.months == (str(december),)
        # Taken after the cut-off of 31 December: it settles on 1 January.
        assert result.business_date == date(december.year + 1, 1, 1)
        # Judged at arrival, December is a past month: cash taken now cannot pay it.
        other = await _s40(gateway, since=december)
        with pytest.raises(MonthNotPayable):
            await counter.confirm(confirm_request(other, [str(december)], 70 * CENT))


async def test_section_39_cash_taken_on_the_night_of_the_15th_keeps_its_month(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """On the 15th, month M-2 is still payable (overdue); on the 16th it is not. Cash taken at
    23:59:50 on the 15th and confirmed at 00:00:05 on the 16th pays it, paid on the 15th."""
    counter = _Counter(gateway, partner)
    current = Month.of(clock.today())
    late = current.minus(2)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn,
            section=39,
            coverage_start=current.minus(14),
            paid=list(Month.range(current.minus(14), current.minus(3))),
            replicas=replicas(gateway),
        )
    fifteenth = date(current.year, current.month, 15)
    taken = datetime.combine(fifteenth, time(23, 59, 50), tzinfo=BANGKOK)
    with clock.at(time(0, 0, 5), on=fifteenth + timedelta(days=1)):
        request = confirm_request(nid, [str(late)], 432 * CENT, section=39)
        with pytest.raises(MonthNotPayable):  # cash taken now: too late for M-2
            await counter.confirm(request)
        result = await counter.confirm(replace(request, paid_at=taken))
    assert result.months == (str(late),)
    paid_on = await gateway.db.primary.fetchval(
        "SELECT paid_on FROM paid_months WHERE national_id = $1 AND month = $2",
        nid,
        late.first_day,
    )
    assert paid_on == fifteenth  # on time, by the moment the cash was taken


async def test_a_business_date_that_is_not_the_gateways_is_refused(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    counter = _Counter(gateway, partner)
    day = clock.today()
    nid = await _s40(gateway, since=Month.of(day))
    with clock.at(time(23, 30), on=day):
        request = confirm_request(nid, [str(Month.of(day))], 70 * CENT)
        for wrong in (day, day + timedelta(days=2), date(2019, 1, 1)):
            with pytest.raises(BusinessDateMismatch) as refused:
                await counter.confirm(replace(request, business_date=wrong))
            assert refused.value.details["business_date"] == str(day + timedelta(days=1))
    assert await _payments_of(gateway, nid) == 0  # nothing written


async def test_a_paid_at_out_of_the_drift_is_refused_and_a_replay_is_still_answered(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    counter = _Counter(gateway, partner)
    day = clock.today()
    nid = await _s40(gateway, since=Month.of(day))
    with clock.at(time(12, 0), on=day) as noon:
        request = confirm_request(nid, [str(Month.of(day))], 70 * CENT)
        for off in (timedelta(minutes=-6), timedelta(minutes=2), timedelta(days=-7),
                    timedelta(days=30)):  # fmt: skip
            with pytest.raises(PaidAtOutOfWindow):
                await counter.confirm(replace(request, paid_at=noon + off))
        assert await _payments_of(gateway, nid) == 0
        original = await counter.confirm(replace(request, paid_at=noon - timedelta(minutes=4)))
    # The counter retries the same request after the cut-off and out of the drift: a replay.
    with clock.at(time(23, 50), on=day):
        again = await counter.confirm(replace(request, paid_at=noon - timedelta(minutes=4)))
    assert again.replayed and again.receipt_no == original.receipt_no
    assert again.business_date == original.business_date == day


async def test_posted_at_is_the_gateways_clock_that_decided_the_business_day(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    counter = _Counter(gateway, partner)
    day = clock.today() - timedelta(days=3)  # far from the database's own now()
    nid = await _s40(gateway, since=Month.of(day))
    with clock.at(time(23, 30), on=day) as at:
        result = await counter.confirm(confirm_request(nid, [str(Month.of(day))], 70 * CENT))
    assert result.business_date == day + timedelta(days=1)
    assert abs(result.posted_at - at) < timedelta(seconds=5)
    assert settlement_day(result.posted_at) == result.business_date  # the documented rule holds


async def test_a_resend_that_adds_or_drops_the_business_date_is_the_same_request(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    counter = _Counter(gateway, partner)
    nid = await _s40(gateway, since=clock.month())
    request = replace(confirm_request(nid, [str(clock.month())], 70 * CENT), business_date=None)
    first = await counter.confirm(request)
    again = await counter.confirm(replace(request, business_date=first.business_date))
    assert again.replayed and again.receipt_no == first.receipt_no


async def test_a_confirm_resent_after_its_cancel_is_refused_its_receipt_is_void(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    counter = _Counter(gateway, partner)
    nid = await _s40(gateway, since=clock.month())
    request = confirm_request(nid, [str(clock.month())], 70 * CENT)
    first = await counter.confirm(request)
    with clock.at(time(12, 0), on=first.business_date):
        await counter.cancel(request.partner_txn_id)
        with pytest.raises(TransactionCancelled) as refused:
            await counter.confirm(request)
    assert refused.value.details["receiptNo"] == first.receipt_no


@pytest.mark.parametrize("paid_at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
async def test_a_paid_at_with_no_instant_is_refused_and_audited(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock, paid_at: str
) -> None:
    counter = _Counter(gateway, partner)
    nid = await _s40(gateway, since=clock.month())
    request = replace(
        confirm_request(nid, [str(clock.month())], 70 * CENT),
        paid_at=datetime.fromisoformat(paid_at),
        business_date=None,
    )
    rid = uuid.uuid4().hex
    with pytest.raises(PaidAtOutOfWindow):
        await gateway.counter.confirm(
            caller=caller(rid), credentials=counter._token(), request=request
        )
    outcome = await gateway.db.primary.fetchval(
        "SELECT outcome FROM audit_records WHERE request_id = $1", rid
    )
    assert outcome == "client.paid_at_out_of_window"
