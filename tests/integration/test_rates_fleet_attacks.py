"""Attacks on 3712e7e and 2f70d4e: the rate lines' advisory lock (``RATE_LINES_LOCK``, held
shared by every confirm from its person's lock to its commit, taken alone by the insert of a
rate line), the RateBook's ordered reads and ``table(lines=...)``, and the inquiry's count of the
rate lines.

Each test here failed on 2f70d4e; the docstring of each says what should happen and why. The
lock is gone since: adding a rate line now waits, after its commit, for the transactions open
then (``app.rates.repository``), and holds up no one; the count is the table's fingerprint.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg
import pytest

from app.counter import ledger as ledger_module
from app.counter.records import ConfirmResult
from app.domain.months import Month
from app.errors import ServiceError
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import person_locked, s40_person
from tests.support.fleet import instance
from tests.support.people import wait_replayed
from tests.support.rate_changes import BAHT, S40_RATE, add_rate, confirm_months, offered, until
from tests.support.rest_api import replicas

pytestmark = pytest.mark.db

NOTE = "test: rates attack"


async def _rate_line_added(pool: asyncpg.Pool) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT count(*) FROM contribution_rates WHERE note = 'test: rates attack'"
        )
    )


async def _timed_confirm(
    gw: Gateway, partner: PartnerCredentials, nid: str, months: list[Month], amount: int
) -> tuple[float, ConfirmResult | ServiceError]:
    started = time.monotonic()
    try:
        outcome: ConfirmResult | ServiceError = await asyncio.wait_for(
            confirm_months(gw, partner, nid, months, amount), 30
        )
    except ServiceError as refused:
        outcome = refused
    return time.monotonic() - started, outcome


async def _cleanup(
    gw: Gateway, owner_pool: asyncpg.Pool, nids: list[str], tasks: list[asyncio.Task[Any]]
) -> None:
    for task in tasks:
        if not task.done():
            task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):  # whatever it ended with
            await task
    await owner_pool.execute("DELETE FROM paid_months WHERE national_id = ANY($1::text[])", nids)
    await owner_pool.execute("DELETE FROM contribution_rates WHERE note = 'test: rates attack'")
    gw.rates.invalidate()


# --- a stuck confirm, a rate line, and every other confirm ----------------------------------------
@pytest.mark.serial
async def test_a_rate_waiting_for_one_slow_confirm_holds_up_no_confirm_of_another_person(
    gateway: Gateway,
    partner: PartnerCredentials,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DOMAIN.md, The counter transaction: "Counters time out after about 30 s; answer in
    milliseconds." A confirm for person A is slow between its lock and its commit (here
    paused before its insert, as a commit waiting for a standby or a slow audit insert is).
    An officer adds a future rate line meanwhile: the insert waits for A's confirm, which is
    what 3712e7e wants. But a confirm for B, an unrelated person, must still be answered in
    milliseconds: it has nothing to do with A, and the rate is for a month years away.

    On 2f70d4e B's confirm waits until the rate insert gives up (the pool's command timeout,
    5 s) or A commits: the insert waits for ``RATE_LINES_LOCK`` exclusively
    (app/rates/repository.py ``insert_rate``, a plain ``pg_advisory_xact_lock`` with no
    lock timeout), and PostgreSQL queues every later shared request (each confirm's person
    lock, app/counter/ledger.py ``_LOCK``) behind a waiting exclusive one. One slow confirm
    plus one rate administration stalls every confirm of the fleet."""
    current = clock.month()
    a = await s40_person(gateway, option=1)
    b = await s40_person(gateway, option=1)
    at_insert, go = asyncio.Event(), asyncio.Event()
    original = ledger_module.LedgerTx.insert_payment

    async def paused(self: Any, new: Any, record: Any) -> Any:
        if new.national_id == a:
            at_insert.set()
            await go.wait()
        return await original(self, new, record)

    monkeypatch.setattr(ledger_module.LedgerTx, "insert_payment", paused)
    slow = asyncio.create_task(confirm_months(gateway, partner, a, [current], S40_RATE[1]))
    tasks: list[asyncio.Task[Any]] = [slow]
    try:
        await asyncio.wait_for(at_insert.wait(), 10)
        adding = asyncio.create_task(
            add_rate(gateway, 1, current.plus(40), 65 * BAHT, retroactive=False, note=NOTE)
        )
        tasks.append(adding)
        await until(lambda: _rate_line_added(owner_pool), "the rate line is added")
        took, outcome = await _timed_confirm(gateway, partner, b, [current], S40_RATE[1])
        go.set()
        await asyncio.wait_for(asyncio.gather(slow, adding, return_exceptions=True), 15)
        assert isinstance(outcome, ConfirmResult), outcome
        assert took < 1.0, f"B's confirm took {took:.1f} s behind A's and the rate insert"
    finally:
        go.set()
        await _cleanup(gateway, owner_pool, [a, b], tasks)


