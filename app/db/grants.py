"""What the service role may do: its privileges on every table, applied after each migration run
(not by a release older than the database's migrations: ``app.db.migrator``).

Two database roles (docs/operations.md, "Database roles"): the **owner** owns the schema and
runs `ssogw migrate`; the **service** role, which the running gateway connects as, owns nothing
and holds exactly the privileges below. After every migration run the migrator revokes every
privilege of the service role and of PUBLIC on every table, sequence and routine of the schema
and grants these again, in one transaction, so this table is the one place they are decided and
a migration that adds a table only has to add a line here (a test fails until it does).

The audit trail is append-only by construction: on every ``audit_*`` table the service role
may at most SELECT and INSERT, and on ``audit_log`` and the chain head ``audit_chain`` only
SELECT: records go onto the chain, and the head moves forward, only through the owner's
functions ``SERVICE_ROUTINES`` (migrations 0016, 0017 and 0022), so the service role cannot hold a
lock on the head for longer than one of their statements (row locks need UPDATE). It holds
nothing on the partitions of ``audit_log``. ``check_append_only`` refuses a table here that
breaks this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import asyncpg

SELECT, INSERT, UPDATE, DELETE = "SELECT", "INSERT", "UPDATE", "DELETE"
_TABLE_PRIVILEGES: Final = frozenset({SELECT, INSERT, UPDATE, DELETE})


@dataclass(frozen=True, slots=True)
class TableGrant:
    """The service role's privileges on one table; ``update_columns``: UPDATE of these only."""

    privileges: frozenset[str] = frozenset()
    update_columns: tuple[str, ...] = ()


def grant(*privileges: str, update: tuple[str, ...] = ()) -> TableGrant:
    """A table's privileges, e.g. ``grant(SELECT, INSERT, update=("state",))``."""
    return TableGrant(frozenset(privileges), update)


#: Every table of the schema, with what the running gateway does to it.
SERVICE_TABLES: Final[Mapping[str, TableGrant]] = MappingProxyType(
    {
        # Imports upsert persons, administration changes them; a confirm locks its person.
        "insured_persons": grant(SELECT, INSERT, UPDATE),
        # A rate is added (future or retroactive), never changed.
        "contribution_rates": grant(SELECT, INSERT),
        # Registered, disabled, enabled and rotated by `ssogw partner|client` and over REST.
        "partners": grant(SELECT, INSERT, UPDATE),
        "api_clients": grant(SELECT, INSERT, UPDATE),
        # Nonces of admitted WS-Security tokens: claimed in batches, deleted once expired.
        "wsse_nonces": grant(SELECT, INSERT, DELETE),
        # The ledger: a payment is posted, and a cancel marks it; amounts and months never change.
        "payments": grant(SELECT, INSERT, update=("state", "cancelled_at", "cancel_reason")),
        # A cancel frees the months of its payment.
        "paid_months": grant(SELECT, INSERT, DELETE),
        "s40_option_changes": grant(SELECT, INSERT),
        # A person's life cycle: memberships that ended and status events are only added.
        "closed_memberships": grant(SELECT, INSERT),
        "membership_events": grant(SELECT, INSERT),
        # An import is opened, then closed with its summary; its lines are only written.
        "settlement_imports": grant(
            SELECT, INSERT, update=("counts", "totals", "mismatches", "finished_at")
        ),
        "settlement_lines": grant(SELECT, INSERT),
        # A case moves between states; its events and audit links are only added.
        "complaints": grant(SELECT, INSERT, update=("state", "updated_at")),
        "complaint_events": grant(SELECT, INSERT),
        "complaint_audit_links": grant(SELECT, INSERT),
        # The audit trail: read here, appended through SERVICE_ROUTINES, which alone move the
        # chain head (and lock it, for one statement).
        "audit_log": grant(SELECT),
        "audit_chain": grant(SELECT),
        "audit_seals": grant(SELECT, INSERT),
        "audit_feed_manifest": grant(SELECT, INSERT),  # who went into which feed export
        # Records a payment's own transaction committed, waiting for their chain link: moved
        # onto audit_log by ssogw_audit_link (the owner's trigger refuses to let one go that is
        # not on the chain).
        "audit_unlinked": grant(SELECT, INSERT),
        "audit_records": grant(SELECT),  # the view of both: every committed record
        # Rate limits shared by the fleet (0013): a lease refills its bucket and takes from it.
        "rate_buckets": grant(SELECT, INSERT, update=("tokens", "taken", "refilled_at")),
        # Failed credential checks shared by the fleet (0021): read and spent before argon2,
        # given back when the secret holds, deleted once full again.
        "failure_budgets": grant(
            SELECT, INSERT, DELETE, update=("capacity", "failures_left", "spent_at")
        ),
        # The migrator's own record: the owner's business only.
        "schema_migrations": grant(),
    }
)

