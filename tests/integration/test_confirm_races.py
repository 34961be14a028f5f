"""Confirms racing on two instances of one database, and a confirm's transaction cut short.

Two gateways (``tests.support.fleet.instance``) confirm for one person at once: the person's
lock serialises them, and the second is judged on the months the first paid (the refusal is the
entitlement's, never the paid-month key's "paid by another transaction"). The same request sent
to both at once is one payment, answered twice. A confirm cancelled while it waits for the
lock leaves no transaction open (the lock and the read themselves:
``test_confirm_read_function.py``).
"""

from __future__ import annotations

import asyncio

import pytest

from app.counter.records import ConfirmRequest, ConfirmResult
from app.errors import AlreadyPaid, MonthsNotContiguous, ServiceError
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import (
    caller,
    confirm_request,
    person_locked,
    s40_person,
    today,
)
from tests.support.fleet import instance
from tests.support.people import add_person
from tests.support.rest_api import replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

ROUNDS = 10
UNDER_THE_KEY = "another transaction"  # the paid-month key's refusal, not the entitlement's


async def outcome(
    gw: Gateway, partner: PartnerCredentials, request: ConfirmRequest
) -> ConfirmResult | ServiceError:
    try:
        return await gw.counter.confirm(
            caller=caller(),
            credentials=digest_token(partner.username, partner.password),
            request=request,
        )
    except ServiceError as refused:
        return refused


async def payments(gw: Gateway, nid: str) -> int:
    found: int = await gw.db.primary.fetchval(
        "SELECT count(*) FROM payments WHERE national_id = $1", nid
    )
    return found


async def test_two_instances_paying_one_month_make_one_payment_judged_under_the_lock(
    settings: Settings, clock: PinnedClock, gateway: Gateway, partner: PartnerCredentials
) -> None:
    async with instance(settings, clock, "race-a") as a, instance(settings, clock, "race-b") as b:
        for _ in range(ROUNDS):
            nid = await s40_person(gateway)
            month = [str(today())]
            answers = await asyncio.gather(
                outcome(a, partner, confirm_request(nid, month, 7000)),
                outcome(b, partner, confirm_request(nid, month, 7000)),
            )
            refused = [r for r in answers if isinstance(r, ServiceError)]
            assert len(refused) == 1 and isinstance(refused[0], AlreadyPaid), answers
            assert UNDER_THE_KEY not in refused[0].message
            assert await payments(gateway, nid) == 1


async def test_two_instances_paying_consecutive_s39_months_see_each_other(
    settings: Settings, clock: PinnedClock, gateway: Gateway, partner: PartnerCredentials
) -> None:
    current = today()
    async with instance(settings, clock, "race-c") as a, instance(settings, clock, "race-d") as b:
        for _ in range(ROUNDS):
            async with gateway.db.primary.acquire() as conn:
                nid = await add_person(
                    conn,
                    section=39,
                    coverage_start=current.minus(40),
                    paid=[current.minus(i) for i in range(2, 14)],
                    replicas=replicas(gateway),
                )
            first = confirm_request(nid, [str(current.minus(1))], 43200, section=39)
            second = confirm_request(nid, [str(current)], 43200, section=39)
            earlier, later = await asyncio.gather(
                outcome(a, partner, first), outcome(b, partner, second)
            )
            # The earlier month always pays; the later one pays only if it came second.
            assert isinstance(earlier, ConfirmResult), earlier
            assert isinstance(later, ConfirmResult | MonthsNotContiguous), later
            assert await payments(gateway, nid) == (2 if isinstance(later, ConfirmResult) else 1)


async def test_the_same_request_on_two_instances_at_once_is_one_payment(
    settings: Settings, clock: PinnedClock, gateway: Gateway, partner: PartnerCredentials
) -> None:
    async with instance(settings, clock, "race-e") as a, instance(settings, clock, "race-f") as b:
        for _ in range(ROUNDS):
            nid = await s40_person(gateway)
            request = confirm_request(nid, [str(today())], 7000)
            one, two = await asyncio.gather(
                outcome(a, partner, request), outcome(b, partner, request)
            )
            assert isinstance(one, ConfirmResult) and isinstance(two, ConfirmResult), (one, two)
            assert one.receipt_no == two.receipt_no
            assert sorted([one.replayed, two.replayed]) == [False, True]
            assert await payments(gateway, nid) == 1


async def test_a_confirm_cancelled_while_it_waits_for_the_lock_leaves_no_transaction_open(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    nid = await s40_person(gateway)
    async with person_locked(gateway.db.primary, nid) as let_go:
        waiting = asyncio.ensure_future(
            outcome(gateway, partner, confirm_request(nid, [str(today())], 7000))
        )
        await asyncio.sleep(0.3)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await let_go()
    async with asyncio.timeout(10):
        paid = await outcome(gateway, partner, confirm_request(nid, [str(today())], 7000))
    assert isinstance(paid, ConfirmResult), paid
    open_ones = await gateway.db.primary.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
    )
    assert open_ones == 0
