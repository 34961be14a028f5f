"""Attacks on 38d2dbc: the rate table's fingerprint (``RATE_DIGEST_SQL``, ``lines_digest``)
and the settle wait after a rate line (``app/rates/repository.py`` ``insert_rate``,
``_settled``), which replaced the rate lines' advisory lock.

Each test here failed on 38d2dbc; the docstring of each says what should happen and why. The
third, a cut's answer and a payment still in its synchronous COMMIT, is kept in its stronger
form (a paying instance with a longer commit wait) in ``test_settle_attacks.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.db.local_pair import SUPERUSER, LocalPair, PairRecord
from app.db.sync_commit import PAYMENT_APPLICATION
from app.domain.months import Month
from app.errors import ServiceError
from app.main import Gateway
from app.rates.service import RateChange, RateRequest
from tests.support.clock import PinnedClock
from tests.support.rate_changes import until

pytestmark = pytest.mark.db

BAHT = 100
NOTE = "test: digest attack"


async def _add_rate(
    gw: Gateway,
    option: int,
    month: Month,
    amount: int,
    *,
    retroactive: bool,
    request_id: str | None = None,
) -> RateChange:
    issued = await gw.registry.add_client(name=f"c-{uuid.uuid4().hex[:10]}", scopes=["admin"])
    return await gw.api.rates.add_rate(
        caller=Caller(Protocol.REST, "127.0.0.1", request_id or uuid.uuid4().hex),
        credentials=BearerToken(issued.token),
        request=RateRequest(40, option, str(month), str(month), amount, 0, NOTE),
        retroactive=retroactive,
    )


async def _lines(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM contribution_rates WHERE note = $1", NOTE))


@contextlib.asynccontextmanager
async def _open_transaction_elsewhere(record: PairRecord) -> AsyncIterator[asyncpg.Connection]:
    """A transaction holding a transaction id, open in *another database* of the primary's
    cluster (``postgres``, as the superuser): a maintenance session, another application's
    idle-in-transaction connection. Nothing in it can touch the gateway's tables."""
    conn = await asyncpg.connect(
        record.dsn(record.primary_port, role=SUPERUSER, database="postgres")
    )
    try:
        await conn.execute("BEGIN")
        await conn.fetchval("SELECT pg_current_xact_id()")  # takes a transaction id
        yield conn
    finally:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        await conn.close()


@contextlib.asynccontextmanager
async def _open_payment(gw: Gateway) -> AsyncIterator[asyncpg.Connection]:
    """A payment transaction left open (as app.db.sync_commit opens one) holding a transaction
    id: what adding a rate line waits for."""
    async with gw.db.primary.acquire() as conn:
        await conn.execute(f"BEGIN; SET LOCAL application_name = '{PAYMENT_APPLICATION}'")
        await conn.fetchval("SELECT pg_current_xact_id()")
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")


async def _superuser(record: PairRecord) -> asyncpg.Connection:
    return await asyncpg.connect(record.dsn(record.primary_port, role=SUPERUSER))


async def _cleanup(gw: Gateway, owner_pool: asyncpg.Pool, nids: list[str]) -> None:
    await owner_pool.execute("DELETE FROM paid_months WHERE national_id = ANY($1::text[])", nids)
    await owner_pool.execute("DELETE FROM contribution_rates WHERE note = $1", NOTE)
    gw.rates.invalidate()


