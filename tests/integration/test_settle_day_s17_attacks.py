"""Attacks on settlement and the business day: what a day's settlement holds once it is taken.

Every test pins the business clock (``clock.at`` / ``clock.set``) and calls the services as the
adapters and the command line do, on the session's real primary and replica.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, time, timedelta

import asyncpg
import httpx
import pytest

from app.counter.records import CancelRequest, ConfirmResult, TxnState
from app.domain.calendar import BANGKOK
from app.domain.months import Month
from app.errors import CancelNotAllowed, InvalidInput, ServiceError
from app.main import Gateway
from app.settlement.reconciliation import Outcome
from tests.conftest import PartnerCredentials
from tests.integration.test_settlement_rest import api, bearer
from tests.support.clock import PinnedClock, business_clock
from tests.support.counter_calls import (
    caller,
    confirm_request,
    person_locked,
    s40_person,
    settlement_round_trip,
    waiting_on_person_lock,
)
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

CENT = 100
NID_OK = b"3100600445635"
__all__ = ["api"]  # the REST fixture, shared with test_settlement_rest


def clock_day():  # type: ignore[no-untyped-def]
    return business_clock().today()


async def _waiting_on_lock(gateway: Gateway, table: str) -> None:
    """Return once a statement on ``table`` waits for a lock (the call is queued behind it)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1"
    async with asyncio.timeout(10):
        while True:
            if await gateway.db.primary.fetchval(query, f"%{table}%"):
                return
            await asyncio.sleep(0.02)


