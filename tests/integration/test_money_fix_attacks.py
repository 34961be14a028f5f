"""Attacks on eed1875 (a paid month keeps its option and surcharge; a confirm prices by the
primary's rate table): a rate added while a confirm is in flight, and the RateBook's ``adopt``
racing the rate administration on the same instance.

Each test here fails on eed1875; the docstring of each says what should happen and why.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.counter import ledger as ledger_module
from app.counter.records import ConfirmResult, InquiryRequest
from app.domain.months import Month
from app.errors import ServiceError
from app.main import Gateway
from app.rates.service import RateChange, RateRequest
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, s40_person
from tests.support.fleet import instance
from tests.support.people import add_person, end_membership, wait_replayed
from tests.support.rate_changes import (
    BAHT,
    S40_RATE,
    add_rate,
    confirm_months,
    rate_change_list,
    refund_list,
)
from tests.support.rest_api import replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


# --- a rate added while a confirm is in flight ---------------------------------------------------
async def test_a_cut_added_while_a_confirm_is_in_flight_is_refunded_by_both_lists(
    gateway: Gateway,
    partner: PartnerCredentials,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DOMAIN.md, Rates: "A retroactive cut after people paid creates an overpayment per person
    and month, to be refunded; the system must be able to compute and list those."

    A confirm of this month at option 2 (100 baht) has read the rate lines under its lock
    (``_CONFIRM_READ``: N lines, as its table) and is about to insert; a retroactive cut of
    this month to 60 baht is added and its answer listed; then the confirm commits, at 100
    baht, after the cut. Either the confirm should have been priced by the cut (refused: the
    amount is 60 now) or the cut's answer should list the month (40 baht owed), as the refund
    listing does.

    On eed1875 the confirm takes 100 baht after the cut committed, the refund listing owes
    40.00 for the month, and the cut's answer (app/rates/service.py ``_overpayments``) never
    names it: the rate count is read once, without any lock that orders it against
    ``insert_rate`` (app/counter/ledger.py ``_CONFIRM_READ``, app/counter/posting.py ``post``),
    so the two lists give different answers for the same month. Now adding the cut waits,
    after its commit, for the transactions open then (the confirm's among them), so its answer
    sees the payment (app/rates/repository.py ``insert_rate``)."""
    current = clock.month()
    nid = await s40_person(gateway, option=2)
    at_insert, go = asyncio.Event(), asyncio.Event()
    original = ledger_module.LedgerTx.insert_payment

    async def paused(self: Any, new: Any, record: Any) -> Any:
        if new.national_id == nid:
            at_insert.set()
            await go.wait()
        return await original(self, new, record)

    monkeypatch.setattr(ledger_module.LedgerTx, "insert_payment", paused)
    task = asyncio.create_task(confirm_months(gateway, partner, nid, [current], S40_RATE[2]))
    change: RateChange | None = None
    try:
        await asyncio.wait_for(at_insert.wait(), 10)
        adding = asyncio.create_task(add_rate(gateway, 2, current, 60 * BAHT, retroactive=True))
        await asyncio.sleep(0.5)
        assert not adding.done(), "adding the cut waits for the confirm open when it committed"
        go.set()
        try:
            outcome: ConfirmResult | ServiceError = await asyncio.wait_for(task, 10)
        except ServiceError as refused:
            outcome = refused
        change = await asyncio.wait_for(adding, 10)
        listed = await rate_change_list(change, nid)
        owed = await refund_list(gateway, current, nid)
        if isinstance(outcome, ConfirmResult):
            assert outcome.amount_satang == S40_RATE[2]
            assert owed == [(str(current), 40 * BAHT, "rate_cut")]  # the refund listing owes it
            # ... and so must the cut's own answer, for the same month.
            assert listed == owed, (listed, owed)
    finally:
        go.set()
        if not task.done():
            task.cancel()
        await owner_pool.execute("DELETE FROM paid_months WHERE national_id = $1", nid)
        if change is not None:
            await owner_pool.execute(
                "DELETE FROM contribution_rates WHERE id = $1", change.record.id
            )
            gateway.rates.invalidate()


