"""Linking a batch of audit records costs the batch (migration 0018): not the whole queue of
waiting records, nor the whole chain, whatever plan the statistics suggest.

Counted in rows read (``pg_stat_xact_user_tables``: the transaction's own scans), not timed.
``enable_nestloop = off`` stands for statistics that make a join over a whole table look cheap
(the bench pair's did, session 10): every check that SQL allows to become such a join becomes
one, and is caught reading thousands of rows for a batch of sixteen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from app.audit.chain_head import ChainHeadMover
from app.audit.unlinked import ADD, WAITING, AuditLinker, add_args
from app.db.local_pair import OWNER_ROLE, PairRecord
from tests.integration.test_audit_chain_functions import pool_on, verify_whole
from tests.integration.test_audit_links import record
from tests.integration.test_audit_tampering import (  # noqa: F401 (fixtures)
    scratch,
    template,
)

pytestmark = pytest.mark.db

NID = "3100600445635"
CHAINED = 3000
WAITING_BEHIND = 3000
BATCH = 16
#: Rows of one table a batch may read: the linker's read, the function's check and its delete
#: (or, on the chain, the guard's check of each copy), with room to spare.
BOUND = 4 * BATCH

READS = """
SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0))
                FILTER (WHERE relname = 'audit_unlinked'), 0) AS queue,
       coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0))
                FILTER (WHERE relname LIKE 'audit\\_log%'), 0) AS chain
  FROM pg_stat_xact_user_tables
"""


async def queue(pool: asyncpg.Pool, first: datetime, count: int, tag: str) -> None:
    """``count`` records waiting, one a minute from ``first``."""
    rows = [
        add_args(record(NID, first + timedelta(minutes=i), request_id=f"{tag}-{i}"))
        for i in range(count)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(ADD, rows)


@pytest.mark.parametrize("joins_preferred", [False, True], ids=["default", "joins_preferred"])
async def test_a_link_batch_reads_its_records_only_behind_a_backlog(
    scratch: PairRecord,  # noqa: F811
    joins_preferred: bool,
) -> None:
    start = datetime(1990, 1, 1, tzinfo=UTC)
    async with pool_on(scratch.primary_dsn) as pool:
        await queue(pool, start, CHAINED, "chained")
        assert await AuditLinker(pool_provider=lambda: pool, max_batch=500, max_wait_ms=0).link()
        later = start + timedelta(days=30)
        await queue(pool, later, WAITING_BEHIND, "waiting")
        owner = await asyncpg.connect(scratch.dsn(scratch.primary_port, role=OWNER_ROLE))
        try:
            await owner.execute("ANALYZE audit_log; ANALYZE audit_unlinked")
        finally:
            await owner.close()

        # A new session: a backend's counts include its earlier transactions' until flushed.
        conn = await asyncpg.connect(scratch.primary_dsn)
        try:
            async with conn.transaction():
                # Every row an index gives is then fetched, and so counted (an index-only scan
                # of all-visible pages counts none).
                await conn.execute("SET LOCAL enable_indexonlyscan = off")
                if joins_preferred:
                    await conn.execute("SET LOCAL enable_nestloop = off")
                rows = await conn.fetch(WAITING, BATCH)
                linked = await ChainHeadMover().link(conn, rows)
                reads = await conn.fetchrow(READS)
        finally:
            await conn.close()

        assert [row["request_id"] for row in rows] == [f"waiting-{i}" for i in range(BATCH)]
        assert linked == BATCH
        assert reads["queue"] <= BOUND, f"read {reads['queue']} waiting records for {BATCH}"
        assert reads["chain"] <= BOUND, f"read {reads['chain']} chained records for {BATCH}"
        left = await pool.fetchval("SELECT count(*) FROM audit_unlinked")
        assert left == WAITING_BEHIND - BATCH
        await verify_whole(pool)
