"""Applies the numbered SQL files under ``migrations/`` in order, each in its own transaction,
then the service role's privileges (``grants.py``); run as the schema's owner.

A migration whose first line is ``OUTSIDE_A_TRANSACTION`` runs step by step instead, each step
in a transaction of its own: for ``CREATE INDEX CONCURRENTLY``, which builds an index while
payments go on writing the table, and which PostgreSQL refuses inside a transaction. Its steps
are its statements, each ending with ``;`` at the end of a line. So that the split cannot cut a
statement anywhere else, such a file holds nothing but statements and whole-line ``--``
comments: no quotes, no comment after code, no ``/*``, no ``$``, no ``;`` but at a line's end
(the migrator refuses it otherwise). A run cut short leaves the steps done so far, and the next
run begins the migration again from its first step, so every step must be safe to run again
(``DROP INDEX CONCURRENTLY IF EXISTS`` first). A ``CONCURRENTLY`` step runs without the lock
timeout: it waits for transactions older than it to end, which queues nobody behind it
(``statement_timeout`` still bounds it).

Every statement runs under a ``lock_timeout``: a migration that waits for a lock another session
holds (a long enquiry, a stuck transaction) gives up and rolls back instead of sitting in the
lock queue, where every later query on that table would wait behind it.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from app.db.grants import apply_grants

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
OUTSIDE_A_TRANSACTION = "-- ssogw: outside a transaction"
#: What a step-by-step migration's statements may not hold: a string, a comment after code or
#: a dollar-quoted body could hold a ';' at a line's end that does not end the statement.
_UNSPLITTABLE = ("'", '"', "$", "--", "/*")
LOCK_KEY = 0x55_47_57_4D  # advisory lock: one migrator at a time, across instances
LOCK_POLL_S = 0.5


class MigrationTimedOut(RuntimeError):
    """A step of the migrator waited too long for a lock, or ran too long: it was rolled back."""


@dataclass(frozen=True, slots=True)
class MigrationLimits:
    """``lock_timeout`` and ``statement_timeout`` of the migrating session, in ms (0: none)."""

    lock_timeout_ms: int = 5_000
    statement_timeout_ms: int = 0


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def steps(self) -> list[str] | None:
        """The statements run one by one, outside a transaction; None: the whole file in one."""
        if self.sql.lstrip("\ufeff").partition("\n")[0].strip() != OUTSIDE_A_TRANSACTION:
            return None
        steps, lines = [], []
        for number, line in enumerate(self.sql.splitlines(), start=1):
            if line.lstrip().startswith("--"):
                continue
            code = line.rstrip()
            unsafe = [t for t in _UNSPLITTABLE if t in code] + [";"] * (";" in code[:-1])
            if unsafe:
                raise RuntimeError(
                    f"migration {self.version:04d}_{self.name} runs outside a transaction, step"
                    f" by step: line {number} holds {unsafe[0]!r}, which could hide where a step"
                    " ends (only statements and whole-line -- comments; ';' only at a line's end)"
                )
            lines.append(line)
            if code.endswith(";"):
                steps.append("\n".join(lines).strip())
                lines = []
        if "\n".join(lines).strip():
            raise RuntimeError(
                f"migration {self.version:04d}_{self.name}: its last step does not end with ';'"
            )
        return steps


@dataclass(frozen=True, slots=True)
class MigrationRun:
    """What one run did: the migrations applied, tables no grant covers (the service role
    cannot use them; add them to ``app/db/grants.py``), whether any privilege changed."""

    applied: list[str]
    uncovered: list[str]
    grants_changed: bool
    #: Migrations on record that this release does not know: a newer release migrated the
    #: database, and its grants were left as it set them.
    newer: list[str] = field(default_factory=list)


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
    conn: asyncpg.Connection,
    directory: Path = MIGRATIONS_DIR,
    *,
    service_role: str,
    limits: MigrationLimits = MigrationLimits(),
) -> MigrationRun:
    """Apply pending migrations, keep the audit partitions ahead and grant ``service_role``
    its privileges again; ``conn`` is the schema owner's. A step that exceeds ``limits``
    raises ``MigrationTimedOut`` (what it did is rolled back; the steps before it stay).

    On a database a newer release migrated (migrations on record that ``directory`` lacks),
    only the partitions are kept ahead: the grants stay as that release set them, since this
    release's would revoke what its instances call. They are named in ``MigrationRun.newer``."""
    # Another migrator (the monthly job, a second deploy) may hold this: wait for it, as the
    # timeouts below are set only once it is ours. Asked again and again, not waited for in
    # one statement: a statement waiting keeps a snapshot open, which the holder's CREATE
    # INDEX CONCURRENTLY would wait for in turn (a deadlock). No event to wait on: the holder
    # is another process.
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):  # noqa: ASYNC110
        await asyncio.sleep(LOCK_POLL_S)
    try:
        await _set_limits(conn, limits)
        return await _run(conn, directory, service_role, limits)
    finally:
        await conn.execute("RESET lock_timeout; RESET statement_timeout")
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def _step(conn: asyncpg.Connection, statement: str, limits: MigrationLimits) -> None:
    """One step of a migration run outside a transaction."""
    if "CONCURRENTLY" not in statement.upper():
        await conn.execute(statement)
        return
    await conn.execute("SET lock_timeout = 0")
    try:
        await conn.execute(statement)
    finally:
        await _set_limits(conn, limits)


