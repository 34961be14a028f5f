"""What only the schema's owner may do, for tests that need it on purpose: the gateway (and the
``settings.primary_dsn`` of the tests) connects as the service role, which may not."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import asyncpg

#: How the database refuses a record: a CHECK constraint (the error names the table), a
#: trigger raising (it names none), the service role's INSERT right taken away (every record).
Refusal = Literal["check", "trigger", "privilege"]


@asynccontextmanager
async def audit_records_refused(
    owner_pool: asyncpg.Pool,
    request_id: str,
    *,
    table: str = "audit_log",
    how: Refusal = "check",
) -> AsyncIterator[None]:
    """The primary refuses every audit record of ``request_id`` (a real commit failure): the
    owner adds a CHECK constraint to ``table`` for the while (``audit_unlinked`` for the records
    a payment's own transaction writes); ``how``: or a trigger raising, or, for every record,
    the service role's INSERT on ``table`` revoked."""
    name = f"refuse_{uuid.uuid4().hex[:8]}"
    if how == "check":
        refuse = (
            f"ALTER TABLE {table} ADD CONSTRAINT {name}"
            f" CHECK (request_id <> '{request_id}') NOT VALID"
        )
        allow = f"ALTER TABLE {table} DROP CONSTRAINT {name}"
    elif how == "trigger":
        await owner_pool.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.request_id = '{request_id}' THEN RAISE EXCEPTION 'refused'; END IF;"
            " RETURN NEW; END $$"
        )
        refuse = (
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"
        )
        allow = f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}()"
    else:
        # The service role: the one the owner's pool is not, that may insert into the table.
        role = await owner_pool.fetchval(
            "SELECT grantee FROM information_schema.role_table_grants"
            " WHERE table_name = $1 AND privilege_type = 'INSERT' AND grantee <> current_user"
            " LIMIT 1",
            table,
        )
        assert role, f"no role but the owner inserts into {table}"
        refuse = f'REVOKE INSERT ON {table} FROM "{role}"'
        allow = f'GRANT INSERT ON {table} TO "{role}"'
    await owner_pool.execute(refuse)
    try:
        yield
    finally:
        await owner_pool.execute(allow)