# --- a confirm waiting for its person's row holds the shared lock while it waits ------------------
@pytest.mark.serial
async def test_a_confirm_waiting_for_its_persons_row_does_not_stall_the_rates_and_the_fleet(
    gateway: Gateway,
    partner: PartnerCredentials,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
) -> None:
    """A person's row is locked by another transaction of the primary (an officer's change of
    the person, an import, a second counter's confirm for the same person): a confirm for
    that person waits for the row, as it always did, and only that person's payments wait.

    On 2f70d4e the confirm takes ``RATE_LINES_LOCK`` shared *before* its row lock, in the same
    statement (app/counter/ledger.py ``_LOCK``: the target list, with
    ``pg_advisory_xact_lock_shared``, is computed by the scan below the row-locking node), so
    it holds the rate lines' lock while it waits for the row; a rate line added then waits
    for it, and every confirm of every other person queues behind that waiting insert: B's
    confirm, for an unrelated person, waits for seconds. A confirm that has not got its
    person yet has counted nothing and need hold nothing."""
    current = clock.month()
    a = await s40_person(gateway, option=1)
    b = await s40_person(gateway, option=1)
    tasks: list[asyncio.Task[Any]] = []
    try:
        async with person_locked(gateway.db.primary, a):
            waiting = asyncio.create_task(
                confirm_months(gateway, partner, a, [current], S40_RATE[1])
            )
            tasks.append(waiting)
            await asyncio.sleep(0.2)  # A's confirm waits for A's row
            adding = asyncio.create_task(
                add_rate(gateway, 1, current.plus(40), 65 * BAHT, retroactive=False, note=NOTE)
            )
            tasks.append(adding)
            await until(lambda: _rate_line_added(owner_pool), "the rate line is added")
            took, outcome = await _timed_confirm(gateway, partner, b, [current], S40_RATE[1])
        assert isinstance(outcome, ConfirmResult), outcome
        assert took < 1.0, f"B's confirm took {took:.1f} s behind A's row and the rate insert"
    finally:
        await _cleanup(gateway, owner_pool, [a, b], tasks)


# --- a line removed by an operator, and one added by another instance -----------------------------
async def test_a_rate_added_by_another_instance_after_a_line_was_removed_prices_the_confirm(
    settings: Settings,
    gateway: Gateway,
    partner: PartnerCredentials,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
) -> None:
    """app/rates/repository.py ``insert_rate``: "a payment is priced either by a table without
    it, and committed before it, or by one with it"; app/rates/book.py: "a line removed by an
    operator is seen within ``ttl_s``, or at the next confirm".

    A mistaken retroactive rate for this month at option 1 (65 baht) was added through this
    instance, which read it. An operator removes the line with the owner's role, and SSO adds
    the right one (60 baht) through another instance. The primary now prices this month at 60
    baht; this instance's inquiry should offer 60 and its confirm take 60.

    On 2f70d4e this instance offers 65, the removed line's price, and its confirm refuses the
    60 baht the primary's table asks (it takes 65, after the 60-baht rate committed): the
    table's freshness is judged by the number of lines alone (app/counter/ledger.py
    ``_CONFIRM_READ`` ``count(*)``, app/counter/posting.py ``read.rate_lines !=
    len(rates.rates)``, app/rates/book.py ``_fresh``), and one removed plus one added leaves
    the count as it was, so neither the confirm nor the inquiry reads the table again until
    the TTL (60 s) is over."""
    current = clock.month()
    nid = await s40_person(gateway, option=1)
    mistaken = await add_rate(gateway, 1, current, 65 * BAHT, retroactive=True, note=NOTE)
    _ = [o async for o in mistaken.overpayments]
    try:
        assert (await gateway.rates.table()).amount(40, 1, current) == 65 * BAHT
        await owner_pool.execute("DELETE FROM contribution_rates WHERE id = $1", mistaken.record.id)
        async with instance(settings, clock, "rates-other") as other:
            right = await add_rate(other, 1, current, 60 * BAHT, retroactive=True, note=NOTE)
            _ = [o async for o in right.overpayments]
            async with other.db.primary.acquire() as conn:
                await wait_replayed(conn, replicas(other))
        offer = await offered(gateway, partner, nid, current, becomes=60 * BAHT)
        try:
            taken: ConfirmResult | ServiceError = await confirm_months(
                gateway, partner, nid, [current], 60 * BAHT
            )
        except ServiceError as refused:
            taken = refused
        took = taken.amount_satang if isinstance(taken, ConfirmResult) else taken.code
        assert (offer, took) == (60 * BAHT, 60 * BAHT)
    finally:
        await _cleanup(gateway, owner_pool, [nid], [])