# --- the settle wait waits for a session of another database ------------------------------------
@pytest.mark.serial
async def test_adding_a_rate_does_not_wait_for_a_transaction_of_another_database(
    pg_pair: tuple[LocalPair, PairRecord],
    gateway: Gateway,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
) -> None:
    """The settle wait is there for "a confirm that read the table's fingerprint before the
    line committed" (app/rates/repository.py ``insert_rate``). A session that is not a
    confirm at all, in another database of the same cluster (a DBA's psql left in an open
    transaction, another application's idle-in-transaction connection, a long batch), cannot
    have priced a payment of this gateway. Adding a far-future rate line that overpays no one
    should answer at once.

    On 38d2dbc every rate change waits the whole ``SETTLE_S`` (5 s) while any transaction with
    a transaction id is open anywhere in the cluster: ``_settled`` polls
    ``pg_snapshot_xip(pg_current_snapshot())``, which lists the in-progress transaction ids of
    every database and role of the cluster, with no filter on the database, the role, or
    whether the transaction is a confirm. The same holds for the gateway's own long
    transactions (a settlement import session holds one for its whole import)."""
    _, record = pg_pair
    try:
        async with _open_transaction_elsewhere(record):
            started = time.monotonic()
            change = await _add_rate(
                gateway, 1, clock.month().plus(60), 65 * BAHT, retroactive=False
            )
            took = time.monotonic() - started
            _ = [o async for o in change.overpayments]
        assert took < 1.0, f"adding a far-future rate line took {took:.1f} s"
    finally:
        await _cleanup(gateway, owner_pool, [])


# --- a lost connection during the settle wait, after the commit ---------------------------------
async def test_a_rate_change_answered_retryable_has_not_added_its_line(
    pg_pair: tuple[LocalPair, PairRecord],
    gateway: Gateway,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
) -> None:
    """app/db/failures.py: a store failure is answered ``server.store_unavailable``, "retry
    the same request". That is only safe for a write that did not happen, or that a retry
    finds (as a confirm's transaction id does). Adding a rate line has no idempotency key: a
    retry adds a second line. So a rate change must either commit and answer with its line
    (and its audit record ``ok``), or fail without a line.

    (Since fixed: the wait is for open payment transactions only, here one left open, and a
    failure of the wait's connection is not raised: the wait goes on on another connection,
    here until the payment ends, and is only logged past its deadline.)

    On 38d2dbc the line commits first (``insert_rate`` is no longer one transaction), then
    ``_settled`` polls the server for up to 5 s on the same connection. A connection lost
    in that window (a failover, a restart of the primary, a network cut; here the backend is
    terminated while a transaction of another database keeps the wait going) makes the call
    answer the retryable ``server.store_unavailable``, its audit record is a failure, the
    book is not invalidated — and the line is in the table. The operator's retry adds it
    twice. Before 38d2dbc the wait (the advisory lock) came *before* the insert, in the same
    transaction: a failure there rolled everything back."""
    _, record = pg_pair
    superuser = await _superuser(record)
    request_id = uuid.uuid4().hex
    outcome: RateChange | ServiceError | None = None
    try:
        async with _open_payment(gateway):
            adding = asyncio.create_task(
                _add_rate(
                    gateway,
                    1,
                    clock.month().plus(61),
                    66 * BAHT,
                    retroactive=False,
                    request_id=request_id,
                )
            )
            await until(lambda: _lines_committed(owner_pool), "the rate line commits")
            pid = None

            async def settling() -> bool:
                nonlocal pid
                pid = await superuser.fetchval(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE query LIKE '%AS w(pid, xid)%' AND pid <> pg_backend_pid()"
                    " LIMIT 1"
                )
                return pid is not None

            await until(settling, "the rate change polls the settle query")
            await superuser.execute("SELECT pg_terminate_backend($1)", pid)
            await asyncio.sleep(0.5)  # the wait goes on, on another connection, till this ends
        try:
            outcome = await asyncio.wait_for(adding, 15)
        except ServiceError as failed:
            outcome = failed
        lines = await _lines(owner_pool)
        audit = await owner_pool.fetch(
            "SELECT operation, outcome FROM audit_records WHERE request_id = $1", request_id
        )
        answered = outcome.code if isinstance(outcome, ServiceError) else "added"
        # Either the line was added and the call says so, or it failed and added nothing.
        assert answered == "added" or lines == 0, (
            f"answered {answered!r} (audit {[tuple(r) for r in audit]}) with {lines} line(s)"
            " committed: a retry adds the rate twice"
        )
    finally:
        await superuser.close()
        await _cleanup(gateway, owner_pool, [])


async def _lines_committed(pool: asyncpg.Pool) -> bool:
    return await _lines(pool) > 0
