"""Loading the seed: into empty tables at the speed of COPY, else only the missing persons.

Into empty tables (the first seed of a database, as `make bench` does) everything happens in
ONE transaction, so that it either happens whole or not at all:

1. the three tables are locked (ACCESS EXCLUSIVE) and found empty — else nothing is changed
   and the persons not yet there are added as below;
2. the indexes the load does not need are dropped: every index of the three tables but the one
   other tables' foreign keys rest on (``insured_persons_pkey``), and the foreign keys of the
   loaded tables too when per-row foreign-key triggers cannot be skipped
   (``session_replication_role``, which the local pair's owner may set; the rows are
   consistent by construction);
3. ``paid_months`` and ``closed_memberships`` are truncated (they are empty), so that their
   COPY may FREEZE: the rows are written frozen and all-visible, and no vacuum rewrites them;
4. loader processes encode ranges of persons (``copy_data``) while this connection COPYs them
   in order, in binary;
5. the indexes and constraints are built again from their definitions, read from the catalogue
   before they were dropped (one sort each; ``maintenance_work_mem`` raised, parallel workers
   as the server allows), and the catalogue is compared with what it was: any difference
   fails the transaction.

If anything fails or the command is stopped, the transaction rolls back (the server rolls it
back when the connection goes): the tables are empty again with every index and constraint as
before, and ``ssogw seed`` can simply be run again. Nothing is UNLOGGED: the standby replays it
all. The load commits with ``synchronous_commit`` off (it is one commit; a crash loses at most
the seed, which can be run again); ``ANALYZE`` follows.

Into tables that already hold persons, nothing is dropped: each range goes through temporary
tables and ``ON CONFLICT DO NOTHING``, so only persons not on record are added.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

import asyncpg

from app.insured.demo_data.copy_data import Chunk, encode
from app.insured.demo_data.rows import (
    CHUNK,
    CLOSED_COLUMNS,
    MONTH_COLUMNS,
    PERSON_COLUMNS,
    Row,
    SeedPlan,
    former_s39,
    generate,
)

TASK_PERSONS = 5 * CHUNK  # persons per loader task (whole chunks: no stream is replayed)
LOADED = ("insured_persons", "paid_months", "closed_memberships")
#: For the index builds at the end of a load into empty tables (a setting of that transaction).
MAINTENANCE_WORK_MEM = "1GB"
ROLLED_BACK = (
    "its transaction was rolled back: the tables are as they were (empty), with every index"
    " and constraint; nothing needs repair, run `ssogw seed` again"
)

Progress = Callable[[int], None]
Say = Callable[[str], None]


def _nothing(_: object) -> None:
    return None


async def load(
    dsn: str,
    plan: SeedPlan,
    *,
    workers: int = 1,
    progress: Progress = _nothing,
    say: Say = _nothing,
) -> int:
    """COPY the plan's persons, paid months and ended memberships into the database at ``dsn``
    (as the tables' owner). ``workers`` processes encode the rows; ``progress`` is told each
    range's persons as it is stored, ``say`` each step. Returns the persons inserted."""
    conn = await asyncpg.connect(dsn)
    try:
        inserted = await load_empty(conn, plan, workers=workers, progress=progress, say=say)
        if inserted is None:
            say("the tables hold persons already: adding those not on record")
            inserted = await _load_more(dsn, plan, workers, progress)
        say("ANALYZE")
        for table in LOADED:
            await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()
    return inserted


async def load_empty(
    conn: asyncpg.Connection,
    plan: SeedPlan,
    *,
    workers: int = 1,
    progress: Progress = _nothing,
    say: Say = _nothing,
) -> int | None:
    """The load into empty tables, in one transaction (the module's docstring); None, having
    changed nothing, when the tables are not empty. RuntimeError if it fails."""
    try:
        async with conn.transaction():
            await conn.execute(
                "SET LOCAL synchronous_commit = off;"
                f" SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'"
            )
            await conn.execute(f"LOCK TABLE {', '.join(LOADED)} IN ACCESS EXCLUSIVE MODE")
            if not await _empty(conn):
                return None
            # Per-row foreign-key triggers off (the rows are consistent by construction), and
            # the index builds' WAL compressed with lz4 rather than pglz, which costs them about
            # 40 % more CPU (a full page each); where the role may.
            skipped = await _set(conn, "session_replication_role", "replica")
            if await conn.fetchval("SELECT current_setting('wal_compression') IN ('on', 'pglz')"):
                await _set(conn, "wal_compression", "lz4")
            before = await catalogue(conn)
            rebuild = await _drop(conn, keep_foreign_keys=skipped)
            await conn.execute("TRUNCATE paid_months, closed_memberships")
            say(f"loading without {len(rebuild)} indexes and constraints (built again after)")
            inserted = await _copy(conn, plan, workers, progress)
            for statement in rebuild:
                say(statement)
                await conn.execute(statement)
            after = await catalogue(conn)
            if after != before:
                raise RuntimeError(
                    "the indexes and constraints built again differ from those dropped:"
                    f" {sorted(set(before) ^ set(after))}"
                )
            say("commit")
    except Exception as exc:
        raise RuntimeError(f"ssogw seed failed ({exc}); {ROLLED_BACK}") from exc
    return inserted


async def _empty(conn: asyncpg.Connection) -> bool:
    checks = " AND ".join(f"NOT EXISTS (SELECT 1 FROM {table})" for table in LOADED)
    return bool(await conn.fetchval(f"SELECT {checks}"))


async def _set(conn: asyncpg.Connection, parameter: str, value: str) -> bool:
    """``SET LOCAL parameter = value`` if the role may (and the server knows the value)."""
    try:
        async with conn.transaction():  # a savepoint: a refusal leaves the transaction usable
            await conn.execute(f"SET LOCAL {parameter} = {value}")
    except (asyncpg.InsufficientPrivilegeError, asyncpg.InvalidParameterValueError):
        return False
    return True


async def catalogue(conn: asyncpg.Connection) -> list[tuple[str, ...]]:
    """The indexes and constraints of the loaded tables (and the foreign keys onto them), as
    definitions: the same list before a load and after it."""
    rows = await conn.fetch(
        """
        SELECT 'index', indexrelid::regclass::text, pg_get_indexdef(indexrelid),
               indisclustered::text || indisreplident::text,
               coalesce(obj_description(indexrelid, 'pg_class'), '')
          FROM pg_index WHERE indrelid = ANY($1::regclass[])
        UNION ALL
        SELECT 'constraint', conrelid::regclass::text || '.' || conname,
               pg_get_constraintdef(oid), contype::text,
               coalesce(obj_description(oid, 'pg_constraint'), '')
          FROM pg_constraint
         WHERE conrelid = ANY($1::regclass[]) OR confrelid = ANY($1::regclass[])
        ORDER BY 1, 2
        """,
        list(LOADED),
    )
    return [tuple(row) for row in rows]


async def _drop(conn: asyncpg.Connection, *, keep_foreign_keys: bool) -> list[str]:
    """Drop what the load does not need; the statements that build it again, in order."""
    rows = await conn.fetch(
        """
        SELECT i.indrelid::regclass::text AS tbl, i.indexrelid::regclass::text AS index,
               pg_get_indexdef(i.indexrelid) AS definition,
               quote_ident(c.conname) AS constraint_name, pg_get_constraintdef(c.oid) AS cdef
          FROM pg_index i
          LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                                   AND c.contype IN ('p', 'u', 'x')
         WHERE i.indrelid = ANY($1::regclass[])
           AND NOT EXISTS (SELECT 1 FROM pg_constraint f
                            WHERE f.contype = 'f' AND f.conindid = i.indexrelid)
         ORDER BY c.conname IS NULL, 1, 2
        """,
        list(LOADED),
    )
    drops, builds = [], []
    for row in rows:
        if row["constraint_name"] is not None:
            drops.append(f"ALTER TABLE {row['tbl']} DROP CONSTRAINT {row['constraint_name']}")
            builds.append(
                f"ALTER TABLE {row['tbl']} ADD CONSTRAINT {row['constraint_name']} {row['cdef']}"
            )
        else:
            drops.append(f"DROP INDEX {row['index']}")
            builds.append(row["definition"])
    if not keep_foreign_keys:
        for row in await conn.fetch(
            "SELECT conrelid::regclass::text AS tbl, quote_ident(conname) AS name,"
            " pg_get_constraintdef(oid) AS cdef FROM pg_constraint"
            " WHERE contype = 'f' AND conrelid = ANY($1::regclass[]) ORDER BY 1, 2",
            list(LOADED),
        ):
            drops.insert(0, f"ALTER TABLE {row['tbl']} DROP CONSTRAINT {row['name']}")
            builds.append(f"ALTER TABLE {row['tbl']} ADD CONSTRAINT {row['name']} {row['cdef']}")
    for statement in drops:
        await conn.execute(statement)
    return builds


async def _copy(conn: asyncpg.Connection, plan: SeedPlan, workers: int, progress: Progress) -> int:
    """COPY every range of the plan, in order; ranges are encoded ahead by ``workers``
    processes (in this one when ``workers`` is 1)."""
    ranges = [
        (a, min(a + TASK_PERSONS, plan.persons)) for a in range(0, plan.persons, TASK_PERSONS)
    ]
    inserted = 0

    async def store(chunk: Chunk) -> None:
        nonlocal inserted
        for table, data, columns, freeze in (
            ("insured_persons", chunk.person_data, PERSON_COLUMNS, False),
            ("paid_months", chunk.month_data, MONTH_COLUMNS, True),
            ("closed_memberships", chunk.closed_data, CLOSED_COLUMNS, True),
        ):
            await conn.copy_to_table(
                table, source=memoryview(data), columns=columns, format="binary", freeze=freeze
            )
        inserted += chunk.persons
        progress(chunk.persons)

    if workers <= 1 or len(ranges) == 1:
        for a, b in ranges:
            await store(encode(plan, a, b))
        return inserted
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        ahead: deque[Future[Chunk]] = deque()
        todo = iter(ranges)
        for a, b in todo:  # two ranges per process in flight: one encoding, one waiting
            ahead.append(pool.submit(encode, plan, a, b))
            if len(ahead) >= 2 * workers:
                break
        while ahead:
            chunk = await asyncio.wrap_future(ahead.popleft())
            for a, b in todo:
                ahead.append(pool.submit(encode, plan, a, b))
                break
            await store(chunk)
    return inserted


# --- into tables that hold persons already --------------------------------------------------
async def _load_more(dsn: str, plan: SeedPlan, workers: int, progress: Progress) -> int:
    ranges = [
        (a, min(a + TASK_PERSONS, plan.persons)) for a in range(0, plan.persons, TASK_PERSONS)
    ]
    inserted = 0
    if workers <= 1 or len(ranges) == 1:
        for a, b in ranges:
            inserted += await _add_range(dsn, plan, a, b)
            progress(b - a)
        return inserted
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [loop.run_in_executor(pool, _add_range_sync, dsn, plan, a, b) for a, b in ranges]
        for done in asyncio.as_completed(futures):
            count, persons = await done
            inserted += count
            progress(persons)
    return inserted


def _add_range_sync(dsn: str, plan: SeedPlan, start: int, stop: int) -> tuple[int, int]:
    return asyncio.run(_add_range(dsn, plan, start, stop)), stop - start


async def _add_range(dsn: str, plan: SeedPlan, start: int, stop: int) -> int:
    people: list[Row] = []
    months: list[Row] = []
    closed: list[Row] = []
    for person, paid in generate(plan, start=start, stop=stop):
        people.append(person)
        months.extend(paid)
        closed.extend(former_s39(person, share=plan.former_s39_share))
    conn = await asyncpg.connect(dsn)
    try:
        return await _add(conn, people, months, closed)
    finally:
        await conn.close()


async def _add(
    conn: asyncpg.Connection, people: list[Row], months: list[Row], closed: list[Row]
) -> int:
    """Add the persons not on record, with their months and ended memberships."""
    async with conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS seed_persons (LIKE insured_persons INCLUDING DEFAULTS)"
            " ON COMMIT DELETE ROWS;"
            "CREATE TEMP TABLE IF NOT EXISTS seed_months (LIKE paid_months) ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table("seed_persons", records=people, columns=PERSON_COLUMNS)
        await conn.copy_records_to_table("seed_months", records=months, columns=MONTH_COLUMNS)
        ccols = ", ".join(CLOSED_COLUMNS)
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS seed_closed AS SELECT {ccols}"
            " FROM closed_memberships WITH NO DATA"
        )
        await conn.execute("TRUNCATE seed_closed")
        await conn.copy_records_to_table("seed_closed", records=closed, columns=CLOSED_COLUMNS)
        columns, mcols = ", ".join(PERSON_COLUMNS), ", ".join(MONTH_COLUMNS)
        # The months and ended memberships of the persons this adds only: a person on record
        # keeps the history it has, though the seed that added it chose others (an older
        # version did) or drew its months up to another business date.
        added = await conn.fetchval(
            f"WITH added AS (INSERT INTO insured_persons ({columns}) SELECT {columns}"
            " FROM seed_persons ON CONFLICT (national_id) DO NOTHING RETURNING national_id),"
            f" paid AS (INSERT INTO paid_months ({mcols}) SELECT {mcols}"
            " FROM seed_months JOIN added USING (national_id)),"
            f" ended AS (INSERT INTO closed_memberships ({ccols}) SELECT {ccols}"
            " FROM seed_closed JOIN added USING (national_id))"
            " SELECT count(*) FROM added"
        )
        return int(added)
