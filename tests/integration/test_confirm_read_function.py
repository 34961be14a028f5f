"""A confirm's lock and read in one round trip: ``ssogw_confirm_read`` (migration 0023).

The function must read what ``app.counter.ledger.CONFIRM_READ`` reads (it holds a copy: a
change to the read needs a migration that replaces it), and read it *after* the lock was
granted: a confirm that waited for another's lock is judged on the months that one paid. A
person the lock did not find is not read as one, and draws no receipt.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.counter.ledger import CONFIRM_READ, CONFIRM_READ_CALL, PgLedger
from app.counter.ports import ConfirmRead
from app.main import Gateway
from app.principals.records import Principal
from tests.support.counter_calls import (
    paid_while_queued,
    person_locked,
    s40_person,
    today,
    waiting_on_person_lock,
)
from tests.support.people import new_national_id

pytestmark = pytest.mark.db

PRINCIPAL = Principal(id=2_000_000_001, name="nobody", kind="partner")


def _words(sql: str) -> str:
    return " ".join(sql.split())


async def test_the_function_runs_the_read_the_gateway_defines(gateway: Gateway) -> None:
    called = CONFIRM_READ_CALL.split(" FROM ")[1].split("(")[0]
    body = await gateway.db.primary.fetchval(
        "SELECT prosrc FROM pg_proc WHERE proname = $1", called
    )
    assert body is not None, f"no migration created {called}"
    assert _words(CONFIRM_READ) in _words(body), (
        f"app/counter/ledger.py's CONFIRM_READ (or MEMBER_SQL in it) is not what {called} runs:"
        " add a migration with the new read as a function of a new name, and call that (see 0023)"
    )


async def test_the_function_answers_as_the_read_does(gateway: Gateway) -> None:
    nid = await s40_person(gateway)
    since = today().minus(12).first_day
    async with gateway.db.primary.acquire() as conn, conn.transaction():
        called = await conn.fetchrow(CONFIRM_READ_CALL, nid, since, 1, "t-1", True)
        direct = await conn.fetchrow(CONFIRM_READ, nid, since, 1, "t-1", True)
    assert called is not None and direct is not None
    assert called["locked"] is True
    got, want = dict(called), dict(direct)
    assert list(got) == [*want, "locked"]
    assert {k for k, v in want.items() if got[k] != v} == {"receipt_sequence"}  # each drew one


async def test_the_read_waits_for_the_lock_and_sees_what_its_holder_paid(
    gateway: Gateway,
) -> None:
    """Another transaction holds the person's lock and pays this month; the read queued behind
    it is granted the lock when that one commits, and must find the month paid. (One
    ``SELECT ... FOR UPDATE`` would read the months from its snapshot before the wait.)"""
    nid = await s40_person(gateway)
    month = today()
    ledger = PgLedger(primary=lambda: gateway.db.primary, router=lambda: gateway.db.router)

    async def read() -> ConfirmRead:
        async with ledger.transaction() as tx:
            return await tx.lock_and_read(nid, PRINCIPAL, uuid.uuid4().hex, since=month.minus(12))

    got = await paid_while_queued(gateway, nid, month, read)
    assert got.member is not None and month in got.member.paid


async def test_a_person_the_lock_did_not_find_is_read_as_none(gateway: Gateway) -> None:
    ledger = PgLedger(primary=lambda: gateway.db.primary, router=lambda: gateway.db.router)
    async with ledger.transaction() as tx:
        read = await tx.lock_and_read(
            new_national_id(), PRINCIPAL, uuid.uuid4().hex, since=today().minus(12)
        )
    assert read.member is None and read.payment is None and read.receipt_sequence is None
    assert read.rate_digest  # still read: a confirm compares it before it refuses


async def test_a_locked_person_is_read_once_the_lock_is_let_go(gateway: Gateway) -> None:
    """A confirm whose person another confirm holds waits, and goes on when it rolls back."""
    nid = await s40_person(gateway)
    ledger = PgLedger(primary=lambda: gateway.db.primary, router=lambda: gateway.db.router)

    async def read() -> ConfirmRead:
        async with ledger.transaction() as tx:
            return await tx.lock_and_read(nid, PRINCIPAL, uuid.uuid4().hex, since=today())

    async with person_locked(gateway.db.primary, nid) as let_go:
        reading = asyncio.ensure_future(read())
        await waiting_on_person_lock(gateway)
        assert not reading.done()
        await let_go()
        got = await asyncio.wait_for(reading, 10)
    assert got.member is not None and got.member.national_id == nid
