"""Attacks on ``ssogw_confirm_read`` (migration 0023): the function against the read it copies,
for many kinds of persons and replays; what still names the read it replaced."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

import asyncpg
import pytest

from app.counter.ledger import CONFIRM_READ, CONFIRM_READ_CALL, PgLedger
from app.counter.ports import ConfirmRead
from app.db.local_pair import LocalPair, PairRecord
from app.errors import StoreUnavailable
from app.main import Gateway
from app.principals.records import Principal
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.counter_calls import person_locked, s40_person, today, waiting_on_person_lock
from tests.support.people import add_person, new_national_id

PRINCIPAL = Principal(id=2_000_000_001, name="nobody", kind="partner")


async def wait_replayed_on(standby: asyncpg.Connection, gateway: Gateway, nid: str) -> None:
    for _ in range(500):
        if await standby.fetchval("SELECT 1 FROM insured_persons WHERE national_id = $1", nid):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("the standby did not replay the person")


pytestmark = pytest.mark.db


async def _owners(conn: asyncpg.Connection, partner: str, client_token: str) -> tuple[int, int]:
    partner_id = await conn.fetchval("SELECT id FROM partners WHERE name = $1", partner)
    client_id = await conn.fetchval(
        "SELECT id FROM api_clients WHERE $1 LIKE token_id || '%' OR name LIKE 'c-%'"
        " ORDER BY id DESC LIMIT 1",
        client_token,
    )
    assert partner_id is not None and client_id is not None
    return partner_id, client_id


async def _payment(
    conn: asyncpg.Connection,
    nid: str,
    section: int,
    option: int | None,
    months: list[date],
    *,
    partner_id: int | None = None,
    client_id: int | None = None,
    cancelled: bool = False,
) -> str:
    txn = uuid.uuid4().hex[:20]
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO payments (partner_id, client_id, partner_txn_id, receipt_no, national_id,"
        " section, s40_option, months, amount_satang, request_hash, business_date, paid_at,"
        " state, cancelled_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 7000, '\\x00'::bytea, current_date, $9,"
        " $10, $11)",
        partner_id, client_id, txn, "R" + uuid.uuid4().hex[:12], nid, section, option, months,
        now, "cancelled" if cancelled else "confirmed", now if cancelled else None,
    )  # fmt: skip
    return txn


@pytest.mark.parametrize("plans", ["auto", "force_generic_plan", "force_custom_plan"])
async def test_the_function_answers_as_the_read_does_for_every_kind_of_person(
    gateway: Gateway,
    partner: PartnerCredentials,
    client_token: str,
    owner_pool: asyncpg.Pool,
    plans: str,
) -> None:
    """Section 39 with history (on time and late), Section 40 with a pending option change,
    persons with closed memberships, no person at all; replays by a partner's and a client's
    transaction id, a cancelled one, and each id asked of the other kind of owner. Called more
    than five times on one connection, so PL/pgSQL's cached plan goes generic too."""
    now = today()
    since = now.minus(12)
    async with owner_pool.acquire() as conn:
        partner_id, client_id = await _owners(conn, partner.name, client_token)
        s39 = await add_person(
            conn, section=39, coverage_start=now.minus(40),
            paid=[now.minus(20), now.minus(15), now.minus(14), now.minus(3), now.minus(1)],
        )  # fmt: skip
        # A late month before the window: paid long after it was due.
        await conn.execute(
            "UPDATE paid_months SET paid_on = $2 WHERE national_id = $1 AND month = $3",
            s39, now.minus(2).first_day, now.minus(14).first_day,
        )  # fmt: skip
        s40 = await add_person(
            conn, section=40, option=2, coverage_start=now.minus(30),
            paid=[now.minus(11), now.minus(5), now],
        )  # fmt: skip
        await conn.execute(
            "UPDATE insured_persons SET option_changed_on = $2 WHERE national_id = $1",
            s40, now.minus(1).first_day,
        )  # fmt: skip
        for previous, new, effective in ((1, 3, now.minus(6)), (3, 2, now.plus(1))):
            await conn.execute(
                "INSERT INTO s40_option_changes (national_id, changed_on, previous_option,"
                " new_option, effective_month) VALUES ($1, $2, $3, $4, $5)",
                s40, now.minus(1).first_day, previous, new, effective.first_day,
            )  # fmt: skip
        closed = await add_person(conn, section=39, coverage_start=now.minus(10), paid=[now])
        for section, option, ended in ((40, 1, now.minus(30)), (39, None, now.minus(11))):
            await conn.execute(
                "INSERT INTO closed_memberships (national_id, section, s40_option,"
                " coverage_start, ended_month, end_reason, closed_on)"
                " VALUES ($1, $2, $3, $4, $5, 'three_consecutive_unpaid', current_date)",
                closed, section, option, now.minus(60).first_day, ended.first_day,
            )  # fmt: skip
        terminated = await add_person(
            conn, section=40, coverage_start=now.minus(30), status="terminated",
            paid=[now.minus(4)],
        )  # fmt: skip
        by_partner = await _payment(
            conn, s40, 40, 2, [now.minus(5).first_day], partner_id=partner_id
        )
        by_client = await _payment(
            conn, s39, 39, None, [now.minus(1).first_day], client_id=client_id
        )
        cancelled = await _payment(
            conn, closed, 39, None, [now.minus(2).first_day], partner_id=partner_id, cancelled=True
        )
        client_cancelled = await _payment(
            conn, terminated, 40, 1, [now.minus(2).first_day], client_id=client_id, cancelled=True
        )

    cases = []
    async with gateway.db.primary.acquire() as conn:
        await conn.execute(f"SET plan_cache_mode = {plans}")
        for nid in (s39, s40, closed, terminated, new_national_id()):
            for txn in (by_partner, by_client, cancelled, client_cancelled, "none-such"):
                for owner, flag in (
                    (partner_id, True),
                    (client_id, False),
                    (client_id, True),
                    (partner_id, False),
                ):
                    cases.append((nid, since.first_day, owner, txn, flag))
        compared = 0
        owners = {
            by_partner: "partner",
            by_client: "client",
            cancelled: "partner",
            client_cancelled: "client",
        }
        names = {
            by_partner: "by_partner",
            by_client: "by_client",
            cancelled: "cancelled",
            client_cancelled: "client_cancelled",
        }
        for case in cases:
            async with conn.transaction():
                called = await conn.fetchrow(CONFIRM_READ_CALL, *case)
                direct = await conn.fetchrow(CONFIRM_READ, *case)
            assert called is not None and direct is not None
            got, want = dict(called), dict(direct)
            assert got.pop("locked") is (want["national_id"] is not None), case
            # Each drew its own receipt, or neither did.
            assert (got.pop("receipt_sequence") is None) == (
                want.pop("receipt_sequence") is None
            ), case
            assert got == want, case
            _, _, owner, txn, flag = case
            kind = owners.get(txn)
            expected = (kind == "partner" and flag and owner == partner_id) or (
                kind == "client" and not flag and owner == client_id
            )
            assert (got["pay_id"] is not None) == expected, case
            if expected:
                assert got["pay_partner_txn_id"] == txn
                assert got["pay_state"] == ("cancelled" if "cancel" in names[txn] else "confirmed")
            compared += 1
        await conn.execute("RESET plan_cache_mode")
    assert compared == len(cases)


