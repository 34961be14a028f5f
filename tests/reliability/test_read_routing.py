"""Read routing on this package's own pair: a row written on the primary is read back from the
replica, and with the replica stopped reads fall back to the primary and return afterwards.

Moved here from tests/integration/test_store_foundation.py: these tests stop the replica, which
the session pair other tests share must never see.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from app.db.config import database_config
from app.db.database import Database
from app.db.local_pair import LocalPair, PairRecord
from app.domain.months import Month
from app.settings import Settings
from tests.reliability.conftest import ensure_pair_up
from tests.support.people import add_person

pytestmark = [pytest.mark.reliability, pytest.mark.serial]


@pytest.fixture
async def db(rel_pair: tuple[LocalPair, PairRecord], tmp_path: Path) -> AsyncIterator[Database]:
    pair, record = rel_pair
    await ensure_pair_up(pair, record)
    settings = Settings(
        data_dir=tmp_path,
        primary_dsn=record.primary_dsn,
        replica_dsns=[record.replica_dsn],
        replica_probe_interval_s=0.1,
        replica_max_lag_s=2.0,
        primary_pool_min=1,
        replica_pool_min=1,
    )
    database = Database(database_config(settings))
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_a_row_written_on_the_primary_is_read_back_from_the_replica(db: Database) -> None:
    # Written and read as the service role, as the gateway does.
    async with db.primary.acquire() as conn:
        key = await add_person(conn, section=40, coverage_start=Month(2020, 1))

    async def replica_has_it() -> bool:
        await db.router.probe()

        async def read(conn: asyncpg.Connection) -> object:
            return await conn.fetchval(
                "SELECT national_id FROM insured_persons WHERE national_id = $1", key
            )

        value, info = await db.router.run_read(read)
        return value == key and info.path == "replica"

    await wait_for(replica_has_it)


async def test_with_the_replica_stopped_reads_fall_back_and_return(
    db: Database, rel_pair: tuple[LocalPair, PairRecord]
) -> None:
    pair, _ = rel_pair

    async def path() -> str:
        async def read(conn: asyncpg.Connection) -> object:
            return await conn.fetchval("SELECT 1")

        _, info = await db.router.run_read(read)
        return info.path

    async def probed_path_is(expected: str) -> bool:
        await db.router.probe()
        return await path() == expected

    await wait_for(lambda: probed_path_is("replica"))
    await asyncio.to_thread(pair.stop, "replica")
    try:
        await db.router.probe()
        assert await path() == "primary"
        assert db.router.status()[0]["up"] is False
    finally:
        await asyncio.to_thread(pair.start, "replica")
    await wait_for(lambda: probed_path_is("replica"), timeout=30)
