"""An open-loop probe at a rate you choose: p50/p99 of one operation at the same load on two
commits (``make bench`` measures each side at half of its own maximum, so two sides whose
maxima differ are measured at different loads).

    .venv/bin/python -m bench.probe soap_inquiry|rest_inquiry|soap_confirm --rate 700
                     [--seconds 10] [--repeat 3] [--persons 200000]
                     [--connections 8] [--threads 2] [--warm-up-at-rate]
    .venv/bin/python -m bench.probe soap_inquiry --closed [--seconds 10] [--repeat 3]
                     [--set SSOGW_REPLICA_POOL_MAX=20 ...] [--workers 2]

Starts ``ssogw serve`` on the bench pair (seeded by ``make bench``), registers a bench partner
and client, warms up for 3 s, then runs ``--repeat`` open-loop runs of 32 connections on the
fixed timetables of 2 wrk threads (as ``make bench``), latency counted from the time each
request was due (``--connections N`` and ``--threads N`` for other numbers; ``--threads``
equal to ``--connections`` is the earlier form, one connection and timetable per thread).
``--closed``: closed-loop runs of 64 connections instead (as ``make bench``'s maxima;
``--connections N`` for another number); each run with where the CPU went
(``bench.cpu_split``) and the mean time of the audit group commit, of a nonce batch and of the
event loop's lateness: a quick look at one change's effect on the maximum, without the whole
bench. ``--stages``: also the mean wait of each stage of a call inside the gateway
(``bench.stage_waits``; their totals are written each second, so a run's means may include up
to a second of the warm-up before it). ``--pg-states``: also what the primary's client
backends were doing (``pg_stat_activity`` sampled every 0.2 s: how many on average were
working, waiting for the gateway's next statement, for the WAL...) and how long the service's
threads waited for a core (``bench.pg_states``). ``--warm-up-at-rate``: warm up at the runs'
own rate and connections instead of a closed loop of 64, whose large batches leave state
behind that an unhurried gateway would not have (PostgreSQL's choice of plan for a prepared
statement, for one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from bench import cpu_split, gateway, pg_states, stage_waits
from bench.gateway import OUT
from bench.wrk import run_wrk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=("soap_inquiry", "rest_inquiry", "soap_confirm"))
    parser.add_argument("--rate", type=float, help="requests per second (open loop)")
    parser.add_argument("--closed", action="store_true", help="closed loop, 64 connections")
    parser.add_argument(
        "--connections", type=int, help="connections (closed loop: the bench's 64; open: 32)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="open loop: wrk threads, each with a timetable"
    )
    parser.add_argument(
        "--warm-up-at-rate", action="store_true",
        help="warm up at --rate on the runs' connections, not with a closed loop of 64",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=OUT / "data")
    parser.add_argument("--workers", type=int, default=1, help="ssogw serve --workers N")
    parser.add_argument(
        "--pg-states",
        action="store_true",
        help="print what the primary's backends were doing, and the service's run queue wait",
    )
    parser.add_argument(
        "--stages", action="store_true",
        help="print each run's mean waits by stage (bench.stage_waits; one worker)",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="SSOGW_NAME=VALUE",
        help="a setting of the gateway under test (repeatable): one change's effect",
    )  # fmt: skip
    args = parser.parse_args()
    if not all(item.startswith("SSOGW_") and "=" in item for item in args.set):
        parser.error("--set takes SSOGW_NAME=VALUE")
    settings = dict(item.split("=", 1) for item in args.set)
    if (args.rate is None) == (not args.closed):
        parser.error("give either --rate or --closed")
    if args.warm_up_at_rate and args.closed:
        parser.error("--warm-up-at-rate goes with --rate")
    if args.stages and args.workers != 1:
        parser.error("--stages times one process: leave --workers at 1")
    stages_file = OUT / "probe-stages.json"
    if args.stages:
        stages_file.unlink(missing_ok=True)
        settings |= {
            stage_waits.ENV: str(stages_file),
            "PYTHONPATH": os.pathsep.join(
                [str(stage_waits.HOOK_DIR), str(gateway.ROOT)]
                + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
            ),
        }
    data_dir = args.data_dir.resolve()
    primary = gateway.pair_dsns(data_dir)[0]
    run_id = "q" + datetime.now().strftime("%Y%m%d%H%M%S")
    gateway.pair_up(data_dir)
    served = gateway.start_gateway(
        data_dir, OUT / "probe-serve.log", workers=args.workers, **settings
    )
    try:
        p = asyncio.run(gateway.register(data_dir, run_id))
        env = gateway.lua_env(p, persons=args.persons, seed=args.seed)
        # Persons for each run (and the warm-up) to pay for once each: 30,000, or more for a
        # run long enough to pay for more (1,500/s is above any confirm rate measured here).
        per_run = max(30_000, int(1_500 * (args.seconds + 5)))
        payable = (
            asyncio.run(gateway.confirm_candidates(data_dir, per_run * (args.repeat + 1)))
            if args.operation == "soap_confirm"
            else []
        )

        def pay_from(n: int) -> None:  # each run pays for persons of its own, once each
            if payable:
                path = OUT / f"probe-candidates-{n}.txt"
                path.write_text("\n".join(payable[per_run * n : per_run * (n + 1)]) + "\n")
                env["BENCH_CANDIDATES"] = str(path)

        pay_from(0)
        connections = args.connections or (64 if args.closed else 32)
        threads = 2 if args.closed else min(args.threads, connections)
        if args.warm_up_at_rate:
            run_wrk(args.operation, served.base, threads=threads, connections=connections,
                    duration_s=3, rate=args.rate,
                    env=env | {"BENCH_RUN": f"{run_id}w"})  # fmt: skip
        else:
            run_wrk(args.operation, served.base, threads=2, connections=64, duration_s=3,
                    env=env | {"BENCH_RUN": f"{run_id}w"})  # fmt: skip
        for n in range(args.repeat):
            pay_from(n + 1)
            servers = cpu_split.postmasters(data_dir)
            before = cpu_split.mark(served.proc.pid, servers)
            metrics = _means(gateway.metrics_text(served.base))
            stages = stage_waits.read(stages_file)
            sampler = pg_states.StateSampler(primary, served.proc.pid) if args.pg_states else None
            with sampler or contextlib.nullcontext():
                result = run_wrk(
                    args.operation,
                    served.base,
                    threads=threads,
                    connections=connections,
                    duration_s=args.seconds,
                    rate=args.rate,
                    env=env | {"BENCH_RUN": f"{run_id}{n}"},
                )
            states_line = f"; {sampler.summary()}" if sampler is not None else ""
            after_cpu = cpu_split.mark(served.proc.pid, servers)
            cpu = cpu_split.split(before, after_cpu, result.requests)
            after = _means(gateway.metrics_text(served.base))
            if args.stages:
                time.sleep(1.2)  # the hook writes its totals every second
                waits_line = "; " + stage_waits.means(stages, stage_waits.read(stages_file))
            else:
                waits_line = ""
            waits = ", ".join(
                f"{name} {1000 * (t - metrics[name][0]) / max(1.0, c - metrics[name][1]):.2f} ms"
                for name, (t, c) in after.items()
            )
            print(
                f"{args.operation} {'closed' if args.closed else f'at {args.rate:,.0f}/s'}:"
                f" {result.rps:,.0f}/s, p50 {result.percentile_ms('p50'):.2f} ms,"
                f" p99 {result.percentile_ms('p99'):.2f} ms, errors {result.failed};"
                f" service {cpu['service_us']} µs ({cpu['service_cores']} cores), PostgreSQL"
                f" {cpu['postgres_us']} µs, other {cpu['other_us']} µs (kernel threads"
                f" {cpu['kernel_us']} µs), machine {cpu['busy_pct']} % busy; mean {waits}"
                f"{waits_line}{states_line}"
            )
    finally:
        served.stop()
    return 0


_MEANS = {
    "audit commit": "ssogw_audit_commit_seconds",
    "nonce batch": "ssogw_nonce_claim_seconds",
    "loop lag": "ssogw_event_loop_lag_seconds",
}


def _means(metrics: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of the histograms of ``_MEANS``, by their short names."""
    found: dict[str, tuple[float, float]] = {}
    values = dict(
        line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#")
    )
    for name, metric in _MEANS.items():
        total = float(values.get(f"{metric}_sum", 0.0))
        found[name] = (total, float(values.get(f"{metric}_count", 0.0)))
    return found


if __name__ == "__main__":
    sys.exit(main())
