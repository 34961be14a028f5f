"""Databases of their own on the session's primary, for tests that must break what they test
(tamper with the audit chain, move its head back). The session's shared database is never
touched: a database is migrated once as a template, and each test gets a copy of it, dropped
when the test is done. The standby replays them like any other database.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from app.db.local_pair import PairRecord
from app.db.migrator import migrate


async def _admin(record: PairRecord, sql: str) -> None:
    # From the maintenance database: a database being copied must have no connection at all.
    conn = await asyncpg.connect(dataclasses.replace(record, database="postgres").primary_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def migrated_template(record: PairRecord, prefix: str) -> AsyncIterator[PairRecord]:
    """A freshly migrated database, left without connections so it can be copied."""
    name = f"{prefix}_tpl_{uuid.uuid4().hex[:8]}"
    await _admin(record, f'CREATE DATABASE "{name}"')
    template = dataclasses.replace(record, database=name)
    try:
        conn = await asyncpg.connect(template.primary_dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield template
    finally:
        await _admin(record, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def copy_of(template: PairRecord) -> AsyncIterator[PairRecord]:
    """A copy of ``template`` for one test; dropped afterwards, connections and all."""
    name = f"{template.database.split('_tpl_')[0]}_{uuid.uuid4().hex[:8]}"
    await _admin(template, f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
    try:
        yield dataclasses.replace(template, database=name)
    finally:
        await _admin(template, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
