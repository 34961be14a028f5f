"""`ssogw migrate` under a lock_timeout: a migration that must wait for a lock gives up fast,
with a message that names it, instead of queueing every query on the table behind it.

Each test runs on a database of its own (a copy of a freshly migrated one). A session holds a
lock on ``partners`` as a long enquiry would (an open transaction that read it); a new
migration then wants to alter the table. PostgreSQL queues later lock requests behind a waiting
one, so without a timeout a plain read of ``partners`` would wait for the holder too.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.db.local_pair import SERVICE_ROLE, LocalPair, PairRecord
from app.db.migrator import MIGRATIONS_DIR, MigrationLimits, MigrationTimedOut, migrate
from tests.support.scratch_db import copy_of, migrated_template

pytestmark = pytest.mark.db

BLOCKED = "9999_blocked_by_a_reader"


@pytest.fixture(scope="module")
async def template(pg_pair: tuple[LocalPair, PairRecord]) -> AsyncIterator[PairRecord]:
    async with migrated_template(pg_pair[1], "ssogw_migtimeout") as made:
        yield made


@pytest.fixture
async def scratch(template: PairRecord) -> AsyncIterator[PairRecord]:
    async with copy_of(template) as database:
        yield database


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """The shipped migrations and one more that alters ``partners``."""
    for path in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / f"{BLOCKED}.sql").write_text("ALTER TABLE partners ADD COLUMN blocked_test int;")
    return tmp_path


@pytest.mark.serial
async def test_a_migration_waiting_on_a_lock_gives_up_and_lets_readers_through(
    scratch: PairRecord, migrations: Path
) -> None:
    holder = await asyncpg.connect(scratch.owner_dsn)
    owner = await asyncpg.connect(scratch.owner_dsn)
    reader = await asyncpg.connect(scratch.owner_dsn)
    migrating: asyncio.Task[object] | None = None
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.fetch("SELECT 1 FROM partners LIMIT 1")  # ACCESS SHARE, kept until rollback

        started = time.monotonic()
        migrating = asyncio.create_task(
            migrate(
                owner,
                migrations,
                service_role=SERVICE_ROLE,
                limits=MigrationLimits(lock_timeout_ms=500),
            )
        )
        await _until_waiting(reader, owner.get_server_pid())
        # A plain read, queued behind the waiting ALTER: it gets through once the ALTER gives
        # up, while the holder still holds its lock.
        count = await asyncio.wait_for(reader.fetchval("SELECT count(*) FROM partners"), 5)
        assert count is not None
        with pytest.raises(MigrationTimedOut) as raised:
            await asyncio.wait_for(migrating, 5)
        assert time.monotonic() - started < 3, "it gave up after about lock_timeout"
        message = str(raised.value)
        assert BLOCKED in message and "500 ms" in message
        assert "SSOGW_MIGRATE_LOCK_TIMEOUT_MS" in message
        assert not holder.is_closed(), "the holder was left alone"

        applied = await reader.fetchval(
            "SELECT count(*) FROM schema_migrations WHERE name = $1",
            BLOCKED.split("_", 1)[1],
        )
        assert applied == 0, "nothing of the blocked migration was recorded"
        column = await reader.fetchval(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'partners' AND column_name = 'blocked_test'"
        )
        assert column == 0
        # The session is back to the server's defaults: no limit leaks to its next use.
        assert await owner.fetchval("SHOW lock_timeout") == "0"

        await holding.rollback()
        run = await migrate(owner, migrations, service_role=SERVICE_ROLE)
        assert run.applied == [BLOCKED], "with the holder gone, the same migration applies"
    finally:
        # terminate, not close: after a failure a connection may be mid-query.
        if migrating is not None and not migrating.done():
            migrating.cancel()
        for conn in (holder, owner, reader):
            conn.terminate()


@pytest.mark.serial
async def test_a_statement_over_the_statement_timeout_is_cancelled_and_named(
    scratch: PairRecord, migrations: Path
) -> None:
    (migrations / f"{BLOCKED}.sql").write_text("SELECT pg_sleep(2);")
    owner = await asyncpg.connect(scratch.owner_dsn)
    try:
        started = time.monotonic()
        with pytest.raises(MigrationTimedOut) as raised:
            await migrate(
                owner,
                migrations,
                service_role=SERVICE_ROLE,
                limits=MigrationLimits(statement_timeout_ms=200),
            )
        assert time.monotonic() - started < 1.5
        assert BLOCKED in str(raised.value)
        assert "SSOGW_MIGRATE_STATEMENT_TIMEOUT_MS" in str(raised.value)
        assert await owner.fetchval("SHOW statement_timeout") == "0"
    finally:
        await owner.close()


async def _until_waiting(observer: asyncpg.Connection, pid: int) -> None:
    """Until session ``pid`` waits for a lock (the ALTER queued behind the holder)."""
    for _ in range(100):
        if await observer.fetchval(
            "SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted", pid
        ):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the migration never waited for the lock")
