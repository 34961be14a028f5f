"""The read router on the session pair, as a failover leaves it: a replica DSN that reaches the
primary is reported (role ``primary``) and never read as a replica; a read that carries its
replay position is checked on the connection that served it, so a standby behind this
instance's newest write is not believed even when the last probe found it fresh; a write the
primary's DSN sends to a standby (a demoted primary) is retryable, not a server fault."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.db.config import database_config
from app.db.database import Database
from app.db.failures import translated
from app.db.local_pair import LocalPair, PairRecord
from app.db.replica_router import parse_lsn
from app.domain.months import Month
from app.errors import StoreUnavailable
from app.settings import Settings
from tests.support.people import add_person, wait_replayed

FIND = (
    "SELECT (SELECT count(*) FROM insured_persons WHERE national_id = $1) AS found,"
    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text END AS replay_lsn"
)


@pytest.fixture
async def db(settings: Settings, pg_pair: tuple[LocalPair, PairRecord]) -> AsyncIterator[Database]:
    """The router with both nodes as replicas (the primary first), probed only when told."""
    _, record = pg_pair
    both = settings.model_copy(
        update={
            "replica_dsns": [record.primary_dsn, record.replica_dsn],
            "replica_probe_interval_s": 60.0,
        }
    )
    database = Database(database_config(both))
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def test_a_replica_dsn_that_reaches_the_primary_is_never_read(db: Database) -> None:
    status = {s["replica"]: s for s in db.router.status()}
    assert status["replica-0"]["role"] == "primary" and status["replica-0"]["up"] is True
    assert status["replica-0"]["fresh"] is False
    assert status["replica-1"]["role"] == "standby" and status["replica-1"]["fresh"] is True

    async def in_recovery(conn: asyncpg.Connection) -> bool:
        value: bool = await conn.fetchval("SELECT pg_is_in_recovery()")
        return value

    for _ in range(10):
        standby, info = await db.router.run_read(in_recovery)
        assert info.path == "replica" and info.replica == "replica-1" and standby is True


async def test_a_standby_behind_the_newest_write_is_not_believed(
    db: Database, replica_superuser: asyncpg.Connection
) -> None:
    router = db.router
    async with db.primary.acquire() as conn:
        await wait_replayed(conn, [router.replicas[1].pool])
    await router.probe()
    await replica_superuser.execute("SELECT pg_wal_replay_pause()")
    try:
        async with db.primary.acquire() as conn:
            nid = await add_person(conn, section=40, coverage_start=Month(2020, 1))
            lsn = parse_lsn(await conn.fetchval("SELECT pg_current_wal_lsn()::text"))
        assert lsn is not None
        router.saw_write(lsn)  # as a confirm on this instance does

        async def find(conn: asyncpg.Connection) -> asyncpg.Record:
            row: asyncpg.Record = await conn.fetchrow(FIND, nid)
            return row

        # The probe alone still finds the standby fresh, and it has not seen the write ...
        row, info = await router.run_read(find)
        assert info.path == "replica" and row["found"] == 0
        # ... while the read that says how far its standby has replayed is not believed there.
        row, info = await router.run_read(find, replayed=lambda r: parse_lsn(r["replay_lsn"]))
        assert info.path == "primary" and row["found"] == 1
    finally:
        await replica_superuser.execute("SELECT pg_wal_replay_resume()")
    async with db.primary.acquire() as conn:
        await wait_replayed(conn, [router.replicas[1].pool])
    row, info = await router.run_read(find, replayed=lambda r: parse_lsn(r["replay_lsn"]))
    assert info.path == "replica" and row["found"] == 1


async def test_a_write_the_primary_dsn_sends_to_a_standby_is_retryable(db: Database) -> None:
    standby = db.router.replicas[1].pool  # read-only, as a demoted primary is
    with pytest.raises(StoreUnavailable) as refused:
        async with translated("primary"):
            await standby.execute("CREATE TABLE must_not_exist (x int)")
    assert refused.value.retryable and refused.value.details["reason"] == "read_only"