#: Sequences the gateway calls nextval() on (identity columns need no grant).
SERVICE_SEQUENCES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {"receipt_seq": ("USAGE",)}
)

#: The owner's functions the gateway calls. The audit trail's (SECURITY DEFINER) are the only way
#: a record goes onto the chain and the head moves, one statement each. This release appends
#: through ``ssogw_audit_append_records`` (migration 0022: one array of records) and links
#: through ``ssogw_audit_link_tails`` (0017: numbered and hashed in the database); the previous
#: releases' functions (0017's append, 0016's pair) stay callable for their instances during a
#: rolling upgrade. ``ssogw_confirm_read`` (0023, SECURITY INVOKER: the gateway's own rights) is
#: a confirm's lock and read in one round trip. In name order.
SERVICE_ROUTINES: Final = (
    "ssogw_audit_append",
    "ssogw_audit_append_records",
    "ssogw_audit_append_tails",
    "ssogw_audit_link",
    "ssogw_audit_link_tails",
    "ssogw_confirm_read",
)
#: The chain and its head: only those functions write them (and lock the head).
CHAIN_TABLES: Final = frozenset({"audit_log", "audit_chain"})


def is_audit_table(name: str) -> bool:
    """Whether ``name`` belongs to the audit trail (``audit_log``, its partitions, ``audit_*``)."""
    return name.startswith("audit_")


def check_append_only(tables: Mapping[str, TableGrant] = SERVICE_TABLES) -> None:
    """Refuse privileges that would let the service role change or remove audit records."""
    for name, table in tables.items():
        unknown = table.privileges - _TABLE_PRIVILEGES
        if unknown:
            raise ValueError(f"{name}: the service role is never given {sorted(unknown)}")
        if not is_audit_table(name):
            continue
        if table.privileges - {SELECT, INSERT} or table.update_columns:
            raise ValueError(f"{name} is an audit table: the service role may SELECT and INSERT")
        if name in CHAIN_TABLES and table.privileges != {SELECT}:
            raise ValueError(f"{name} is appended to through the owner's functions: SELECT only")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Every relation of the schema the migrator runs in, with the root of its partition tree and,
# for a sequence, the table whose column owns it (serial 'a', identity 'i').
_RELATIONS = """
SELECT c.relname AS name, c.relkind::text AS kind, c.relowner = r.oid OR r.rolsuper AS owned,
       CASE WHEN c.relispartition THEN
           (SELECT p.relname FROM pg_class p WHERE p.oid = pg_partition_root(c.oid)) END AS root,
       (SELECT t.relname FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1) AS table,
       (SELECT d.deptype::text FROM pg_depend d
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1) AS link
  FROM pg_class c JOIN pg_roles r ON r.rolname = current_user
 WHERE c.relnamespace = current_schema()::regnamespace
   AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
 ORDER BY c.relname
"""

_ROLE = """
SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
       r.rolname = current_user AS is_me, pg_has_role(r.oid, current_user, 'MEMBER') AS in_owner,
       (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid) AS owns
  FROM pg_roles r WHERE r.rolname = $1
"""


async def _check_service_role(conn: asyncpg.Connection, role: str) -> None:
    row = await conn.fetchrow(_ROLE, role)
    if row is None:
        raise RuntimeError(
            f"the service role {role!r} does not exist: create it "
            "(docs/operations.md, 'Database roles') or set SSOGW_SERVICE_ROLE"
        )
    powers = [
        name
        for name, held in (
            ("SUPERUSER", row["rolsuper"]),
            ("CREATEROLE", row["rolcreaterole"]),
            ("CREATEDB", row["rolcreatedb"]),
            ("REPLICATION", row["rolreplication"]),
            ("BYPASSRLS", row["rolbypassrls"]),
        )
        if held
    ]
    if powers:
        raise RuntimeError(
            f"the service role {role!r} has {', '.join(powers)}: "
            f"ALTER ROLE {role} NO{' NO'.join(powers)}"
        )
    if row["is_me"] or row["in_owner"]:
        raise RuntimeError(
            f"the service role {role!r} is the owner or a member of it: the gateway must "
            "connect as a role of its own (SSOGW_PRIMARY_DSN) and migrate as the owner "
            "(SSOGW_OWNER_DSN)"
        )
    if row["owns"]:
        raise RuntimeError(f"the service role {role!r} owns relations: it must own nothing")


@dataclass(frozen=True, slots=True)
class Relation:
    """A table, view or sequence of the schema, as the grants see it."""

    name: str
    kind: str
    owned: bool
    root: str | None
    table: str | None
    link: str | None


def _covered(rel: Relation) -> bool:
    if rel.kind == "S":
        return rel.name in SERVICE_SEQUENCES or rel.table in SERVICE_TABLES
    return rel.name in SERVICE_TABLES or rel.root in SERVICE_TABLES


