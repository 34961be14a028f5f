"""The test session's own PostgreSQL primary and streaming replica, in a temporary directory.

Migrated as the owner role, as `ssogw migrate` does; the gateway and the tests connect as the
service role (``record.primary_dsn``) unless a test needs the owner's rights on purpose
(``record.owner_dsn``: tampering with the audit trail, backdating rows, altering a table).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from app.db.local_pair import SERVICE_ROLE, LocalPair, PairRecord
from app.db.migrator import migrate


@contextmanager
def session_pair() -> Iterator[tuple[LocalPair, PairRecord]]:
    """Start a migrated pair (fsync off) and always stop and remove it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="ssogw-test-"))
    os.chmod(root, 0o755)  # the unprivileged server user must reach its data directories
    pg_bin = os.environ.get("SSOGW_PG_BIN")
    # No WAL archive: nothing restores the shared pair, and copying every segment the whole
    # suite writes would cost time (tests/integration/test_backup_restore.py has its own).
    pair = LocalPair(root, pg_bin=Path(pg_bin) if pg_bin else None, durable=False, archive=False)
    try:
        record = pair.up()
        pair.wait_streaming()
        asyncio.run(_migrate(record.owner_dsn))
        yield pair, record
    finally:
        try:
            pair.down()
        finally:
            shutil.rmtree(root, ignore_errors=True)


async def _migrate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, service_role=SERVICE_ROLE)
    finally:
        await conn.close()
