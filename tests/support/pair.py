"""The test session's own PostgreSQL primary and streaming replica, in a temporary directory."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from app.db.local_pair import LocalPair, PairRecord
from app.db.migrator import migrate


@contextmanager
def session_pair() -> Iterator[tuple[LocalPair, PairRecord]]:
    """Start a migrated pair (fsync off) and always stop and remove it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="ssogw-test-"))
    os.chmod(root, 0o755)  # the unprivileged server user must reach its data directories
    pg_bin = os.environ.get("SSOGW_PG_BIN")
    pair = LocalPair(root, pg_bin=Path(pg_bin) if pg_bin else None, durable=False)
    try:
        record = pair.up()
        pair.wait_streaming()
        asyncio.run(_migrate(record.primary_dsn))
        yield pair, record
    finally:
        try:
            pair.down()
        finally:
            shutil.rmtree(root, ignore_errors=True)


async def _migrate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
