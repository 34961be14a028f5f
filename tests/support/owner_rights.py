"""What only the schema's owner may do, for tests that need it on purpose: the gateway (and the
``settings.primary_dsn`` of the tests) connects as the service role, which may not."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


@asynccontextmanager
async def audit_records_refused(
    owner_pool: asyncpg.Pool, request_id: str, *, table: str = "audit_log"
) -> AsyncIterator[None]:
    """The primary refuses every audit record of ``request_id`` (a real commit failure): the
    owner adds a CHECK constraint to ``table`` for the while (``audit_unlinked`` for the records
    a payment's own transaction writes)."""
    constraint = f"refuse_{uuid.uuid4().hex[:8]}"
    await owner_pool.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {constraint}"
        f" CHECK (request_id <> '{request_id}') NOT VALID"
    )
    try:
        yield
    finally:
        await owner_pool.execute(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}")
