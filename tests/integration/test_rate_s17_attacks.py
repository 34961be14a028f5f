"""Attacks on 93d334a (the inquiry's rate-table fingerprint, once a second:
``app/counter/member_reads.py`` ``DIGEST_EVERY_S``) and 5d45d6d (the settle wait after a rate
line on a connection of its own: ``app/rates/repository.py`` ``_settled``).

Each test here fails on 93d334a and on 0c8ad4d (app code unchanged since); the docstring of
each says what should happen and why. The last takes some 35 s: it outlasts the settle wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from app.counter.member_reads import DIGEST_EVERY_S
from app.counter.records import InquiryRequest
from app.db.local_failover import synchronous
from app.db.local_pair import SUPERUSER, LocalPair, PairRecord
from app.domain.months import Month
from app.errors import ServiceError, StoreUnavailable
from app.main import Gateway
from app.rates.service import RateChange
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, s40_person
from tests.support.fleet import instance
from tests.support.people import new_national_id, wait_replayed
from tests.support.rate_changes import (
    BAHT,
    S40_RATE,
    add_rate,
    confirm_in_background,
    confirm_months,
    rate_change_list,
    refund_list,
    sessions_where,
    until,
)
from tests.support.rest_api import replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

NOTE = "test: s17 rate attack"


async def _offer(
    gw: Gateway, partner: PartnerCredentials, nid: str, month: Month, *, section: int | None = None
) -> int:
    answer = await gw.counter.inquire(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=InquiryRequest(nid, section),
    )
    return {m.month: m.amount_satang for m in answer.months}[str(month)]


async def _inquire_no_one(gw: Gateway, partner: PartnerCredentials) -> str:
    """An inquiry for a well-formed national ID of no insured person (a mistyped ID)."""
    try:
        await gw.counter.inquire(
            caller=caller(),
            credentials=digest_token(partner.username, partner.password),
            request=InquiryRequest(new_national_id("3")),
        )
    except ServiceError as refused:
        return refused.code
    return "found"


async def _cleanup(gws: list[Gateway], owner_pool: asyncpg.Pool, nids: list[str]) -> None:
    await owner_pool.execute("DELETE FROM paid_months WHERE national_id = ANY($1::text[])", nids)
    await owner_pool.execute("DELETE FROM contribution_rates WHERE note = $1", NOTE)
    for gw in gws:
        gw.rates.invalidate()


# --- the fingerprint brought to an inquiry that prices nothing is lost ---------------------------
async def test_a_fingerprint_brought_to_an_inquiry_of_no_one_is_not_lost(
    settings: Settings,
    gateway: Gateway,
    partner: PartnerCredentials,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
) -> None:
    """docs/domain.md: "An inquiry's read brings, once a second, the fingerprint its standby
    holds, so an instance offers a rate added through another within a second or so of its
    standby replaying it". A counter clerk mistypes an ID (no such person), then types it
    right: the common pattern at a counter. A future cut of next month at option 2 (100 ->
    60 baht) has been added through another instance and the standby has replayed it. For
    six seconds, each second, the clerk's pair of inquiries goes to instance B. B's answers
    for the right ID should offer 60 (what B's own confirm takes) after a second or so.

    On 93d334a B offers 100 for the whole time (up to its book's 60 s TTL), and its confirm
    refuses the 100 it offered: the statement of the second that brings the fingerprint is
    the mistyped inquiry's, and app/counter/service.py ``inquire`` raises ``PersonNotFound``
    (likewise ``SectionMismatch``) *before* it hands ``meta.rate_digest`` to
    ``RateBook.table``; the right ID's statement, within the second, brings NULL
    (app/counter/member_reads.py ``_one_batch``: ``_digest_at`` is set when the statement is
    sent, whoever it serves), and NULL is read as "fresh"."""
    nxt = clock.month().plus(1)
    nid = await s40_person(gateway, option=2)
    try:
        async with instance(settings, clock, "s17-b") as b:
            assert await _offer(b, partner, nid, nxt) == S40_RATE[2]  # B's book: the old table
            change = await add_rate(gateway, 2, nxt, 60 * BAHT, retroactive=False, note=NOTE)
            _ = [o async for o in change.overpayments]
            async with gateway.db.primary.acquire() as conn:
                await wait_replayed(conn, replicas(gateway))
            offers: list[int] = []
            for _round in range(6):
                await asyncio.sleep(DIGEST_EVERY_S + 0.05)
                assert await _inquire_no_one(b, partner) == "client.person_not_found"
                offers.append(await _offer(b, partner, nid, nxt))
            try:
                taken: Any = await confirm_months(
                    b, partner, nid, [clock.month(), nxt], S40_RATE[2] + offers[-1]
                )
                took: Any = taken.amount_satang
            except ServiceError as refused:
                took = refused.code
            assert offers[-1] == 60 * BAHT, (
                f"B's offers for next month, a round a second after the standby replayed the"
                f" 60-baht cut: {offers}; its confirm of the last offer answered {took!r}"
            )
    finally:
        await _cleanup([gateway], owner_pool, [nid])


# --- an inquiry while the read for a new fingerprint is in flight ---------------------------------
async def test_an_inquiry_after_its_instance_learned_of_a_new_table_is_not_priced_by_the_old(
    settings: Settings,
    gateway: Gateway,
    partner: PartnerCredentials,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
) -> None:
    """The primary is slow to give instance B a connection (its confirms hold them all: a
    slow primary, a slow synchronous standby). A future cut of next month at option 2 (100 ->
    60 baht) was added through another instance and B's standby has replayed it. Inquiry 1 on
    B brings the new fingerprint, and B's book reads the primary for it, waiting for a
    connection. Inquiry 2, half a second later, on the same standby, should not be priced by
    the table B already knows is stale: it should wait for that read (as 5d45d6d made an
    inquiry showing the same fingerprint do); the primary answers 0.3 s later.

    On 93d334a inquiry 2 offers 100 at once, and B's confirm (once the primary answers)
    refuses it: its statement brought NULL instead of the fingerprint
    (app/counter/member_reads.py ``_one_batch``), and app/rates/book.py ``_fresh`` treats
    ``digest is None`` as fresh, so it skips the lock that inquiry 1's read holds. Before
    93d334a every statement brought the fingerprint, and inquiry 2 waited for the read."""
    nxt = clock.month().plus(1)
    nid = await s40_person(gateway, option=2)
    held: list[Any] = []
    first: asyncio.Task[int] | None = None
    try:
        async with instance(settings, clock, "s17-slow", primary_pool_max=2) as b:
            assert await _offer(b, partner, nid, nxt) == S40_RATE[2]  # B's book: the old table
            change = await add_rate(gateway, 2, nxt, 60 * BAHT, retroactive=False, note=NOTE)
            _ = [o async for o in change.overpayments]
            async with gateway.db.primary.acquire() as conn:
                await wait_replayed(conn, replicas(gateway))
            # Every connection of B's primary pool is busy (as with confirms in a slow commit).
            for _ in range(b.db.primary.get_max_size()):
                held.append(await b.db.primary.acquire())
            await asyncio.sleep(DIGEST_EVERY_S + 0.05)  # the next statement brings the fingerprint
            first = asyncio.create_task(_offer(b, partner, nid, nxt))
            await asyncio.sleep(0.5)
            assert not first.done(), "inquiry 1 should be waiting for the primary"
            asked = asyncio.create_task(_offer(b, partner, nid, nxt))
            await asyncio.sleep(0.3)
            for conn in held:  # the primary answers again
                await b.db.primary.release(conn)
            held.clear()
            learned = await asyncio.wait_for(first, 10)
            second = await asyncio.wait_for(asked, 10)
            try:
                taken: Any = await confirm_months(
                    b, partner, nid, [clock.month(), nxt], S40_RATE[2] + second
                )
                took: Any = taken.amount_satang
            except ServiceError as refused:
                took = refused.code
            assert second == 60 * BAHT, (
                f"inquiry 2 offered {second} while B's book was reading the table inquiry 1"
                f" learned of (inquiry 1 then offered {learned}); B's confirm of inquiry 2's"
                f" offer answered {took!r}"
            )
    finally:
        if first is not None and not first.done():
            first.cancel()
        await _cleanup([gateway], owner_pool, [nid])


# --- the settle wait's connection lost: the cut's answer misses a payment -------------------------
@pytest.fixture
def synchronous_standby(pg_pair: tuple[LocalPair, PairRecord]) -> Iterator[None]:
    pair, _ = pg_pair
    synchronous(pair, on=True)
    try:
        yield
    finally:
        synchronous(pair, on=False)


async def test_a_cut_whose_settle_wait_lost_its_connection_still_lists_a_payment_in_flight(
    pg_pair: tuple[LocalPair, PairRecord],
    synchronous_standby: None,
    settings: Settings,
    gateway: Gateway,
    partner: PartnerCredentials,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
    replica_superuser: asyncpg.Connection,
) -> None:
    """A confirm of this month at option 2 (100 baht) has read the fingerprint (no cut yet)
    and is in its COMMIT, waiting for a slow standby. A retroactive cut to 60 baht is added
    meanwhile; while its settle wait polls for that payment, the wait's connection is lost
    (``pg_terminate_backend``: a connection killed by a DBA, a pooler, a network blip; the
    same happens when the pool hands the wait a connection the server closed before, after a
    restart). The confirm is then answered *paid, 100 baht*. The refund listing owes 40
    baht; the cut's answer should list it too (app/rates/repository.py ``insert_rate``:
    "once those have ended, what is listed of the paid months ... holds their payments").
    The wait is a read: it can be asked again on another connection until its deadline.

    On 93d334a the answer lists nothing, and its tally claims to be complete:
    ``_settled`` catches the failure, logs it and returns at once (``except Exception``),
    so the paid months are read while the payment is still uncommitted."""
    current = clock.month()
    nid = await s40_person(gateway, option=2)
    _, record = pg_pair
    superuser = await asyncpg.connect(record.dsn(record.primary_port, role=SUPERUSER))
    change: RateChange | None = None
    confirming: asyncio.Task[Any] | None = None
    try:
        async with instance(settings, clock, "s17-commit-12", payment_commit_wait_s=12.0) as slow:
            await replica_superuser.execute("SELECT pg_wal_replay_pause()")
            confirming = confirm_in_background(slow, partner, nid, current, 100 * BAHT)
            in_sync_wait = sessions_where(superuser, "wait_event = 'SyncRep' AND query = 'COMMIT'")
            await until(in_sync_wait, "the confirm waits for its standby in COMMIT", 5.0)
            adding = asyncio.create_task(
                add_rate(gateway, 2, current, 60 * BAHT, retroactive=True, note=NOTE)
            )
            pid: int | None = None

            async def settling() -> bool:
                nonlocal pid
                pid = await superuser.fetchval(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE query LIKE '%AS w(pid, xid)%' AND pid <> pg_backend_pid() LIMIT 1"
                )
                return pid is not None

            await until(settling, "the rate change polls for the open payment", 5.0)
            await superuser.execute("SELECT pg_terminate_backend($1)", pid)
            change = await asyncio.wait_for(adding, 40)
            listed = await rate_change_list(change, nid)  # streamed at once, as REST does
            await replica_superuser.execute("SELECT pg_wal_replay_resume()")
            try:
                outcome: Any = await asyncio.wait_for(confirming, 15)
            except ServiceError as refused:
                outcome = refused
        owed = await refund_list(gateway, current, nid)
        # Paid, or (the standby paused past the confirm's commit wait, which the settle wait
        # now outlasts) committed on the primary and answered "retry": either way on the ledger.
        assert getattr(outcome, "amount_satang", None) == 100 * BAHT or (
            isinstance(outcome, StoreUnavailable)
        ), outcome
        assert owed == [(str(current), 40 * BAHT, "rate_cut")], owed
        assert listed == owed, (
            f"the cut's answer lists {listed} (its settle wait's connection was lost);"
            f" the refund listing owes {owed}"
        )
    finally:
        with contextlib.suppress(Exception):
            await replica_superuser.execute("SELECT pg_wal_replay_resume()")
        if confirming is not None and not confirming.done():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(confirming, 15)
        await superuser.close()
        await _cleanup([gateway], owner_pool, [nid])


# --- a payment longer than the settle wait, on an instance with longer statements ----------------
async def test_a_cut_lists_a_payment_of_an_instance_whose_statements_may_outlast_the_settle_wait(
    pg_pair: tuple[LocalPair, PairRecord],
    settings: Settings,
    gateway: Gateway,
    partner: PartnerCredentials,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
) -> None:
    """app/rates/repository.py ``SETTLE_S``: the wait is 30 s "so that a payment of any
    instance, whatever its own commit wait, has ended or been given up by its counter". A
    counter that gives up does not end the payment: the transaction goes on, commits, and the
    counter's status call finds it paid. A fleet may run with a longer
    ``SSOGW_COMMAND_TIMEOUT_S`` (45 s here); a confirm
    of this month at option 2 (100 baht) has read the fingerprint (no cut yet) and its insert
    waits for a lock on ``payments`` (a non-concurrent index build of a migration, here a
    SHARE lock held 31 s). A retroactive cut to 60 baht is added through another instance
    meanwhile; the confirm then commits *paid, 100 baht*. The refund listing owes 40 baht;
    the cut's answer should list it too: the settle wait covers the statements a payment may
    still make after it read the fingerprint (three command timeouts and the commit's wait,
    app/main/gateway.py), the fleet's instances sharing their settings.

    On 93d334a the cut's answer lists nothing: ``_settled`` gives up after ``settle_s`` (30 s,
    app/main/gateway.py ``max(SETTLE_S, payment_commit_wait_s + 5.0)``), a bound derived from
    the counter's patience and the adding instance's commit wait, while nothing on the server
    bounds how long another instance's payment transaction lasts."""
    current = clock.month()
    nid = await s40_person(gateway, option=2)
    _, record = pg_pair
    superuser = await asyncpg.connect(record.dsn(record.primary_port, role=SUPERUSER))
    locker = await asyncpg.connect(record.dsn(record.primary_port, role=SUPERUSER))
    confirming: asyncio.Task[Any] | None = None
    try:
        async with (
            instance(settings, clock, "s17-long", command_timeout_s=45.0) as slow,
            instance(settings, clock, "s17-long-adds", command_timeout_s=45.0) as adder,
        ):
            await locker.execute("BEGIN; LOCK TABLE payments IN SHARE MODE")
            confirming = confirm_in_background(slow, partner, nid, current, 100 * BAHT)
            insert_waits = sessions_where(
                superuser, "wait_event_type = 'Lock' AND application_name = 'ssogw-payment'"
            )
            await until(insert_waits, "the confirm's insert waits for the lock", 5.0)
            started = time.monotonic()

            async def index_build_ends() -> None:
                await asyncio.sleep(31.0)
                await locker.execute("ROLLBACK")

            ending = asyncio.create_task(index_build_ends())
            change = await add_rate(adder, 2, current, 60 * BAHT, retroactive=True, note=NOTE)
            settled_after = time.monotonic() - started
            listed = await rate_change_list(change, nid)  # streamed at once, as REST does
            await ending
            try:
                outcome: Any = await asyncio.wait_for(confirming, 15)
            except ServiceError as refused:
                outcome = refused
        owed = await refund_list(gateway, current, nid)
        assert getattr(outcome, "amount_satang", None) == 100 * BAHT, outcome
        assert owed == [(str(current), 40 * BAHT, "rate_cut")], owed
        assert listed == owed, (
            f"the cut's answer (after a {settled_after:.1f} s wait) lists {listed};"
            f" the refund listing owes {owed}"
        )
    finally:
        with contextlib.suppress(Exception):
            await locker.execute("ROLLBACK")
        if confirming is not None and not confirming.done():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(confirming, 15)
        await locker.close()
        await superuser.close()
        await _cleanup([gateway], owner_pool, [nid])
