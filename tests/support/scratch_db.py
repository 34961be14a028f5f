"""Databases of their own on the session's primary, for tests that must break what they test
(tamper with the audit chain, move its head back). The session's shared database is never
touched: a database is migrated once as a template, and each test gets a copy of it, dropped
when the test is done. The standby replays them like any other database.

Roles as in production: the databases are made by the servers' superuser and owned by the
schema's owner, which migrates them (and is the role a tampering test plays, someone with
database access); a gateway on a copy connects as the service role (``primary_dsn``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from app.db.local_pair import OWNER_ROLE, SERVICE_ROLE, PairRecord
from app.db.migrator import migrate

SUPERUSER = "postgres"


async def _admin(record: PairRecord, sql: str) -> None:
    # From the maintenance database: a database being copied must have no connection at all.
    conn = await asyncpg.connect(
        record.dsn(record.primary_port, role=SUPERUSER, database="postgres")
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def migrated_template(record: PairRecord, prefix: str) -> AsyncIterator[PairRecord]:
    """A freshly migrated database, left without connections so it can be copied."""
    name = f"{prefix}_tpl_{uuid.uuid4().hex[:8]}"
    await _admin(record, f'CREATE DATABASE "{name}" OWNER {OWNER_ROLE}')
    template = dataclasses.replace(record, database=name)
    try:
        conn = await asyncpg.connect(template.owner_dsn)
        try:
            await migrate(conn, service_role=SERVICE_ROLE)
        finally:
            await conn.close()
        yield template
    finally:
        await _admin(record, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def copy_of(template: PairRecord) -> AsyncIterator[PairRecord]:
    """A copy of ``template`` for one test; dropped afterwards, connections and all."""
    name = f"{template.database.split('_tpl_')[0]}_{uuid.uuid4().hex[:8]}"
    await _admin(
        template, f'CREATE DATABASE "{name}" TEMPLATE "{template.database}" OWNER {OWNER_ROLE}'
    )
    try:
        yield dataclasses.replace(template, database=name)
    finally:
        await _admin(template, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
