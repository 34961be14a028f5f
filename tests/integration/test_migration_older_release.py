"""`ssogw migrate` of an older release, on a database a newer release has migrated.

It happens in a rolling upgrade: the monthly ``ssogw-partitions`` CronJob still runs the old
image between the new release's migrate Job and the rollout, and a rollback runs the old
release's migrate Job while new instances still serve. The old migrator knows fewer
migrations and fewer ``SERVICE_ROUTINES``; were it to apply its grants, it would revoke what
the newer release's instances call (``ssogw_confirm_read``, migration 0023), and every confirm
would fail until the newer migrate ran again. It leaves the grants as the newer release set
them, still keeps the audit partitions ahead, and says which migrations it does not know.

On a database of its own per test (a copy of a freshly migrated one); the "older release" is
the release before migration 0023: the migrations before it, and its grants table without the
routine 0023 adds.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.db import grants
from app.db.local_pair import SERVICE_ROLE, PairRecord
from app.db.migrator import MIGRATIONS_DIR, load_migrations, migrate
from tests.integration.test_migration_timeouts import (  # noqa: F401 (fixtures)
    scratch,
    template,
)

pytestmark = pytest.mark.db

ADDS_THE_ROUTINE = "0023_confirm_read_under_lock"
NEWER = sorted(p.stem for p in MIGRATIONS_DIR.glob("*.sql") if p.stem >= ADDS_THE_ROUTINE)
MAY_CALL = "SELECT has_function_privilege($1, p.oid, 'EXECUTE') FROM pg_proc p WHERE proname = $2"
PARTITIONS = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass"


@pytest.fixture
async def owner(scratch: PairRecord) -> AsyncIterator[asyncpg.Connection]:  # noqa: F811
    conn = await asyncpg.connect(scratch.owner_dsn)
    try:
        yield conn
    finally:
        conn.terminate()


@pytest.fixture
def older(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The release before migration 0023: the migrations before it, and a grants table that
    does not know the routine it adds."""
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if path.stem < ADDS_THE_ROUTINE:
            shutil.copy(path, tmp_path / path.name)
    routines = tuple(name for name in grants.SERVICE_ROUTINES if name != "ssogw_confirm_read")
    monkeypatch.setattr(grants, "SERVICE_ROUTINES", routines)
    return tmp_path


def test_migration_0023_adds_the_routine_the_tests_below_stand_on() -> None:
    (migration,) = [m for m in load_migrations() if f"{m.version:04d}_{m.name}" == ADDS_THE_ROUTINE]
    assert "CREATE FUNCTION ssogw_confirm_read" in migration.sql
    assert "ssogw_confirm_read" in grants.SERVICE_ROUTINES


async def test_an_older_release_leaves_the_grants_of_the_newer_one(
    owner: asyncpg.Connection, older: Path
) -> None:
    assert await owner.fetchval(MAY_CALL, SERVICE_ROLE, "ssogw_confirm_read") is True
    run = await migrate(owner, older, service_role=SERVICE_ROLE)
    assert await owner.fetchval(MAY_CALL, SERVICE_ROLE, "ssogw_confirm_read") is True
    assert run.applied == []
    assert run.newer == NEWER
    assert run.grants_changed is False


async def test_an_older_release_still_keeps_the_audit_partitions_ahead(
    owner: asyncpg.Connection, older: Path
) -> None:
    partitions = await owner.fetchval(PARTITIONS)
    newest = await owner.fetchval(
        "SELECT max(c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'audit_log'::regclass AND c.relname <> 'audit_log_default'"
    )
    await owner.execute(f"DROP TABLE {newest}")
    await migrate(owner, older, service_role=SERVICE_ROLE)
    assert await owner.fetchval(PARTITIONS) == partitions


async def test_the_release_that_knows_every_migration_applies_its_grants(
    owner: asyncpg.Connection,
) -> None:
    """The same run, by the release that knows them all, restores a revoked privilege (so the
    test above would notice an older migrator that still applied its grants)."""
    await owner.execute(f"REVOKE EXECUTE ON FUNCTION ssogw_confirm_read FROM {SERVICE_ROLE}")
    run = await migrate(owner, service_role=SERVICE_ROLE)
    assert run.newer == []
    assert run.grants_changed is True
    assert await owner.fetchval(MAY_CALL, SERVICE_ROLE, "ssogw_confirm_read") is True


async def test_an_older_release_that_misses_one_of_its_own_migrations_changes_nothing(
    owner: asyncpg.Connection, older: Path
) -> None:
    """Newer migrations applied, and one this release knows not: the history has forked (a
    hotfix numbered apart); nothing is applied and the run fails, naming both."""
    fork = older / "0099_a_fork_of_this_release.sql"
    fork.write_text("CREATE TABLE forked_test (id int);")
    await _fails_as_forked(owner, older, "0099_a_fork_of_this_release", "forked_test")


async def _fails_as_forked(owner: asyncpg.Connection, folder: Path, own: str, table: str) -> None:
    """The run of ``folder`` fails naming the newer migrations and its ``own`` one, without
    creating ``table`` (what ``own`` creates) or revoking what the newer release granted."""
    with pytest.raises(RuntimeError) as raised:
        await migrate(owner, folder, service_role=SERVICE_ROLE)
    message = str(raised.value)
    assert ADDS_THE_ROUTINE in message and own in message
    assert await owner.fetchval("SELECT to_regclass($1)", table) is None
    assert await owner.fetchval(MAY_CALL, SERVICE_ROLE, "ssogw_confirm_read") is True


@pytest.fixture
def hotfixed(older: Path) -> Path:
    """The older release with a hotfix numbered like a migration on record (0022): the number
    is on record, this release's migration under it is not."""
    (taken,) = older.glob("0022_*.sql")
    taken.unlink()
    (older / "0022_a_hotfix_of_this_release.sql").write_text("CREATE TABLE hotfix_test (id int);")
    return older


async def test_an_older_release_whose_migration_differs_from_the_one_on_record_changes_nothing(
    owner: asyncpg.Connection, hotfixed: Path
) -> None:
    """Its migration differs from the one on record under its number (a hotfix, or a file
    changed after it was applied): the run fails naming it, as a changed migration fails on a
    database this release migrated, instead of taking the database for a newer release's while
    this release's hotfix was never applied."""
    await _fails_as_forked(owner, hotfixed, "0022_a_hotfix_of_this_release", "hotfix_test")


async def test_a_release_with_no_migrations_changes_nothing(
    owner: asyncpg.Connection, tmp_path: Path
) -> None:
    """An image installed without its migrations must not pass for an older release."""
    with pytest.raises(RuntimeError, match="no migrations in"):
        await migrate(owner, tmp_path, service_role=SERVICE_ROLE)