# --- adopt() after the rate administration's invalidate() ----------------------------------------
async def test_a_table_adopted_by_a_confirm_does_not_hide_a_cut_from_its_own_answer(
    gateway: Gateway,
    partner: PartnerCredentials,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The answer to adding a rate lists the months it overpays (DOMAIN.md, Rates: "the system
    must be able to compute and list those"; app/rates/service.py: "The answer to adding a rate
    lists them").

    Person A paid this month at option 3 (300 baht). Another instance added a rate line, so
    this instance's cached table is one line short. A confirm on this instance sees the count
    differ and reads the rates on its transaction (without the cut, which is not committed
    yet); meanwhile a retroactive cut of option 3 for this month (300 -> 180) is added through
    this same instance, which invalidates its RateBook. The confirm then ``adopt``s the table
    it read, with a fresh load time, over the invalidation, and the cut's answer prices the
    paid months by that adopted table, which lacks the cut: A's 120 baht is not listed (the
    refund listing, which reads the rates afresh, owes it).

    Cause: app/rates/book.py ``adopt`` overwrites the table and ``_loaded_at`` unconditionally
    (no lock, no check that what it adopts is at least as new as an invalidation since), and
    app/rates/service.py ``_overpayments`` trusts ``RateBook.table()``."""
    current = clock.month()
    a = await s40_person(gateway, option=3)
    await confirm_months(gateway, partner, a, [current], S40_RATE[3])
    b = await s40_person(gateway, option=1)
    await gateway.rates.table()  # this instance's cached table (N lines)
    # "Another instance" adds a line that changes no price (option 1, 70 baht, a far month).
    far = current.plus(40)
    other = await owner_pool.fetchval(
        "INSERT INTO contribution_rates (section, s40_option, first_month, last_month,"
        " amount_satang, government_satang, note) VALUES (40, 1, $1, $1, 7000, 3000,"
        " 'test: other instance') RETURNING id",
        far.first_day,
    )
    loaded, go = asyncio.Event(), asyncio.Event()
    original = ledger_module.LedgerTx.load_rates

    async def slow(self: Any) -> Any:
        rates = await original(self)
        loaded.set()
        await go.wait()
        return rates

    monkeypatch.setattr(ledger_module.LedgerTx, "load_rates", slow)
    task = asyncio.create_task(confirm_months(gateway, partner, b, [current], S40_RATE[1]))
    change: RateChange | None = None
    try:
        await asyncio.wait_for(loaded.wait(), 10)  # the confirm read N + 1 lines
        adding = asyncio.create_task(
            add_rate(gateway, 3, current, 180 * BAHT, retroactive=True)
        )  # N + 2
        await asyncio.sleep(0.5)
        assert not adding.done(), "adding the cut waits for the confirm open when it committed"
        go.set()
        paid = await asyncio.wait_for(task, 10)  # keeps its N + 1 lines
        change = await asyncio.wait_for(adding, 10)  # then the cut, invalidating them
        assert paid.amount_satang == S40_RATE[1]
        owed = await refund_list(gateway, current, a)
        assert owed == [(str(current), 120 * BAHT, "rate_cut")]  # read afresh: owed
        listed = await rate_change_list(change, a)
        assert listed == owed, (listed, owed)
    finally:
        go.set()
        if not task.done():
            task.cancel()
        await owner_pool.execute(
            "DELETE FROM paid_months WHERE national_id = ANY($1::text[])", [a, b]
        )
        ids = [other] + ([change.record.id] if change is not None else [])
        await owner_pool.execute("DELETE FROM contribution_rates WHERE id = ANY($1::int[])", ids)
        gateway.rates.invalidate()


# --- a month both cut and after its cover ended ---------------------------------------------------
async def test_a_cut_does_not_list_a_month_after_its_cover_ended_as_a_rate_cut(
    gateway: Gateway, owner_pool: asyncpg.Pool
) -> None:
    """app/domain/overpayment.py: "A month that is both is refunded once, in full, as
    ``cover_ended``" (DOMAIN.md: a retroactive cut "creates an overpayment per person and
    month"; a month after the cover ended is not covered, so everything paid is owed).

    A Section 40 option-2 member paid 2044-07 and 2044-08 ahead (100 baht each); a return to
    Section 33 recorded later ends the membership from 2044-07. A cut of option 2 for 2044-08
    (100 -> 60) is added. The refund listing owes 2044-08 in full: 100.00, ``cover_ended``.
    The cut's own answer must not owe the same month again, differently: it lists 40.00 as a
    ``rate_cut`` (app/rates/service.py ``_overpayments`` calls ``compute_overpayments`` on
    every paid month of the option, with no regard to the member's cover), so the two lists
    give different answers for the same month, and paying both refunds 140 of the 100 taken."""
    first, ended, cut = Month(2044, 7), Month(2044, 7), Month(2044, 8)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=40, option=2, coverage_start=Month(2044, 1),
            paid=[first, cut],
        )  # fmt: skip
        await end_membership(conn, nid, ended)
    issued = await gateway.registry.add_client(name=f"c-{uuid.uuid4().hex[:10]}", scopes=["admin"])
    change = await gateway.api.rates.add_rate(
        caller=Caller(Protocol.REST, "127.0.0.1", uuid.uuid4().hex),
        credentials=BearerToken(issued.token),
        request=RateRequest(40, 2, str(cut), str(cut), 60 * BAHT, 50 * BAHT, "test: cut"),
        retroactive=False,
    )
    try:
        listed = await rate_change_list(change, nid)
        owed = await refund_list(gateway, cut, nid)
        assert owed == [(str(cut), 100 * BAHT, "cover_ended")]
        assert all(entry in owed for entry in listed), (listed, owed)
    finally:
        await owner_pool.execute("DELETE FROM paid_months WHERE national_id = $1", nid)
        await owner_pool.execute("DELETE FROM contribution_rates WHERE id = $1", change.record.id)
        gateway.rates.invalidate()


# --- two option changes in one month (a setting allows them) --------------------------------------
async def test_a_month_before_two_pending_option_changes_is_priced_at_the_option_held(
    settings: Settings, gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """DOMAIN.md, Section 40: "Option change: at most once a year, effective the next month
    (setting; ?)". With ``SSOGW_S40_OPTION_CHANGES_PER_YEAR=2`` a member holding option 1
    changes to 3 and then, the same day, to 2: both take effect next month, so this month is
    still option 1 and costs 70 baht, and the month must be recorded under option 1 (eed1875:
    "a paid month keeps the option it was priced at").

    On eed1875 this month is offered and taken at 300 baht and recorded under option 3, an
    option the member never held in it: the pending change is read as the latest change's
    ``previous_option`` alone (app/counter/member_reads.py ``oc``, app/counter/entitlement.py
    ``entitlement``), not as the option in force before the first change still pending. The
    refund listing then owes nothing (300 paid at option 3 is what option 3 costs)."""
    current = clock.month()
    nid = await s40_person(gateway, option=1)
    async with instance(settings, clock, "two-changes", s40_option_changes_per_year=2) as gw:
        for option in (3, 2):
            issued = await gw.registry.add_client(
                name=f"c-{uuid.uuid4().hex[:10]}", scopes=["admin"]
            )
            result = await gw.api.insured.change_option(
                caller=Caller(Protocol.REST, "127.0.0.1", uuid.uuid4().hex),
                credentials=BearerToken(issued.token),
                national_id=nid,
                option=option,
            )
            assert result.effective_month == current.plus(1)
        async with gw.db.primary.acquire() as conn:
            await wait_replayed(conn, replicas(gw))
        token = digest_token(partner.username, partner.password)
        seen = await gw.counter.inquire(
            caller=caller(), credentials=token, request=InquiryRequest(nid)
        )
        offered = {m.month: m.amount_satang for m in seen.months}
        try:
            taken: ConfirmResult | ServiceError = await confirm_months(
                gw, partner, nid, [current], offered[str(current)]
            )
        except ServiceError as refused:
            taken = refused
    recorded = await gateway.db.primary.fetchval(
        "SELECT s40_option FROM paid_months WHERE national_id = $1 AND month = $2",
        nid, current.first_day,
    )  # fmt: skip
    took = taken.amount_satang if isinstance(taken, ConfirmResult) else taken
    # month: (offered this month, offered next month, taken, recorded option)
    assert (offered[str(current)], offered[str(current.plus(1))], took, recorded) == (
        S40_RATE[1],
        S40_RATE[2],
        S40_RATE[1],
        1,
    )
