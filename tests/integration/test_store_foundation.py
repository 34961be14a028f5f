"""The foundation on real PostgreSQL: migrations, constraints, a read-only replica.

Replication and read-routing faults (the replica stopped) run on the fault-injection pair:
tests/reliability/test_read_routing.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.db.config import database_config
from app.db.database import Database
from app.db.failures import translated
from app.db.local_pair import SERVICE_ROLE
from app.db.migrator import migrate
from app.errors import ReadOnlyStore
from app.settings import Settings

pytestmark = pytest.mark.db


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(database_config(settings))
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def test_a_write_sent_to_the_replica_fails_with_the_projects_own_code(db: Database) -> None:
    replica_pool = db.router.replicas[0].pool
    with pytest.raises(ReadOnlyStore) as refused:
        async with translated("replica"):
            await replica_pool.execute("CREATE TABLE must_not_exist (x int)")
    assert refused.value.code == "server.read_only_store"


async def test_migrations_run_twice_change_nothing(owner_pool: asyncpg.Pool) -> None:
    # As the owner, as `ssogw migrate` runs; the grants it applies again come out the same.
    state = (
        "SELECT version, checksum, NULL AS acl FROM schema_migrations UNION ALL"
        " SELECT NULL, relname, relacl::text FROM pg_class"
        " WHERE relnamespace = current_schema()::regnamespace ORDER BY 1, 2"
    )
    async with owner_pool.acquire() as conn:
        before = await conn.fetch(state)
        run = await migrate(conn, service_role=SERVICE_ROLE)
        after = await conn.fetch(state)
    assert (run.applied, run.uncovered, run.grants_changed) == ([], [], False)
    assert [tuple(r) for r in before] == [tuple(r) for r in after]
    assert sum(r["version"] is not None for r in after) >= 2


async def test_a_month_cannot_be_paid_twice(db: Database) -> None:
    nid = "3100600445635"
    async with db.primary.acquire() as conn:
        await conn.execute(
            "INSERT INTO insured_persons (national_id, title, first_name, last_name, section,"
            " effective_date) VALUES ($1, 'นาย', 'ทดสอบ', 'ซ้ำ', 39, '2020-01-01')"
            " ON CONFLICT DO NOTHING",
            nid,
        )
        insert = (
            "INSERT INTO paid_months (national_id, section, month, amount_satang, paid_on)"
            " VALUES ($1, 39, '2024-05-01', 43200, '2024-06-10')"
        )
        await conn.execute("DELETE FROM paid_months WHERE national_id = $1", nid)
        await conn.execute(insert, nid)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(insert, nid)


async def test_the_rate_history_is_seeded(db: Database) -> None:
    rows = await db.primary.fetch(
        "SELECT section, s40_option, first_month::text, amount_satang FROM contribution_rates"
    )
    assert (39, None, "2020-03-01", 8600) in [tuple(r) for r in rows]
    assert (40, 3, "2021-08-01", 18000) in [tuple(r) for r in rows]