async def _set_limits(conn: asyncpg.Connection, limits: MigrationLimits) -> None:
    for name, value in (
        ("lock_timeout", limits.lock_timeout_ms),
        ("statement_timeout", limits.statement_timeout_ms),
    ):
        await conn.execute("SELECT set_config($1, $2, false)", name, f"{value}ms")


async def _run(
    conn: asyncpg.Connection, directory: Path, service_role: str, limits: MigrationLimits
) -> MigrationRun:
    applied: list[str] = []
    step = "schema_migrations"
    undone = _ROLLED_BACK
    try:
        # Inside the lock: instances migrating an empty database at once must not collide.
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer     PRIMARY KEY,
                   name       text        NOT NULL,
                   checksum   text        NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        recorded = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        done = {row["version"]: row["checksum"] for row in recorded}
        known = load_migrations(directory)
        if not known:  # every migration on record would pass for a newer release's
            raise RuntimeError(f"no migrations in {directory}: is this release installed whole?")
        newer = _newer(recorded, known)
        if newer:
            # An older release (the monthly job's image during a rollout, a rollback's Job):
            # its grants would revoke what the newer release's instances call.
            step = "the audit partitions ahead"
            await _ensure_partitions(conn)
            return MigrationRun([], [], False, newer)
        for migration in known:
            step = f"{migration.version:04d}_{migration.name}"
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise RuntimeError(
                        f"migration {step} was changed after it was applied; add a new "
                        "migration instead"
                    )
                continue
            steps = migration.steps
            if steps is not None:
                undone = _STEPS_UNDONE
                for statement in steps:
                    await _step(conn, statement, limits)
            async with conn.transaction():
                if steps is None:
                    await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            undone = _ROLLED_BACK
            applied.append(step)
        # Keep a year of audit partitions ahead of today, whatever the migrations said: the
        # owner's job, so the running gateway never needs the right to create tables.
        step = "the audit partitions ahead"
        await _ensure_partitions(conn)
        # After every run, so that a table a migration added (or a new partition) is covered.
        step = "the service role's grants"
        granted = await apply_grants(conn, service_role=service_role)
    except asyncpg.LockNotAvailableError as exc:
        raise MigrationTimedOut(
            f"{step}: waited more than {limits.lock_timeout_ms} ms for a lock another session "
            f"holds, and gave up so that queries do not queue behind it; {undone}"
            f"{_done_before(applied)}. Find the holder (pg_stat_activity, pg_locks) and run "
            "`ssogw migrate` again; SSOGW_MIGRATE_LOCK_TIMEOUT_MS sets the wait"
        ) from exc
    except asyncpg.DeadlockDetectedError as exc:
        raise MigrationTimedOut(
            f"{step}: PostgreSQL found it waiting in a deadlock with another session and "
            f"stopped it; {undone}{_done_before(applied)}. Run `ssogw migrate` again"
        ) from exc
    except asyncpg.QueryCanceledError as exc:
        raise MigrationTimedOut(
            f"{step}: a statement ran longer than {limits.statement_timeout_ms} ms and was "
            f"cancelled; {undone}{_done_before(applied)}. "
            "SSOGW_MIGRATE_STATEMENT_TIMEOUT_MS sets the limit (0: none)"
        ) from exc
    return MigrationRun(applied, granted.uncovered, granted.changed)


async def _ensure_partitions(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT ssogw_ensure_audit_partitions(date_trunc('month', now())::date, 13)")


def _newer(recorded: list[asyncpg.Record], known: list[Migration]) -> list[str]:
    """The migrations on record that ``known`` lacks (a newer release applied them). With one
    of ``known`` not on record as well, or on record under its number with other contents (a
    hotfix numbered like a newer release's migration, a file changed after it was applied), the
    two histories have forked: RuntimeError, before anything is applied."""
    versions = {m.version for m in known}
    newer = [
        f"{r['version']:04d}_{r['name']}"
        for r in sorted(recorded, key=lambda r: r["version"])
        if r["version"] not in versions
    ]
    if not newer:
        return []
    on_record = {r["version"]: r for r in recorded}
    missing = [gap for m in known if (gap := _lacking(m, on_record.get(m.version)))]
    if missing:
        raise RuntimeError(
            f"the database holds migrations this release does not know ({', '.join(newer)})"
            f" and lacks some it knows ({'; '.join(missing)}): the histories have forked;"
            " nothing was applied and no privilege changed"
        )
    return newer


def _lacking(migration: Migration, recorded: asyncpg.Record | None) -> str | None:
    """How the database lacks ``migration`` (not on record, or other contents under its
    number), or None when it holds it."""
    name = f"{migration.version:04d}_{migration.name}"
    if recorded is None:
        return name
    if recorded["checksum"] == migration.checksum:
        return None
    if recorded["name"] == migration.name:
        return f"{name}, on record with other contents"
    return f"{name}, on record as {migration.version:04d}_{recorded['name']}"


_ROLLED_BACK = "it was rolled back"
_STEPS_UNDONE = "the steps it finished stay, and the next run begins it again from its first step"


def _done_before(applied: list[str]) -> str:
    return f" (applied before it: {', '.join(applied)})" if applied else ""
