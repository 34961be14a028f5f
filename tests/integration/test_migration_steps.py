"""Migrations run outside a transaction, step by step (``OUTSIDE_A_TRANSACTION``): what
``CREATE INDEX CONCURRENTLY`` needs, so that an index is built while payments write the table.

On a database of its own per test (a copy of a freshly migrated one), with the shipped
migrations and one more."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.db.local_pair import SERVICE_ROLE, PairRecord
from app.db.migrator import (
    MIGRATIONS_DIR,
    OUTSIDE_A_TRANSACTION,
    Migration,
    MigrationLimits,
    MigrationTimedOut,
    load_migrations,
    migrate,
)
from tests.integration.test_migration_timeouts import (  # noqa: F401 (fixtures)
    scratch,
    template,
)

pytestmark = pytest.mark.db

EXTRA = "9999_partners_by_name"
STEPS = f"""{OUTSIDE_A_TRANSACTION}
-- built while the table is written; a run cut short is begun again
DROP INDEX CONCURRENTLY IF EXISTS partners_by_name_test;
CREATE INDEX CONCURRENTLY partners_by_name_test
    ON partners (name);
"""
INDEX = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'partners_by_name_test'::regclass"
RECORDED = "SELECT count(*) FROM schema_migrations WHERE version = 9999"


@pytest.fixture
async def owner(scratch: PairRecord) -> AsyncIterator[asyncpg.Connection]:  # noqa: F811
    conn = await asyncpg.connect(scratch.owner_dsn)
    try:
        yield conn
    finally:
        conn.terminate()


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


async def test_an_index_is_built_concurrently_and_the_migration_recorded(
    owner: asyncpg.Connection, migrations: Path
) -> None:
    (migrations / f"{EXTRA}.sql").write_text(STEPS)
    run = await migrate(owner, migrations, service_role=SERVICE_ROLE)
    assert run.applied == [EXTRA]
    assert await owner.fetchval(INDEX) is True
    assert await owner.fetchval(RECORDED) == 1
    assert (await migrate(owner, migrations, service_role=SERVICE_ROLE)).applied == []


async def test_the_same_steps_in_one_transaction_are_refused_by_postgresql(
    owner: asyncpg.Connection, migrations: Path
) -> None:
    """Why the mode exists (and that the test above would notice its absence)."""
    (migrations / f"{EXTRA}.sql").write_text(STEPS.replace(OUTSIDE_A_TRANSACTION, "-- 9999"))
    with pytest.raises(asyncpg.ActiveSQLTransactionError):
        await migrate(owner, migrations, service_role=SERVICE_ROLE)
    assert await owner.fetchval(RECORDED) == 0


async def test_a_run_cut_short_is_begun_again_and_completes(
    scratch: PairRecord,  # noqa: F811
    owner: asyncpg.Connection,
    migrations: Path,
) -> None:
    """The statement timeout stops the second step while it waits for an older transaction;
    the index it began is left invalid, the migration unrecorded. The next run drops it first
    and builds it whole."""
    (migrations / f"{EXTRA}.sql").write_text(STEPS)
    holder = await asyncpg.connect(scratch.owner_dsn)
    try:
        holding = holder.transaction(isolation="repeatable_read")
        await holding.start()
        await holder.fetch("SELECT 1 FROM partners LIMIT 1")  # CONCURRENTLY waits for it
        with pytest.raises(MigrationTimedOut) as raised:
            await migrate(
                owner, migrations, service_role=SERVICE_ROLE,
                limits=MigrationLimits(statement_timeout_ms=500),
            )  # fmt: skip
        assert EXTRA in str(raised.value)
        assert "begins it again from its first step" in str(raised.value)
        assert await owner.fetchval(RECORDED) == 0
        assert await owner.fetchval(INDEX) is False, "left invalid, as PostgreSQL leaves it"
        await holding.rollback()
    finally:
        holder.terminate()
    run = await migrate(owner, migrations, service_role=SERVICE_ROLE)
    assert run.applied == [EXTRA]
    assert await owner.fetchval(INDEX) is True
    assert await owner.fetchval(RECORDED) == 1


async def test_the_lock_timeout_does_not_stop_a_concurrent_build(
    scratch: PairRecord,  # noqa: F811
    owner: asyncpg.Connection,
    migrations: Path,
) -> None:
    """CONCURRENTLY waits for every older transaction, touching the table or not, and nobody
    queues behind that wait: a transaction open past the lock timeout only delays it."""
    (migrations / f"{EXTRA}.sql").write_text(STEPS)
    holder = await asyncpg.connect(scratch.owner_dsn)
    try:
        holding = holder.transaction(isolation="repeatable_read")
        await holding.start()
        await holder.fetch("SELECT 1 FROM audit_chain")  # another table
        migrating = asyncio.create_task(
            migrate(
                owner,
                migrations,
                service_role=SERVICE_ROLE,
                limits=MigrationLimits(lock_timeout_ms=200),
            )
        )
        await asyncio.sleep(1.0)
        assert not migrating.done()
        await holding.commit()
        run = await asyncio.wait_for(migrating, 10)
    finally:
        holder.terminate()
    assert run.applied == [EXTRA]
    assert await owner.fetchval(INDEX) is True


async def test_two_migrators_at_once_both_finish(
    scratch: PairRecord,  # noqa: F811
    owner: asyncpg.Connection,
    migrations: Path,
) -> None:
    """The second waits for the first without holding a snapshot the first's concurrent build
    would wait for (a deadlock, when it waited inside pg_advisory_lock)."""
    (migrations / f"{EXTRA}.sql").write_text(STEPS)
    other = await asyncpg.connect(scratch.owner_dsn)
    try:
        runs = await asyncio.wait_for(
            asyncio.gather(
                migrate(owner, migrations, service_role=SERVICE_ROLE),
                migrate(other, migrations, service_role=SERVICE_ROLE),
            ),
            30,
        )
    finally:
        other.terminate()
    assert sorted(run.applied for run in runs) == [[], [EXTRA]]
    assert await owner.fetchval(INDEX) is True


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("DO $$ BEGIN PERFORM 1; END $$;\n", "'\\$'"),
        ("CREATE INDEX CONCURRENTLY x ON partners (name)\n", "does not end with ';'"),
        ("DELETE FROM partners -- only old ones;\n    WHERE id < 0;\n", "'--'"),
        ("SELECT 'a;\nb';\n", '"\'"'),
        ("SELECT 1; SELECT 2;\n", "';'"),
        ("SELECT /* a;\n*/ 1;\n", "'/\\*'"),
    ],
    ids=[
        "dollar_quoted",
        "unterminated",
        "comment_after_code",
        "string",
        "two_on_a_line",
        "block_comment",
    ],
)
def test_steps_the_migrator_cannot_split_are_refused(body: str, complaint: str) -> None:
    migration = Migration(9999, "bad", f"{OUTSIDE_A_TRANSACTION}\n{body}")
    with pytest.raises(RuntimeError, match=complaint):
        _ = migration.steps


def test_the_shipped_migration_of_paid_months_key_runs_in_three_steps() -> None:
    (migration,) = [m for m in load_migrations() if m.version == 19]
    steps = migration.steps
    assert steps is not None and len(steps) == 3
    assert steps[0].startswith("DROP INDEX CONCURRENTLY IF EXISTS")
    assert "INCLUDE (paid_on)" in steps[1]
