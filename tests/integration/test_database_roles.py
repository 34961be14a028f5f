"""Append-only by construction: the gateway connects as a service role that may add audit
records and never change, remove or truncate them; the owner migrates; every table of the
schema is decided in app/db/grants.py (docs/operations.md, "Database roles")."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from app.audit.records import AuditRecord
from app.cli import main as cli
from app.db.grants import SERVICE_ROUTINES, SERVICE_TABLES, is_audit_table, uncovered
from app.db.local_pair import OWNER_ROLE, SERVICE_ROLE, LocalPair, PairRecord
from app.db.migrator import load_migrations
from app.domain.national_id import generate_national_id
from app.main import Gateway

pytestmark = pytest.mark.db

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def audit_record(at: datetime, request_id: str) -> AuditRecord:
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    return AuditRecord(at=at, protocol="rest", operation="inquireContribution", outcome="ok",
                       request_id=request_id, principal_kind="client", national_id=nid,
                       name_returned="นาง สมหญิง ใจดี")  # fmt: skip


# --- the service role cannot rewrite the audit trail ------------------------------------------
@pytest.fixture
async def written(gateway: Gateway) -> dict[str, str]:
    """Two records the gateway wrote: one this month, one in the default partition; the
    partition each landed in -> its request id."""
    now = datetime.now(UTC)
    old = datetime(1950, 1, 1, tzinfo=UTC) + timedelta(hours=random.randrange(24 * 365 * 9))
    placed: dict[str, str] = {}
    for at in (now, old):
        request_id = uuid.uuid4().hex
        await gateway.audit.record(audit_record(at, request_id))
        partition = await gateway.db.primary.fetchval(
            "SELECT tableoid::regclass::text FROM audit_log WHERE request_id = $1", request_id
        )
        placed[partition] = request_id
    assert "audit_log_default" in placed and len(placed) == 2
    return placed


ATTEMPTS = {
    "update": "UPDATE {table} SET outcome = 'forged' WHERE request_id = $1",
    "delete": "DELETE FROM {table} WHERE request_id = $1",
    "truncate": "TRUNCATE {table}",
    "drop a constraint": "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_pkey",
    "drop": "DROP TABLE {table}",
}


@pytest.mark.parametrize("attempt", ATTEMPTS)
@pytest.mark.parametrize("target", ["audit_log", "a monthly partition", "the default partition"])
async def test_the_service_role_can_neither_change_nor_remove_audit_records(
    gateway: Gateway, written: dict[str, str], attempt: str, target: str
) -> None:
    monthly = next(p for p in written if p != "audit_log_default")
    table = {"audit_log": "audit_log", "a monthly partition": monthly}.get(
        target, "audit_log_default"
    )
    request_id = written[monthly if table == "audit_log" else table]
    sql = ATTEMPTS[attempt].format(table=table)
    args = [request_id] if "$1" in sql else []
    async with gateway.db.primary.acquire() as conn:  # the gateway's own connection
        assert await conn.fetchval("SELECT current_user") == SERVICE_ROLE
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(sql, *args)
    for partition, rid in written.items():
        rows = await gateway.db.primary.fetch(
            "SELECT tableoid::regclass::text AS part, outcome FROM audit_log WHERE request_id = $1",
            rid,
        )
        assert [(r["part"], r["outcome"]) for r in rows] == [(partition, "ok")]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM audit_chain",
        "TRUNCATE audit_chain",
        "INSERT INTO audit_chain (id, last_seq, last_hash) VALUES (false, 0, '\\x00')",
        "UPDATE audit_chain SET id = id",
        "UPDATE audit_chain SET last_seq = last_seq",  # only the owner's functions move it
        "SELECT 1 FROM audit_chain WHERE id FOR UPDATE",  # nor may it be held
        "SELECT 1 FROM audit_chain WHERE id FOR KEY SHARE",
        "DO $$ BEGIN LOCK TABLE audit_chain IN ROW EXCLUSIVE MODE; END $$",
        "INSERT INTO audit_log (seq, at, principal_kind, protocol, operation, outcome,"
        " request_id, prev_hash, hash) VALUES (1, now(), 'a', 'b', 'c', 'd', 'e', '', '')",
        "DELETE FROM audit_unlinked",
        "INSERT INTO audit_log_default SELECT * FROM audit_log LIMIT 0",  # only through the parent
        "SELECT ssogw_ensure_audit_partitions('2200-01-01', 1)",  # partitions: the owner's job
        "CREATE TABLE audit_shadow (LIKE audit_log)",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    ],
)
async def test_the_chain_head_only_moves_and_the_schema_is_not_the_services(
    gateway: Gateway, sql: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await gateway.db.primary.execute(sql)


# --- what the grants say, read back from the catalog ------------------------------------------
async def test_every_relation_of_the_schema_is_decided_in_the_grants(
    owner_pool: asyncpg.Pool,
) -> None:
    async with owner_pool.acquire() as conn:
        missing = await uncovered(conn)
    assert missing == [], f"add these to SERVICE_TABLES in app/db/grants.py: {missing}"


async def test_no_audit_table_lets_the_service_role_update_delete_or_truncate(
    owner_pool: asyncpg.Pool,
) -> None:
    rows = await owner_pool.fetch(
        "SELECT c.relname AS name,"
        " has_table_privilege($1, c.oid, 'UPDATE') AS can_update,"
        " has_table_privilege($1, c.oid, 'DELETE') AS can_delete,"
        " has_table_privilege($1, c.oid, 'TRUNCATE') AS can_truncate,"
        " ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid"
        "   AND a.attnum > 0 AND NOT a.attisdropped"
        "   AND has_column_privilege($1, c.oid, a.attnum, 'UPDATE') ORDER BY a.attname)"
        "   AS updatable"
        " FROM pg_class c"
        " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')"
        "   AND (c.relname LIKE 'audit\\_%' OR c.relispartition"
        "        AND pg_partition_root(c.oid) = 'audit_log'::regclass)",
        SERVICE_ROLE,
    )
    names = {row["name"] for row in rows}
    assert {"audit_log", "audit_log_default", "audit_chain"} <= names
    assert sum(name[-6:].isdigit() for name in names) >= 13, "a year of monthly partitions"
    for row in rows:
        assert not (row["can_update"] or row["can_truncate"] or row["can_delete"]), row["name"]
        assert row["updatable"] == [], row["name"]
    granted = await owner_pool.fetch(
        "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
        " WHERE grantee = $1 AND table_name LIKE 'audit\\_%'"
        "   AND privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')",
        SERVICE_ROLE,
    )
    assert granted == []
    # What it may call instead: the owner's append and link functions, and a confirm's read
    # (its own rights), nothing else.
    callable_ = await owner_pool.fetch(
        "SELECT p.proname::text AS name FROM pg_proc p"
        " WHERE p.pronamespace = current_schema()::regnamespace"
        "   AND has_function_privilege($1, p.oid, 'EXECUTE') ORDER BY 1",
        SERVICE_ROLE,
    )
    assert tuple(r["name"] for r in callable_) == SERVICE_ROUTINES


async def test_a_record_waiting_for_its_link_cannot_be_deleted_by_the_service_role(
    gateway: Gateway, owner_pool: asyncpg.Pool
) -> None:
    """The service may not DELETE from audit_unlinked at all (the owner's link function moves
    records onto the chain); even the owner's plain DELETE lets a record go only once it is on
    the chain (the queue's guard)."""
    rid = uuid.uuid4().hex
    # The chain head held meanwhile, so no linker moves the record onto the chain.
    async with owner_pool.acquire() as head, owner_pool.acquire() as writer, head.transaction():
        await head.execute("SELECT 1 FROM audit_chain WHERE id FOR UPDATE")
        await writer.execute(  # a committed record, waiting for its link
            "INSERT INTO audit_unlinked (record_id, at, principal_kind, protocol, operation,"
            " outcome, request_id) VALUES (gen_random_uuid(), now(), 'anon', 'rest',"
            " 'forged', 'ok', $1)",
            rid,
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await gateway.db.primary.execute(
                "DELETE FROM audit_unlinked WHERE request_id = $1", rid
            )
        with pytest.raises(
            asyncpg.InsufficientPrivilegeError, match="only once it is on the chain"
        ):
            await writer.execute("DELETE FROM audit_unlinked WHERE request_id = $1", rid)
    count = "SELECT count(*) FROM audit_records WHERE request_id = $1"
    assert await gateway.db.primary.fetchval(count, rid) == 1


async def test_the_service_role_holds_exactly_what_the_grants_say(
    owner_pool: asyncpg.Pool,
) -> None:
    held: dict[str, set[str]] = {}
    for privilege in PRIVILEGES:
        for row in await owner_pool.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
            " AND relkind IN ('r', 'p', 'v', 'm') AND has_table_privilege($1, oid, $2)",
            SERVICE_ROLE,
            privilege,
        ):
            held.setdefault(row["relname"], set()).add(privilege)
    expected = {name: set(t.privileges) for name, t in SERVICE_TABLES.items() if t.privileges}
    assert held == expected
    assert not any(is_audit_table(name) and privs - {"SELECT", "INSERT"}
                   for name, privs in held.items())  # fmt: skip
    assert held["audit_log"] == held["audit_chain"] == {"SELECT"}


async def test_the_gateway_connects_as_an_unprivileged_role_that_owns_nothing(
    gateway: Gateway, owner_pool: asyncpg.Pool
) -> None:
    pools = [
        gateway.db.primary,
        gateway.db.audit_pool,
        *(r.pool for r in gateway.db.router.replicas),
    ]
    for pool in pools:
        assert await pool.fetchval("SELECT current_user") == SERVICE_ROLE
    role = await owner_pool.fetchrow(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls,"
        " (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid) AS memberships,"
        " (SELECT count(*) FROM pg_class WHERE relowner = r.oid)"
        " + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)"
        " + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)"
        " + (SELECT count(*) FROM pg_type WHERE typowner = r.oid)"
        " + (SELECT count(*) FROM pg_database WHERE datdba = r.oid) AS owned"
        " FROM pg_roles r WHERE rolname = $1",
        SERVICE_ROLE,
    )
    assert role is not None and not any(dict(role).values()), dict(role)
    assert await owner_pool.fetchval("SELECT current_user") == OWNER_ROLE


# --- `ssogw migrate` as the owner ----------------------------------------------------------------
@pytest.fixture
def fresh_database(pg_pair: tuple[LocalPair, PairRecord]) -> Iterator[tuple[str, str]]:
    """An empty database owned by the owner role: (owner DSN, service DSN)."""
    pair, record = pg_pair
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    service = pair.create_database(name)
    try:
        yield record.dsn(record.primary_port, role=OWNER_ROLE, database=name), service
    finally:
        pair.drop_database(name)


def ssogw(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str],
    *argv: str,
) -> tuple[int, str, str]:  # fmt: skip
    for key in ("SSOGW_OWNER_DSN", "SSOGW_PRIMARY_DSN", "SSOGW_SERVICE_ROLE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_migrate_as_the_owner_builds_a_fresh_database_the_service_can_use(
    fresh_database: tuple[str, str], tmp_path: Path, cli_time: object,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    owner, service = fresh_database
    monkeypatch.setenv("SSOGW_DATA_DIR", str(tmp_path))
    env = {"SSOGW_OWNER_DSN": owner, "SSOGW_PRIMARY_DSN": service}

    async def run(given: dict[str, str], *argv: str) -> tuple[int, str, str]:
        return await asyncio.to_thread(ssogw, monkeypatch, capsys, given, *argv)

    code, out, err = await run(env, "migrate", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["applied"] == [f"{m.version:04d}_{m.name}" for m in load_migrations()]
    assert report["serviceRole"] == SERVICE_ROLE and report["uncovered"] == []
    assert report["grantsChanged"] is True
    code, out, err = await run(env, "migrate", "--json")
    again = json.loads(out)
    # Nothing to do, nothing committed: running instances see no change of privileges.
    assert (code, again["applied"], again["grantsChanged"]) == (0, [], False), err

    # The demo data as the owner (a bulk load), the demo partner as the service.
    code, _, err = await run(env, "demo", "--persons", "300")
    assert code == 0, err
    conn = await asyncpg.connect(service)
    try:
        assert await conn.fetchval("SELECT count(*) FROM insured_persons") == 300
        assert await conn.fetchval("SELECT count(*) FROM partners") == 1
        nid = await conn.fetchval("SELECT min(national_id) FROM insured_persons")
        # An operator's lookup is itself audited: appended to the chain by the service role.
        code, _, err = await run(env, "audit", "lookups", "--national-id", nid, "--json")
        assert code == 0, err
        assert await conn.fetchval("SELECT last_seq FROM audit_chain") == 1
        assert await conn.fetchval("SELECT operation FROM audit_log") == "AuditLookups"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_log")
    finally:
        await conn.close()


async def _migrated(
    owner: str, service: str, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> dict[str, str]:  # fmt: skip
    """``ssogw migrate`` run once on a fresh database; the environment it was run with."""
    monkeypatch.setenv("SSOGW_DATA_DIR", str(data_dir))
    env = {"SSOGW_OWNER_DSN": owner, "SSOGW_PRIMARY_DSN": service}
    assert (await asyncio.to_thread(ssogw, monkeypatch, capsys, env, "migrate"))[0] == 0
    return env


async def test_migrate_names_a_table_no_grant_covers_and_the_service_cannot_use_it(
    fresh_database: tuple[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    owner, service = fresh_database
    env = await _migrated(owner, service, tmp_path, monkeypatch, capsys)
    conn = await asyncpg.connect(owner)
    try:
        await conn.execute("CREATE TABLE audit_forgotten (x int)")  # a migration's new table
        assert await uncovered(conn) == ["audit_forgotten"]
    finally:
        await conn.close()
    code, out, err = await asyncio.to_thread(ssogw, monkeypatch, capsys, env, "migrate", "--json")
    assert code == 0 and json.loads(out)["uncovered"] == ["audit_forgotten"]
    assert json.loads(out)["grantsChanged"] is True, "its privileges were set, to none"
    assert "audit_forgotten is not in app/db/grants.py" in err
    conn = await asyncpg.connect(service)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("INSERT INTO audit_forgotten VALUES (1)")
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("as the service role", "permission denied"),
        ("without an owner DSN", "SSOGW_OWNER_DSN is not set"),
        ("granting to the owner", "is the owner or a member of it"),
        ("granting to a superuser", "has SUPERUSER"),
    ],
)
async def test_migrate_refuses_to_run_with_the_wrong_roles(
    fresh_database: tuple[str, str], tmp_path: Path, case: str, message: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    owner, service = fresh_database
    monkeypatch.setenv("SSOGW_DATA_DIR", str(tmp_path))
    env = {
        "as the service role": {"SSOGW_OWNER_DSN": service, "SSOGW_PRIMARY_DSN": service},
        "without an owner DSN": {"SSOGW_PRIMARY_DSN": service},
        "granting to the owner": {"SSOGW_OWNER_DSN": owner, "SSOGW_SERVICE_ROLE": OWNER_ROLE},
        "granting to a superuser": {"SSOGW_OWNER_DSN": owner, "SSOGW_SERVICE_ROLE": "postgres"},
    }[case]
    code, _, err = await asyncio.to_thread(ssogw, monkeypatch, capsys, env, "migrate")
    assert code == 1 and message in err, err


async def test_migrate_on_a_database_a_newer_release_migrated_says_so_and_keeps_its_grants(
    fresh_database: tuple[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """This release stands for the older one here: the database holds a migration it does not
    know (tests/integration/test_migration_older_release.py runs an older migrations folder)."""
    owner, service = fresh_database
    env = await _migrated(owner, service, tmp_path, monkeypatch, capsys)
    conn = await asyncpg.connect(owner)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum)"
            " VALUES (10000, 'of_a_later_one', 'y'), (9999, 'of_a_newer_release', 'x')"
        )
        # A privilege the newer release decided otherwise: this release must not set it back.
        await conn.execute(f"GRANT SELECT ON schema_migrations TO {SERVICE_ROLE}")
    finally:
        await conn.close()
    code, out, err = await asyncio.to_thread(ssogw, monkeypatch, capsys, env, "migrate", "--json")
    report = json.loads(out)
    assert code == 0, err
    newer = ["9999_of_a_newer_release", "10000_of_a_later_one"]  # in the order they were made
    assert (report["applied"], report["newer"]) == ([], newer)
    assert report["grantsChanged"] is False
    assert f"a newer release migrated this database ({', '.join(newer)})" in err
    code, out, err = await asyncio.to_thread(ssogw, monkeypatch, capsys, env, "migrate")
    assert code == 0 and "database is up to date" not in out, out
    assert out.strip() == "nothing applied: a newer release migrated this database"
    conn = await asyncpg.connect(service)
    try:
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == 10000
    finally:
        await conn.close()
