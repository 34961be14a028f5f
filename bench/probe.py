"""An open-loop probe at a rate you choose: p50/p99 of one operation at the same load on two
commits (``make bench`` measures each side at half of its own maximum, so two sides whose
maxima differ are measured at different loads).

    .venv/bin/python -m bench.probe soap_inquiry|rest_inquiry --rate 700 [--seconds 10]
                     [--repeat 3] [--persons 200000]

Starts ``ssogw serve`` on the bench pair (seeded by ``make bench``), registers a bench partner
and client, warms up for 3 s, then runs ``--repeat`` open-loop runs of 32 connections on fixed
timetables, latency counted from the time each request was due.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path

from bench import gateway
from bench.gateway import OUT
from bench.wrk import run_wrk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=("soap_inquiry", "rest_inquiry"))
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=OUT / "data")
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()
    run_id = "q" + datetime.now().strftime("%Y%m%d%H%M%S")
    gateway.ssogw(data_dir, "db", "up")
    served = gateway.start_gateway(data_dir, OUT / "probe-serve.log")
    try:
        p = asyncio.run(gateway.register(data_dir, run_id))
        env = gateway.lua_env(p, persons=args.persons, seed=args.seed)
        run_wrk(args.operation, served.base, threads=2, connections=64, duration_s=3,
                env=env | {"BENCH_RUN": f"{run_id}w"})  # fmt: skip
        for n in range(args.repeat):
            result = run_wrk(
                args.operation,
                served.base,
                threads=32,
                connections=32,
                duration_s=args.seconds,
                rate=args.rate,
                env=env | {"BENCH_RUN": f"{run_id}{n}"},
            )
            print(
                f"{args.operation} at {args.rate:,.0f}/s: achieved {result.rps:,.0f}/s,"
                f" p50 {result.percentile_ms('p50'):.2f} ms,"
                f" p99 {result.percentile_ms('p99'):.2f} ms, errors {result.failed}"
            )
    finally:
        served.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