@asynccontextmanager
async def payment_locked(
    pool: asyncpg.Pool, payment_id: int
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """The payment's row locked by another session's open transaction; yields its rollback."""
    holder = await pool.acquire()
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE", payment_id)
        yield held.rollback
    finally:
        await pool.release(holder)


async def test_a_confirm_of_a_day_committed_after_that_days_settlement_is_in_no_settlement(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """The confirm reads the clock (22:59:59: business day D) before it queues for the person's
    lock; it commits after D's cut-off, after D's settlement was taken at 23:05:30 (the day's
    file exported and imported: 0 lines). The payment is stored with business day D, so D's
    settlement never holds it and no other day's ever will: its satang are in no settlement."""
    day = clock.today()
    nid = await s40_person(gateway)
    token = digest_token(partner.username, partner.password)
    with clock.at(time(22, 59, 59), on=day):
        request = confirm_request(nid, [str(Month.of(day))], 70 * CENT)
        async with person_locked(gateway.db.primary, nid) as let_go:
            confirm = asyncio.ensure_future(
                gateway.counter.confirm(caller=caller(), credentials=token, request=request)
            )
            await waiting_on_person_lock(gateway)
            clock.set(datetime.combine(day, time(23, 5, 30), tzinfo=BANGKOK))
            summary, _, _ = await settlement_round_trip(
                gateway, partner=partner.name, business_date=day, now=True
            )
            assert summary.lines == 0  # nothing of day D was committed when D was settled
            await let_go()
            try:
                outcome: ConfirmResult | ServiceError = await confirm
            except ServiceError as exc:
                outcome = exc
    if isinstance(outcome, ConfirmResult) and outcome.business_date == day:
        latest = await gateway.settlement_files.report_for(partner=partner.name, business_date=day)
        settled = sum(t.gateway_satang for t in latest.record.summary.totals.values())
        assert settled == 70 * CENT, (
            f"payment {outcome.receipt_no} of business day {day} committed after that day's "
            f"cut-off and settlement; the day's settlement holds {settled} satang of it"
        )


async def test_a_cancel_that_waited_past_the_cut_off_voids_a_payment_already_settled(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """The cancel reads the clock (22:59:59, before the cut-off) and only then waits for the
    payment's row; meanwhile the day closes and its settlement (taken at 23:05:30) matches the
    payment. The cancel then goes through, judged at the instant read before the wait: a
    settled payment is voided, and its ``cancelledAt`` says 22:59:59."""
    day = clock.today()
    nid = await s40_person(gateway)

    def token():  # type: ignore[no-untyped-def]
        return digest_token(partner.username, partner.password)

    with clock.at(time(10, 0), on=day):
        request = confirm_request(nid, [str(Month.of(day))], 70 * CENT)
        paid = await gateway.counter.confirm(caller=caller(), credentials=token(), request=request)
    assert paid.business_date == day
    payment_id = await gateway.db.primary.fetchval(
        "SELECT id FROM payments WHERE partner_txn_id = $1 AND national_id = $2",
        request.partner_txn_id, nid,
    )  # fmt: skip
    with clock.at(time(22, 59, 59), on=day):
        async with payment_locked(gateway.db.primary, payment_id) as let_go:
            cancel = asyncio.ensure_future(
                gateway.counter.cancel(
                    caller=caller(),
                    credentials=token(),
                    request=CancelRequest(request.partner_txn_id, "wrong month"),
                )
            )
            await _waiting_on_lock(gateway, "payments")
            clock.set(datetime.combine(day, time(23, 5, 30), tzinfo=BANGKOK))
            _, _, report = await settlement_round_trip(
                gateway, partner=partner.name, business_date=day, now=True
            )
            matched = sum(t.matched_satang for t in report.record.summary.totals.values())
            assert matched == 70 * CENT  # the day is settled with the payment in it
            await let_go()
            try:
                await cancel
                cancelled = True
            except CancelNotAllowed:
                cancelled = False
    state = await gateway.db.primary.fetchval(
        "SELECT state FROM payments WHERE id = $1", payment_id
    )
    assert not cancelled and state == TxnState.CONFIRMED.value, (
        f"a payment settled (matched) at 23:05:30 was cancelled afterwards: state {state}"
    )


@pytest.mark.parametrize(
    "stem",
    [
        "Counter Service Co. ",  # the 20th character is a space: the header's code is cut there
        "CP All – 7-Eleven TH",  # an en dash, which TIS-620 does not have: written as '?'
    ],
)
async def test_the_gateways_own_bank_file_of_a_partner_is_taken_back_whatever_its_name(
    gateway: Gateway, clock: PinnedClock, stem: str
) -> None:
    """The export writes the partner code as ``partner[:20]`` encoded in TIS-620; the import
    compares the header's code, padding stripped and decoded, with ``partner[:20]``. A name
    whose 20th character is a space, or holding a character TIS-620 lacks, never compares
    equal: the gateway refuses its own file (and a partner's file written as formats.md says,
    "the gateway's partner name (first 20 characters)") for that partner, every day."""
    name = f"{stem}{uuid.uuid4().hex[:8]}"
    issued = await gateway.registry.add_partner(
        name=name, cidrs=["127.0.0.0/8", "::1/128"], rate_limit=10_000
    )
    nid = await s40_person(gateway)
    day = clock.today()
    with clock.at(time(10, 0), on=day):
        request = confirm_request(nid, [str(Month.of(day))], 70 * CENT)
        await gateway.counter.confirm(
            caller=caller(), credentials=digest_token(issued.username, issued.password),
            request=request,
        )  # fmt: skip
    export = io.BytesIO()
    with clock.at(time(9, 0), on=day + timedelta(days=1)):  # once the day has closed
        await gateway.settlement_files.export(
            export.write, partner=name, business_date=day, file_format="bank"
        )
        report = await gateway.settlement_files.import_file(
            io.BytesIO(export.getvalue()), partner=name, business_date=day, file_format="bank"
        )
    assert report.record.summary.counts[Outcome.MATCHED] == 1


async def test_a_csv_file_with_cr_line_ends_is_a_client_problem_not_a_server_failure(
    gateway: Gateway, partner: PartnerCredentials, api: httpx.AsyncClient, client_token: str
) -> None:
    """A spreadsheet's "CSV (Macintosh)" ends rows with CR alone. The CSV reader lets the csv
    module's ``_csv.Error`` escape, so the upload is answered 500 ``server.internal`` (and
    logged as a defect) instead of 422 ``client.invalid_settlement_file`` naming the line."""
    nid = NID_OK
    body = (b"partner_txn_id,national_id,section,months,amount\r"
            b"T1," + nid + b",40,2024-06,70.00\r")  # fmt: skip
    answer = await api.post(
        "/api/v1/settlements",
        params={"partner": partner.name, "businessDate": str(clock_day())},
        content=body,
        headers=bearer(client_token) | {"Content-Type": "text/csv"},
    )
    assert answer.status_code == 422, (answer.status_code, answer.text)
    assert answer.json()["code"] == "client.invalid_settlement_file"


async def test_a_day_is_settled_only_once_it_has_closed(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """An import (or export) of business day D while D was still open was taken: at 22:00 the
    day's file matched its one payment; a payment confirmed at 22:30 of D was then in no
    settlement, and one cancelled at 22:45 stayed counted as settled. A day is settled only
    once it has closed: its cut-off and the grace for payments still committing after it
    (``SSOGW_SETTLEMENT_GRACE_S``); then the settlement holds what the day's ledger holds."""
    day = clock.today()
    first, second = await s40_person(gateway), await s40_person(gateway)
    month = str(Month.of(day))

    def token():  # type: ignore[no-untyped-def]
        return digest_token(partner.username, partner.password)

    with clock.at(time(21, 0), on=day):
        early = confirm_request(first, [month], 70 * CENT)
        await gateway.counter.confirm(caller=caller(), credentials=token(), request=early)
    grace = gateway.settings.settlement_grace_s
    closes = datetime.combine(day, time(23, 0), tzinfo=BANGKOK) + timedelta(seconds=grace)
    for instant in (datetime.combine(day, time(22, 0), tzinfo=BANGKOK),
                    closes - timedelta(seconds=1)):  # fmt: skip
        with clock.at(instant.timetz(), on=day):
            with pytest.raises(InvalidInput) as refused:
                await settlement_round_trip(
                    gateway, partner=partner.name, business_date=day, now=True
                )
            assert refused.value.details["reason"] == "day_not_closed"
            with pytest.raises(InvalidInput):
                await gateway.settlement_files.import_file(
                    io.BytesIO(b""), partner=partner.name, business_date=day
                )
    with clock.at(time(22, 30), on=day):
        late = await gateway.counter.confirm(
            caller=caller(), credentials=token(),
            request=confirm_request(second, [month], 70 * CENT),
        )  # fmt: skip
    with clock.at(time(22, 45), on=day):
        await gateway.counter.cancel(
            caller=caller(), credentials=token(),
            request=CancelRequest(early.partner_txn_id, "wrong person"),
        )  # fmt: skip
    assert late.business_date == day
    with clock.at(closes.timetz(), on=day):
        summary, _, report = await settlement_round_trip(
            gateway, partner=partner.name, business_date=day, now=True
        )
    assert (summary.lines, summary.total_satang) == (1, 70 * CENT)
    lines = {line.partner_txn_id: line.outcome for line in report.lines}
    assert lines == {late.partner_txn_id: Outcome.MATCHED}, lines


async def test_the_gateways_own_csv_file_matches_a_transaction_id_starting_with_an_apostrophe(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """A partner transaction id ``'-000123`` (printable, taken by the confirm) is exported as
    ``''-000123`` and read back as ``''-000123``: the gateway's own CSV file of the day does not
    match its own ledger (one ``only_in_file``, one ``only_in_gateway``, 70.00 baht apart)."""
    day = clock.today()
    nid = await s40_person(gateway)
    txn = f"'-{uuid.uuid4().hex[:12]}"
    with clock.at(time(10, 0), on=day):
        request = confirm_request(nid, [str(Month.of(day))], 70 * CENT, txn=txn)
        await gateway.counter.confirm(
            caller=caller(), credentials=digest_token(partner.username, partner.password),
            request=request,
        )  # fmt: skip
    summary, _, report = await settlement_round_trip(
        gateway, partner=partner.name, business_date=day
    )
    assert summary.lines == 1
    counts = report.record.summary.counts
    assert counts[Outcome.MATCHED] == 1 and report.record.summary.mismatches == 0, dict(counts)
