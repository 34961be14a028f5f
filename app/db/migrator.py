"""Applies the numbered SQL files under ``migrations/`` in order, each in its own transaction,
then the service role's privileges (``grants.py``); run as the schema's owner."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.db.grants import apply_grants

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_KEY = 0x55_47_57_4D  # advisory lock: one migrator at a time, across instances


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class MigrationRun:
    """What one run did: the migrations applied, tables no grant covers (the service role
    cannot use them; add them to ``app/db/grants.py``), whether any privilege changed."""

    applied: list[str]
    uncovered: list[str]
    grants_changed: bool


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in version order; file names are ``NNNN_name.sql``."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append(Migration(int(number), name, path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {directory}")
    return found


async def migrate(
    conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR, *, service_role: str
) -> MigrationRun:
    """Apply pending migrations, keep the audit partitions ahead and grant ``service_role``
    its privileges again; ``conn`` is the schema owner's."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        # Inside the lock: instances migrating an empty database at once must not collide.
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer     PRIMARY KEY,
                   name       text        NOT NULL,
                   checksum   text        NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            row["version"]: row["checksum"]
            for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        for migration in load_migrations(directory):
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.version:04d}_{migration.name} was changed after "
                        "it was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied.append(f"{migration.version:04d}_{migration.name}")
        # Keep a year of audit partitions ahead of today, whatever the migrations said: the
        # owner's job, so the running gateway never needs the right to create tables.
        await conn.execute(
            "SELECT ssogw_ensure_audit_partitions(date_trunc('month', now())::date, 13)"
        )
        # After every run, so that a table a migration added (or a new partition) is covered.
        granted = await apply_grants(conn, service_role=service_role)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    return MigrationRun(applied, granted.uncovered, granted.changed)