async def test_the_bench_plans_the_confirms_read_it_warms_for(gateway: Gateway) -> None:
    """bench/settle.py warms the relations a confirm's read plans to touch: it must still
    import, and still name the person's key and the paid months' key (the function's own plan
    names none of them: EXPLAIN of the call shows a Function Scan). On the bench's 13,000,000
    persons the plan takes the keys; on the tests' few, after some tests, the planner may scan
    the table instead, so sequential scans are ruled out here, as the size rules them out there."""
    from bench import settle

    await s40_person(gateway)  # a person to plan the read for
    async with gateway.db.primary.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")
        try:
            names = await settle.read_relations(conn)
        finally:
            await conn.execute("RESET enable_seqscan")  # the pool releases without a reset
    assert "insured_persons_pkey" in names, names
    assert any(name.startswith("paid_months") for name in names), names
    assert "payments_partner_txn" in names, names


def _said(exc: BaseException) -> str:
    """Everything an error carries that a log line could show."""
    parts = [str(exc), repr(exc)]
    for name in ("message", "detail", "hint", "context", "query", "internal_query"):
        value = getattr(exc, name, None)
        if value:
            parts.append(str(value))
    return "\n".join(parts)


@asynccontextmanager
async def one_connection(dsn: str, **settings: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of one connection to ``dsn`` with these server settings."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, server_settings=settings)
    try:
        yield pool
    finally:
        await pool.close()


async def lock_and_read(gateway: Gateway, pool: asyncpg.Pool, nid: str) -> None:
    """A confirm's lock and read through the ledger, on ``pool``."""
    ledger = PgLedger(primary=lambda: pool, router=lambda: gateway.db.router)
    async with ledger.transaction() as tx:
        await tx.lock_and_read(nid, PRINCIPAL, uuid.uuid4().hex, since=today().minus(12))


async def test_a_confirm_on_a_standby_is_the_read_only_failure_it_was(
    gateway: Gateway, settings: Settings
) -> None:
    """The primary's DSN reaching a standby (a failover): the lock inside the function fails
    as the lock statement did, read-only, which the gateway answers as a retryable
    store_unavailable; the ID in no part of the error."""
    nid = await s40_person(gateway)
    async with one_connection(settings.replica_dsns[0]) as standby:
        async with standby.acquire() as conn:
            await wait_replayed_on(conn, gateway, nid)
        with pytest.raises(StoreUnavailable) as failed:
            await lock_and_read(gateway, standby, nid)
    assert failed.value.reason == "read_only"
    cause = failed.value.__cause__
    assert isinstance(cause, asyncpg.ReadOnlySQLTransactionError)
    assert nid not in _said(cause)


async def test_a_read_only_session_on_the_primary_fails_read_only(
    gateway: Gateway, settings: Settings
) -> None:
    """A demoted node still out of recovery (default_transaction_read_only)."""
    nid = await s40_person(gateway)
    assert settings.primary_dsn is not None
    async with one_connection(settings.primary_dsn, default_transaction_read_only="on") as pool:
        with pytest.raises(StoreUnavailable) as failed:
            await lock_and_read(gateway, pool, nid)
    assert failed.value.reason == "read_only"
    assert nid not in _said(failed.value.__cause__)


async def test_a_lock_timeout_in_the_function_is_the_lock_timeout_it_was(
    gateway: Gateway, settings: Settings
) -> None:
    nid = await s40_person(gateway)
    assert settings.primary_dsn is not None
    async with (
        one_connection(settings.primary_dsn, lock_timeout="200ms") as pool,
        person_locked(gateway.db.primary, nid),
    ):
        with pytest.raises(asyncpg.LockNotAvailableError) as failed:
            await lock_and_read(gateway, pool, nid)
        # and on the statement the lock was before (the same error, the same class)
        async with pool.acquire() as conn:
            with pytest.raises(asyncpg.LockNotAvailableError) as before:
                async with conn.transaction():
                    await conn.fetchval(
                        "SELECT 1 FROM insured_persons WHERE national_id = $1 FOR UPDATE", nid
                    )
    assert failed.value.sqlstate == before.value.sqlstate
    assert nid not in _said(failed.value)


async def test_a_statement_timeout_in_the_function_is_unavailable(
    gateway: Gateway, settings: Settings
) -> None:
    nid = await s40_person(gateway)
    assert settings.primary_dsn is not None
    async with (
        one_connection(settings.primary_dsn, statement_timeout="200ms") as pool,
        person_locked(gateway.db.primary, nid),
    ):
        with pytest.raises(StoreUnavailable) as failed:
            await lock_and_read(gateway, pool, nid)
    assert isinstance(failed.value.__cause__, asyncpg.QueryCanceledError)
    assert nid not in _said(failed.value.__cause__)


async def test_the_server_log_of_a_failed_confirm_read_holds_no_national_id(
    gateway: Gateway, settings: Settings, pg_pair: tuple[LocalPair, PairRecord]
) -> None:
    """The lock timing out inside the function: the server logs the error with its statement
    and the function's context (the lock's SQL, with ``$1``), never the ID."""
    pair, _ = pg_pair
    nid = await s40_person(gateway)
    assert settings.primary_dsn is not None
    async with (
        one_connection(settings.primary_dsn, lock_timeout="100ms") as pool,
        person_locked(gateway.db.primary, nid),
    ):
        with pytest.raises(asyncpg.LockNotAvailableError):
            await lock_and_read(gateway, pool, nid)
    await asyncio.sleep(0.3)
    log = (pair.root / "logs" / "primary.log").read_text(errors="replace")
    tail = log[log.rfind("lock timeout") - 200 :]
    assert "ssogw_confirm_read" in tail, tail[-3000:]
    assert nid not in log


async def test_a_person_created_between_the_lock_and_the_read_is_not_read(
    gateway: Gateway, owner_pool: asyncpg.Pool
) -> None:
    """The test this change deleted (a person created after the lock was tried), staged
    inside the function: the lock finds nobody, then the read waits for a table lock
    (``s40_option_changes``, which only the read touches) while the person is created and
    committed; the read, whose snapshot is taken after that wait, sees the person, and must
    not read them as one: nothing locked them."""
    ledger = PgLedger(primary=lambda: gateway.db.primary, router=lambda: gateway.db.router)
    nid = new_national_id()
    async with owner_pool.acquire() as blocker:
        table_lock = blocker.transaction()
        await table_lock.start()
        await blocker.execute("LOCK TABLE s40_option_changes IN ACCESS EXCLUSIVE MODE")

        async def read() -> object:
            async with ledger.transaction() as tx:
                return await tx.lock_and_read(
                    nid, PRINCIPAL, uuid.uuid4().hex, since=today().minus(12)
                )

        reading = asyncio.ensure_future(read())
        try:
            await waiting_on_person_lock(gateway)  # the read's wait for the table
            async with gateway.db.primary.acquire() as conn:
                await add_person(conn, section=40, coverage_start=today().minus(3), national_id=nid)
        finally:
            await table_lock.rollback()
        got = await asyncio.wait_for(reading, 10)
    assert isinstance(got, ConfirmRead)
    assert got.member is None and got.payment is None
    # The staging hit the window: the read saw the person (and drew a receipt for them).
    assert got.receipt_sequence is not None
