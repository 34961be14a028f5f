"""A new payment's round trips on the primary: five statements, each its own round trip.

BEGIN, the person's lock with the read under it (one call of ``ssogw_confirm_read``: person,
replayed payment, receipt sequence; the ID bound, never written into a statement), the insert
of the payment, its months and its audit record, COMMIT, and the WAL position after it on the
same connection. Counted with
asyncpg's query logger on a pool of the test's own; the payment, its record and its
read-your-writes position are checked too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.counter.ledger import PgLedger
from app.counter.rules import counter_rules
from app.counter.service import CounterService
from app.db.recent_writes import RecentWrites
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.support.clock import business_clock
from tests.support.counter_calls import (
    audit_rows,
    caller,
    confirm_request,
    person_locked,
    s40_person,
    today,
)
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


class Statements:
    """Every statement sent on the test's primary pool, in order."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, record: asyncpg.connection.LoggedQuery) -> None:
        self.sent.append(" ".join(record.query.split()))


@pytest.fixture
async def counted(
    gateway: Gateway,
) -> AsyncIterator[tuple[CounterService, Statements, RecentWrites]]:
    statements = Statements()

    async def logged(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(statements)

    async def as_is(_conn: asyncpg.Connection) -> None:
        """Released without a reset query, as the gateway's pools do (app.db.pools)."""

    assert gateway.settings.primary_dsn is not None
    pool = await asyncpg.create_pool(
        gateway.settings.primary_dsn, min_size=1, max_size=1, init=logged, reset=as_is
    )
    recent = RecentWrites()
    ledger = PgLedger(primary=lambda: pool, router=lambda: gateway.db.router)
    try:
        counter = CounterService(
            admission=gateway.admission,
            audit=gateway.audit,
            reader=ledger,
            ledger=ledger,
            rates=gateway.rates,
            recent=recent,
            rules=counter_rules(gateway.settings),
            clock=business_clock(),
        )
        yield counter, statements, recent
    finally:
        await pool.close()


async def test_a_new_payment_costs_five_statements_and_commits_with_its_record(
    gateway: Gateway,
    partner: PartnerCredentials,
    counted: tuple[CounterService, Statements, RecentWrites],
) -> None:
    counter, statements, recent = counted
    # A first payment on the pool's connection: asyncpg reads the types of a statement's
    # columns the first time it prepares it (once per connection, not per payment).
    warm = await s40_person(gateway, option=1)
    await counter.confirm(
        caller=caller(uuid.uuid4().hex),
        credentials=digest_token(partner.username, partner.password),
        request=confirm_request(warm, [str(today())], 7000),
    )
    nid = await s40_person(gateway, option=1)
    rid = uuid.uuid4().hex
    statements.sent.clear()
    result = await counter.confirm(
        caller=caller(rid),
        credentials=digest_token(partner.username, partner.password),
        request=confirm_request(nid, [str(today())], 7000),
    )
    assert len(statements.sent) == 5, statements.sent
    begin, lock_and_read, insert, commit, lsn = statements.sent
    assert begin.startswith("BEGIN; SET LOCAL synchronous_commit")
    assert "ssogw_confirm_read($1," in lock_and_read and nid not in lock_and_read
    assert "INSERT INTO payments" in insert and "INSERT INTO audit_unlinked" in insert
    assert commit == "COMMIT" and "pg_current_wal_lsn" in lsn
    # The payment, its months and its record committed together; the position is noted.
    row = await gateway.db.primary.fetchrow(
        "SELECT receipt_no, amount_satang FROM payments WHERE receipt_no = $1", result.receipt_no
    )
    assert row is not None and row["amount_satang"] == 7000
    paid = await gateway.db.primary.fetchval(
        "SELECT count(*) FROM paid_months WHERE national_id = $1", nid
    )
    assert paid == 1
    records = await audit_rows(gateway, rid)
    assert [(r["operation"], r["outcome"], r["national_id"]) for r in records] == [
        ("ConfirmPayment", "ok", nid)
    ]
    assert recent.min_lsn(nid) is not None


async def test_a_replay_reads_its_payment_under_the_lock_and_draws_no_receipt(
    gateway: Gateway,
    partner: PartnerCredentials,
    counted: tuple[CounterService, Statements, RecentWrites],
) -> None:
    counter, statements, _ = counted
    nid = await s40_person(gateway, option=1)
    request = confirm_request(nid, [str(today())], 7000)
    credentials = digest_token(partner.username, partner.password)
    first = await counter.confirm(caller=caller(uuid.uuid4().hex), credentials=credentials,
                                  request=request)  # fmt: skip
    statements.sent.clear()
    again = await counter.confirm(
        caller=caller(uuid.uuid4().hex),
        credentials=digest_token(partner.username, partner.password),
        request=request,
    )
    assert again.replayed and again.receipt_no == first.receipt_no
    assert not any("pg_current_wal_lsn" in s for s in statements.sent)  # nothing written
    # The replay drew no receipt: the next payment's sequence follows the first's.
    other = await s40_person(gateway, option=1)
    later = await counter.confirm(
        caller=caller(uuid.uuid4().hex),
        credentials=digest_token(partner.username, partner.password),
        request=confirm_request(other, [str(today())], 7000),
    )
    assert sequence(later.receipt_no) == sequence(first.receipt_no) + 1


def sequence(receipt_no: str) -> int:
    return int(receipt_no.split("-")[1])


async def test_the_national_id_is_never_written_into_a_statement(
    gateway: Gateway,
    partner: PartnerCredentials,
    counted: tuple[CounterService, Statements, RecentWrites],
) -> None:
    """A statement's text is what the server shows and logs: ``pg_stat_activity.query`` (to
    operators looking for who holds a lock), the ``STATEMENT:`` line of every error (a lock or
    command timeout, a read-only node during a failover); a bound parameter is neither. So the
    person is locked with the ID bound, never written in."""
    counter, statements, _ = counted
    nid = await s40_person(gateway, option=1)
    statements.sent.clear()
    async with person_locked(gateway.db.primary, nid) as let_go:
        confirm = asyncio.ensure_future(
            counter.confirm(
                caller=caller(uuid.uuid4().hex),
                credentials=digest_token(partner.username, partner.password),
                request=confirm_request(nid, [str(today())], 7000),
            )
        )
        waiting: list[str] = []
        async with asyncio.timeout(5):
            while not waiting:
                await asyncio.sleep(0.02)
                waiting = [
                    r["query"]
                    for r in await gateway.db.primary.fetch(
                        "SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE '%ssogw_confirm_read%'"
                    )
                ]
        assert not any(nid in query for query in waiting), waiting
        await let_go()
        await confirm
    assert statements.sent and not any(nid in s for s in statements.sent), statements.sent
