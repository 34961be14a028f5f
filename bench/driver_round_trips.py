"""Would a pipelining driver make a confirm cheaper? The client's CPU for a confirm-shaped
transaction, three ways, alternated in blocks of 500 on one bench primary:

- asyncpg, five round trips, as the gateway sends them (BEGIN with its SET LOCALs, the lock and
  read in ``ssogw_confirm_read``, the insert, COMMIT, the WAL position);
- psycopg 3, the same five;
- psycopg 3's pipeline mode: BEGIN and the read in one flush, the insert, COMMIT and the WAL
  position in a second.

The insert is a stand-in (``SELECT $1 + 1``) and the commit is ``synchronous_commit = local``:
what is measured is the client's cost of sending and receiving. psycopg is not a dependency of
the project: run this in a venv of its own, against the pair of a ``make bench`` run::

    python3 -m venv /tmp/pvenv && /tmp/pvenv/bin/pip install "psycopg[binary]>=3.2" asyncpg uvloop
    /tmp/pvenv/bin/python bench/driver_round_trips.py postgresql://ssogw_service@127.0.0.1:PORT/ssogw

(PORT: ``primary_port`` in ``bench/out/data/pair.json``). Session 28's figures are in
bench/RESULTS.md.
"""

import datetime
import resource
import statistics
import sys
import time

import asyncpg
import psycopg
import uvloop

BEGIN = "BEGIN; SET LOCAL synchronous_commit = local; SET LOCAL application_name = 'ssogw-payment'"
CALL = "SELECT * FROM ssogw_confirm_read($1, $2, $3, $4, $5)"
CALL_PG = "SELECT * FROM ssogw_confirm_read(%s, %s, %s, %s, %s)"
INSERT = "SELECT $1::int + 1 AS x"
INSERT_PG = "SELECT %s::int + 1 AS x"
LSN = "SELECT pg_current_wal_lsn()::text"
SINCE = datetime.date(2025, 12, 1)
BLOCK, ROUNDS = 500, 6


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


async def asyncpg_five(conn: asyncpg.Connection, nid: str) -> None:
    await conn.execute(BEGIN)
    await conn.fetchrow(CALL, nid, SINCE, 1, "pipe-x", True)
    await conn.fetchrow(INSERT, 1)
    await conn.execute("COMMIT")
    await conn.fetchval(LSN)


async def psycopg_five(conn: psycopg.AsyncConnection, nid: str) -> None:
    await conn.execute(BEGIN)
    await (await conn.execute(CALL_PG, (nid, SINCE, 1, "pipe-x", True))).fetchone()
    await (await conn.execute(INSERT_PG, (1,))).fetchone()
    await conn.execute("COMMIT")
    await (await conn.execute(LSN)).fetchone()


async def psycopg_pipelined(conn: psycopg.AsyncConnection, nid: str) -> None:
    async with conn.pipeline() as pipeline:
        await conn.execute("BEGIN")
        await conn.execute("SET LOCAL synchronous_commit = local")
        await conn.execute("SET LOCAL application_name = 'ssogw-payment'")
        read = await conn.execute(CALL_PG, (nid, SINCE, 1, "pipe-x", True))
        await pipeline.sync()
        await read.fetchone()
    async with conn.pipeline() as pipeline:
        inserted = await conn.execute(INSERT_PG, (1,))
        await conn.execute("COMMIT")
        position = await conn.execute(LSN)
        await pipeline.sync()
        await inserted.fetchone()
        await position.fetchone()


async def main(dsn: str) -> None:
    a = await asyncpg.connect(dsn)
    p = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    nids = iter(
        row[0]
        for row in await a.fetch(
            "SELECT national_id FROM insured_persons TABLESAMPLE SYSTEM (0.2) LIMIT 20000"
        )
    )
    ways = {
        "asyncpg, 5 round trips": (a, asyncpg_five),
        "psycopg, 5 round trips": (p, psycopg_five),
        "psycopg pipeline, 2 flushes": (p, psycopg_pipelined),
    }
    cpus: dict[str, list[float]] = {name: [] for name in ways}
    walls: dict[str, list[float]] = {name: [] for name in ways}
    for conn, way in ways.values():  # statements prepared before anything is timed
        for _ in range(50):
            await way(conn, next(nids))
    for _ in range(ROUNDS):
        for name, (conn, way) in ways.items():
            cpu0, wall0 = cpu(), time.monotonic()
            for _ in range(BLOCK):
                await way(conn, next(nids))
            cpus[name].append(1e6 * (cpu() - cpu0) / BLOCK)
            walls[name].append(1e6 * (time.monotonic() - wall0) / BLOCK)
    for name in ways:
        blocks = ", ".join(f"{v:.0f}" for v in cpus[name])
        print(
            f"{name}: client CPU {blocks} µs a transaction"
            f" (median {statistics.median(cpus[name]):.0f}),"
            f" wall median {statistics.median(walls[name]):.0f} µs"
        )


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1]))