def _statements(rel: Relation, role: str) -> list[str]:
    kind = "SEQUENCE" if rel.kind == "S" else "TABLE"
    target = f"{kind} {_ident(rel.name)}"
    out = [f"REVOKE ALL ON {target} FROM PUBLIC, {role}"]
    if rel.kind == "S":
        usage = SERVICE_SEQUENCES.get(rel.name, ())
        owner = SERVICE_TABLES.get(rel.table or "")
        # A serial column's default calls nextval() with the inserting role's privileges.
        if rel.link == "a" and owner is not None and INSERT in owner.privileges:
            usage = ("USAGE",)
        if usage:
            out.append(f"GRANT {', '.join(usage)} ON {target} TO {role}")
        return out
    table = SERVICE_TABLES.get(rel.name)
    if table is None:  # a partition (reached through its parent) or not covered: nothing
        return out
    if table.privileges:
        out.append(f"GRANT {', '.join(sorted(table.privileges))} ON {target} TO {role}")
    if table.update_columns:
        columns = ", ".join(_ident(c) for c in table.update_columns)
        out.append(f"GRANT UPDATE ({columns}) ON {target} TO {role}")
    return out


async def relations(conn: asyncpg.Connection) -> list[Relation]:
    """Every table, view and sequence of the current schema."""
    return [Relation(**dict(row)) for row in await conn.fetch(_RELATIONS)]


async def uncovered(conn: asyncpg.Connection) -> list[str]:
    """Relations of the current schema that ``SERVICE_TABLES`` does not decide."""
    return [rel.name for rel in await relations(conn) if not _covered(rel)]


_ROUTINES = """
SELECT p.proname::text FROM pg_proc p
 WHERE p.pronamespace = current_schema()::regnamespace AND p.proname = ANY($1::text[])
"""

# Every privilege the statements below can change, to tell whether a run changed any.
_ACLS = """
SELECT 'relation' AS kind, c.relname::text AS name, c.relacl::text AS acl FROM pg_class c
 WHERE c.relnamespace = current_schema()::regnamespace
UNION ALL
SELECT 'column', c.relname || '.' || a.attname, a.attacl::text
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = current_schema()::regnamespace AND a.attacl IS NOT NULL
UNION ALL
SELECT 'routine', p.oid::regprocedure::text, p.proacl::text FROM pg_proc p
 WHERE p.pronamespace = current_schema()::regnamespace
UNION ALL
SELECT 'schema', n.nspname::text, n.nspacl::text FROM pg_namespace n
 WHERE n.oid = current_schema()::regnamespace
UNION ALL
SELECT 'database', d.datname::text, d.datacl::text FROM pg_database d
 WHERE d.datname = current_database()
 ORDER BY 1, 2
"""


@dataclass(frozen=True, slots=True)
class Granted:
    """What ``apply_grants`` did: the relations no grant covers, and whether any privilege
    changed (when none did, nothing was committed)."""

    uncovered: list[str]
    changed: bool


async def apply_grants(conn: asyncpg.Connection, *, service_role: str) -> Granted:
    """Give ``service_role`` exactly the privileges above, in one transaction.

    Run by the owner: the service never sees a moment without its privileges. A relation not
    covered keeps no privilege at all, so the gateway cannot use it. When the privileges come
    out as they were, the transaction is rolled back, so that a migration run with nothing to
    do (every instance start, the monthly job) sends the running sessions no invalidation.
    """
    check_append_only()
    await _check_service_role(conn, service_role)
    found = await relations(conn)
    foreign = [rel.name for rel in found if not rel.owned]
    if foreign:
        # GRANT by a role that does not own the table is only a warning: refuse it loudly.
        raise RuntimeError(
            f"not owned by the migrating role: {', '.join(foreign)}; run `ssogw migrate` "
            "as the schema's owner (SSOGW_OWNER_DSN)"
        )
    role = _ident(service_role)
    schema = _ident(await conn.fetchval("SELECT current_schema()"))
    database = _ident(await conn.fetchval("SELECT current_database()"))
    statements = [
        # Before PostgreSQL 15 every role could create tables in public.
        f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC, {role}",
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        # Person imports stage their rows in a temporary table.
        f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role}",
        # The gateway calls only SERVICE_ROUTINES (partitions are the owner's job).
        f"REVOKE ALL ON ALL ROUTINES IN SCHEMA {schema} FROM PUBLIC, {role}",
    ]
    present = {row[0] for row in await conn.fetch(_ROUTINES, list(SERVICE_ROUTINES))}
    statements += [
        f"GRANT EXECUTE ON FUNCTION {_ident(name)} TO {role}"
        for name in SERVICE_ROUTINES
        if name in present
    ]
    for rel in found:
        statements.extend(_statements(rel, role))
    before = await conn.fetch(_ACLS)
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(";\n".join(statements))
        changed = await conn.fetch(_ACLS) != before
    except BaseException:
        await tx.rollback()
        raise
    await (tx.commit() if changed else tx.rollback())
    return Granted([rel.name for rel in found if not _covered(rel)], changed)
