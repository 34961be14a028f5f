"""The database ceiling: asyncpg primary-key lookups of insured persons, without HTTP.

One process, one event loop (uvloop, as uvicorn runs the gateway), a pool the size of the
gateway's replica pool, ``--concurrency`` tasks each looking up random seeded persons on the
replica, as fast as they can for ``--duration`` seconds. Prints one JSON document: queries/s
and latency percentiles; with ``--member-query`` it runs the gateway's own inquiry read
(``app.counter.ledger.MEMBER_SQL``: the person, their paid months since the gateway's history
start and their pending option change) instead of the bare primary-key lookup.

    .venv/bin/python -m bench.pk_lookup --dsn DSN --persons 1000000 [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from datetime import UTC, datetime

import asyncpg
import uvloop

from app.counter.entitlement import history_start
from app.counter.member_reads import MEMBER_SQL
from app.domain.calendar import bangkok_date
from app.insured.demo_data import national_id_for

PK_LOOKUP = """
SELECT national_id, title, first_name, last_name, section, status, status_reason, ended_month,
       effective_date, s40_option, option_changed_on
  FROM insured_persons WHERE national_id = $1
"""


async def measure(args: argparse.Namespace) -> dict[str, object]:
    ids = [national_id_for(random.randrange(args.persons), seed=args.seed) for _ in range(100_000)]
    pool = await asyncpg.create_pool(
        args.dsn,
        min_size=args.pool,
        max_size=args.pool,
        server_settings={"default_transaction_read_only": "on"},
    )
    since = history_start(bangkok_date(datetime.now(UTC))).first_day
    sql, extra = (MEMBER_SQL, (since,)) if args.member_query else (PK_LOOKUP, ())
    latencies: list[float] = []
    found = 0
    stop_at = 0.0

    async def worker(offset: int) -> None:
        nonlocal found
        i = offset
        while time.perf_counter() < stop_at:
            nid = ids[i % len(ids)]
            i += 7
            started = time.perf_counter()
            row = await pool.fetchrow(sql, nid, *extra)
            latencies.append(time.perf_counter() - started)
            found += row is not None

    try:
        stop_at = time.perf_counter() + 2  # warm up: connections, plans, caches
        await asyncio.gather(*(worker(k) for k in range(args.concurrency)))
        latencies.clear()
        found = 0
        started = time.perf_counter()
        stop_at = started + args.duration
        await asyncio.gather(*(worker(k * 1000) for k in range(args.concurrency)))
        seconds = time.perf_counter() - started
    finally:
        await pool.close()
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[max(0, int(p / 100 * len(latencies)) - 1)] * 1000, 3)

    return {
        "query": "member" if args.member_query else "pk",
        "queries": len(latencies),
        "seconds": round(seconds, 3),
        "qps": round(len(latencies) / seconds, 1),
        "found": found,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "concurrency": args.concurrency,
        "pool": args.pool,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--persons", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pool", type=int, default=10, help="connections (gateway: 10)")
    parser.add_argument("--member-query", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = uvloop.run(measure(args))
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
