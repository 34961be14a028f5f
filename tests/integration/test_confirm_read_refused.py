"""A confirm whose one-round-trip read (``ssogw_confirm_read``, migration 0023) is refused.

The function can be out of the service role's reach while this release serves: a release
before it ran ``ssogw migrate`` (its monthly CronJob during a rollout, a rollback's Job) and
revoked what it did not know; or this release was started before its migrations ran. The
confirm that meets the refusal is answered retryable (its transaction is aborted by then);
the instance then locks and reads in two statements, as releases before 0023 did, and goes
back to the function once its own read says the service may call it again. No payment is
lost or doubled: the retry of the refused confirm (the same transaction id) is paid once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from app.counter.ledger import PgLedger
from app.counter.ports import ConfirmRead
from app.counter.service import CounterService
from app.db.local_pair import SERVICE_ROLE
from app.db.recent_writes import RecentWrites
from app.errors import StoreUnavailable
from app.main import Gateway
from app.principals.records import Principal
from tests.conftest import PartnerCredentials
from tests.integration.test_confirm_round_trips import Statements, counted  # noqa: F401
from tests.support.counter_calls import (
    caller,
    confirm_request,
    paid_while_queued,
    s40_person,
    today,
)
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

PRINCIPAL = Principal(id=2_000_000_001, name="nobody", kind="partner")
Counted = tuple[CounterService, Statements, RecentWrites]


@asynccontextmanager
async def refused(owner_pool: asyncpg.Pool) -> AsyncIterator[None]:
    """The service role may not call the function (an older release's grants), then may again."""
    await owner_pool.execute(f"REVOKE EXECUTE ON FUNCTION ssogw_confirm_read FROM {SERVICE_ROLE}")
    try:
        yield
    finally:
        await owner_pool.execute(f"GRANT EXECUTE ON FUNCTION ssogw_confirm_read TO {SERVICE_ROLE}")


async def _confirm(counter: CounterService, partner: PartnerCredentials, nid: str) -> str:
    result = await counter.confirm(
        caller=caller(uuid.uuid4().hex),
        credentials=digest_token(partner.username, partner.password),
        request=confirm_request(nid, [str(today())], 7000, txn=f"r-{nid}"),
    )
    return result.receipt_no


def _ours(statements: Statements) -> list[str]:
    """The statements sent, without asyncpg's reading of a statement's types, which it does
    once a connection the first time it prepares a statement."""
    own = ("typeinfo_tree", "set_config('jit'")
    return [sql for sql in statements.sent if not any(mark in sql for mark in own)]


async def _paid(gateway: Gateway, nid: str) -> int:
    count = await gateway.db.primary.fetchval(
        "SELECT count(*) FROM payments WHERE national_id = $1", nid
    )
    return int(count)


async def test_the_refused_confirm_is_answered_retryable_and_its_retry_is_paid_once(
    gateway: Gateway, partner: PartnerCredentials, owner_pool: asyncpg.Pool,
    counted: Counted, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:  # fmt: skip
    counter, statements, _ = counted
    nid = await s40_person(gateway, option=1)
    async with refused(owner_pool):
        with pytest.raises(StoreUnavailable) as raised:
            await _confirm(counter, partner, nid)
        assert raised.value.reason == "confirm_read_refused"
        assert "send the same request again" in raised.value.message
        # The operator is told what to do; the partner is not told about the schema.
        assert "run this release's `ssogw migrate`" in caplog.text and nid not in caplog.text
        assert await _paid(gateway, nid) == 0
        statements.sent.clear()
        receipt = await _confirm(counter, partner, nid)  # the counter's retry
    begin, lock, read, insert, commit, lsn = _ours(statements)
    assert begin.startswith("BEGIN") and "pg_current_wal_lsn" in lsn
    assert lock.startswith("SELECT 1 FROM insured_persons") and lock.endswith("FOR UPDATE")
    assert "FROM ssogw_confirm_read" not in read and nid not in read
    assert "INSERT INTO payments" in insert and commit == "COMMIT"
    assert await _paid(gateway, nid) == 1
    assert receipt


async def test_the_instance_goes_back_to_the_function_once_it_may_call_it(
    gateway: Gateway, partner: PartnerCredentials, owner_pool: asyncpg.Pool,
    counted: Counted,  # noqa: F811
) -> None:  # fmt: skip
    counter, statements, _ = counted
    async with refused(owner_pool):
        with pytest.raises(StoreUnavailable):
            await _confirm(counter, partner, await s40_person(gateway, option=1))
        statements.sent.clear()
        await _confirm(counter, partner, await s40_person(gateway, option=1))
        assert len(_ours(statements)) == 6, "two statements while it may not call the function"
    # Granted again: the next read (still two statements) sees it, the one after calls it.
    statements.sent.clear()
    await _confirm(counter, partner, await s40_person(gateway, option=1))
    assert len(_ours(statements)) == 6
    statements.sent.clear()
    await _confirm(counter, partner, await s40_person(gateway, option=1))
    assert len(_ours(statements)) == 5
    assert "FROM ssogw_confirm_read($1," in _ours(statements)[1]


async def test_a_function_not_there_is_refused_alike(
    gateway: Gateway, owner_pool: asyncpg.Pool
) -> None:
    """This release started before its migrations ran: the function does not exist."""
    nid = await s40_person(gateway)
    ledger = PgLedger(primary=lambda: gateway.db.primary, router=lambda: gateway.db.router)
    await owner_pool.execute(
        "ALTER FUNCTION ssogw_confirm_read(text, date, integer, text, boolean)"
        " RENAME TO ssogw_confirm_read_away"
    )
    try:
        with pytest.raises(StoreUnavailable):
            async with ledger.transaction() as tx:
                await tx.lock_and_read(nid, PRINCIPAL, "t-away", since=today().minus(12))
        async with ledger.transaction() as tx:
            read = await tx.lock_and_read(nid, PRINCIPAL, "t-away", since=today().minus(12))
    finally:
        await owner_pool.execute(
            "ALTER FUNCTION ssogw_confirm_read_away(text, date, integer, text, boolean)"
            " RENAME TO ssogw_confirm_read"
        )
    assert read.member is not None and read.member.national_id == nid
    assert read.receipt_sequence is not None


async def test_the_two_statement_read_waits_for_the_lock_and_sees_what_its_holder_paid(
    gateway: Gateway, owner_pool: asyncpg.Pool
) -> None:
    """As ``test_confirm_read_function.py`` holds the function to it: a read queued behind
    another's lock is judged on the month that one paid."""
    nid = await s40_person(gateway)
    month = today()
    ledger = PgLedger(primary=lambda: gateway.db.primary, router=lambda: gateway.db.router)

    async def read() -> ConfirmRead:
        async with ledger.transaction() as tx:
            return await tx.lock_and_read(nid, PRINCIPAL, uuid.uuid4().hex, since=month.minus(12))

    async with refused(owner_pool):
        with pytest.raises(StoreUnavailable):
            await read()
        got = await paid_while_queued(gateway, nid, month, read)
    assert got.member is not None and month in got.member.paid
