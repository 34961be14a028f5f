"""After the seed, the bench pair brought to the state of a database that has been serving,
before anything is measured (untimed; the seed's own figure ends when ``ssogw seed`` does).

A load of millions of rows leaves work behind that PostgreSQL would otherwise do in the middle
of the measured runs, and caches that a serving database has warm:

- autovacuum: the persons' rows are not loaded frozen (other tables' foreign keys rest on them,
  so their table cannot be truncated for ``COPY FREEZE``); left alone, autovacuum visits all of
  them a minute later, while the first closed loops run. ``VACUUM (ANALYZE)`` now instead;
- the load's dirty buffers: a ``CHECKPOINT`` now, not the checkpointer during a run;
- the standby: it replays up to the primary's position before any read is measured;
- the page cache: the relations an inquiry and a confirm read are read once on both servers
  (``pg_prewarm`` in ``read`` mode: into the OS page cache, as months of traffic would have
  them), so the first runs do not pay disk reads that the later ones do not. The spyne peer
  reads the same replica, so it is measured alike. Which relations: those the plan of a
  confirm's read under its lock names (``EXPLAIN`` of ``app.counter.ledger``'s read, which
  holds the inquiry's ``MEMBER_SQL``), not every relation of the loaded tables. The rest
  (``paid_months``'s heap, which the reads skip by index-only scans, and indexes no read uses)
  is some 4 GB a server at 13,000,000 persons; warmed too, the two servers' 18 GB did not fit
  a 17 GB page cache, the standby's warming (the last) pushed out half the primary's person
  key and most of its paid-months key, and a confirm waited 0.96 ms for disk reads in its lock
  and its read (``pg_stat_statements``, session 27 in bench/RESULTS.md).

Measured on 2026-12-05 without this step: right after a 13,000,000-person seed the asyncpg
inquiry read without HTTP ran at 3,780/s where the previous run of the same code measured
7,854/s, and the soak's rates rose by a quarter over its twelve minutes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from app.counter.ledger import CONFIRM_READ
from app.db.local_pair import SUPERUSER, read_record

LOADED = ("insured_persons", "paid_months", "closed_memberships")
#: A person of the seed to plan the reads for, and the first month of a window.
SAMPLE = "SELECT national_id, date_trunc('month', now())::date - 365 FROM insured_persons LIMIT 1"
REPLAY_TIMEOUT_S = 900.0


async def settle(data_dir: Path, say: Callable[[str], None]) -> float:
    """Vacuum, checkpoint, wait for the standby and warm both servers' caches; the seconds."""
    started = time.monotonic()
    record = read_record(data_dir)
    if record is None:
        raise RuntimeError(f"no pair under {data_dir}")
    primary = await asyncpg.connect(record.dsn(record.primary_port, role=SUPERUSER))
    replica = await asyncpg.connect(record.dsn(record.replica_port, role=SUPERUSER))
    try:
        say(f"settle: VACUUM (ANALYZE) {', '.join(LOADED)}; CHECKPOINT")
        await primary.execute(f"VACUUM (ANALYZE) {', '.join(LOADED)}", timeout=None)
        await primary.execute("CHECKPOINT", timeout=None)
        await primary.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        await _replayed(primary, replica)
        relations = await read_relations(primary)
        # The standby last: inquiries read it, so its pages are the ones to keep.
        for name, conn in (("primary", primary), ("replica", replica)):
            pages = 0
            for relation in relations:
                pages += await conn.fetchval(
                    "SELECT pg_prewarm($1::regclass, 'read')", relation, timeout=None
                )
            say(f"settle: {pages * 8 // 1024:,} MB of {len(relations)} relations read on {name}")
    finally:
        await primary.close()
        await replica.close()
    return time.monotonic() - started


async def read_relations(conn: asyncpg.Connection) -> list[str]:
    """The tables and indexes the plan of a confirm's read under its lock names (the
    inquiry's member read is part of it), in the order the plan names them first."""
    sample = await conn.fetchrow(SAMPLE)
    if sample is None:
        raise RuntimeError("no person to plan the reads for: the seed loaded none")
    nid, since = sample
    # The read ssogw_confirm_read runs under its lock (migration 0023 holds a copy of it):
    # EXPLAIN of the function's call would name no relation, only a Function Scan.
    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {CONFIRM_READ}", nid, since, 0, "", True)
    names: list[str] = []
    _relations_of(json.loads(plan)[0]["Plan"], names)
    return names


def _relations_of(node: dict[str, Any], names: list[str]) -> None:
    # An index-only scan names its table but reads only the index (and the visibility map).
    index_only = node.get("Node Type") == "Index Only Scan"
    for key in ("Index Name",) if index_only else ("Relation Name", "Index Name"):
        name = node.get(key)
        if name is not None and name not in names:
            names.append(name)
    for child in node.get("Plans", ()):
        _relations_of(child, names)


async def _replayed(primary: asyncpg.Connection, replica: asyncpg.Connection) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    target = await primary.fetchval("SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + REPLAY_TIMEOUT_S
    while True:
        behind = await replica.fetchval(
            "SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())", target
        )
        if behind <= 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the standby is still {behind:,} bytes behind the primary")
        await asyncio.sleep(0.2)
