"""Profile the gateway under load: py-spy samples `ssogw serve` while wrk drives one operation.

Starts the service on the bench pair (seeded by ``bench/run.py``; ``--persons`` must match),
registers a bench partner and client, warms up, then records ``--seconds`` of closed-loop load
with ``py-spy record --format raw`` and prints the top entries: where the samples' innermost
frame was (self) and which functions were on the stack (inclusive), as shares of all samples.

    .venv/bin/python -m bench.profile soap_inquiry|rest_inquiry|soap_confirm [--seconds 20]
                     [--rate R --connections 32 [--threads 2]] [--native] [--top 25]

py-spy comes with the dev dependencies (``make test`` or ``make run`` installs it). As root it
needs nothing else; otherwise ``ptrace`` must be allowed (``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from bench import gateway
from bench.gateway import BIN, OUT
from bench.wrk import run_wrk

ROOT = Path(__file__).resolve().parents[1]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` as ``module.py:func``; native frames as they come."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", f"{ROOT}/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{match['func']}"


def top_entries(
    raw: Path, top: int
) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """(samples, self shares, inclusive shares) from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f]
        # Skip the thread-name root frame py-spy adds (e.g. "process 123:\"...\"").
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    share = lambda c: [(name, n / total) for name, n in c.most_common(top)]  # noqa: E731
    return total, share(own), share(inclusive)


#: Where a sample's innermost frame was, by layer (the first prefix that matches).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("HTTP server: uvicorn, httptools, the event loop", ("uvicorn/", "httptools", "asyncio/")),
    (
        "web framework: FastAPI, Starlette, pydantic",
        ("fastapi/", "starlette/", "pydantic", "anyio/"),
    ),
    ("SOAP adapter: XML in and out, WS-Security", ("app/soap/",)),
    (
        "REST adapter",
        (
            "app/rest/",
            "app/counter/routes",
            "app/counter/inquiry_schemas",
            "app/counter/payment_schemas",
        ),
    ),
    # SQL modules before the use cases: both live in the capability packages.
    (
        "store: asyncpg, queries, audit chain",
        (
            "asyncpg/",
            "app/db/pools",
            "app/db/database",
            "app/db/replica_router",
            "app/db/failures",
            "app/counter/ledger",
            "app/audit/writer",
            "app/audit/chain",
            "app/audit/queries",
            "app/audit/spool",
            "app/principals/repository",
            "app/rates/repository",
        ),
    ),
    (
        "service and business rules",
        (
            "app/counter/",
            "app/admission/",
            "app/audit/",
            "app/principals/",
            "app/rates/",
            "app/db/",
            "app/domain/",
            "app/errors",
        ),
    ),
    (
        "middleware, metrics and logs",
        ("app/observability/", "prometheus_client/", "logging/", "json/", "app/logs"),
    ),
)


def layers(raw: Path) -> list[tuple[str, float]]:
    """The share of samples whose innermost frame was in each layer (and "other")."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit() or not stack:
            continue
        leaf = _short(stack.split(";")[-1])
        layer = next((name for name, prefixes in LAYERS if leaf.startswith(prefixes)), "other")
        counts[layer] += int(count_text)
        total += int(count_text)
    names = [name for name, _ in LAYERS] + ["other"]
    return [(name, counts[name] / total) for name in names if counts[name]] if total else []


def render_layers(shares: list[tuple[str, float]], cpu_us: float) -> str:
    lines = ["| layer | share of samples | ≈ µs CPU per request |", "|---|---:|---:|"]
    lines += [f"| {name} | {share:.1%} | {share * cpu_us:.0f} |" for name, share in shares]
    return "\n".join(lines)


def render(
    operation: str, total: int, own: list[tuple[str, float]], inclusive: list[tuple[str, float]]
) -> str:
    lines = [
        f"### {operation}: {total:,} samples",
        "",
        "| self | function | | inclusive | function |",
        "|---:|---|---|---:|---|",
    ]
    for (a, x), (b, y) in zip(own, inclusive, strict=False):
        lines.append(f"| {x:.1%} | `{a}` | | {y:.1%} | `{b}` |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=("soap_inquiry", "rest_inquiry", "soap_confirm"))
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--rate", type=float, help="requests per second (open loop, as the bench's half load)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="wrk threads (open loop: each with a timetable)"
    )
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--data-dir", type=Path, default=OUT / "data")
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()
    run_id = "p" + datetime.now().strftime("%Y%m%d%H%M%S")
    gateway.pair_up(data_dir)
    gw = gateway.start_gateway(data_dir, OUT / "profile-serve.log")
    try:
        p = asyncio.run(gateway.register(data_dir, run_id))
        env = gateway.lua_env(p, persons=args.persons, seed=args.seed)
        if args.operation == "soap_confirm":
            needed = int(4000 * (args.seconds + 10))
            rows = asyncio.run(gateway.confirm_candidates(data_dir, needed))
            path = OUT / "profile-candidates.txt"
            path.write_text("\n".join(rows) + "\n")
            env["BENCH_CANDIDATES"] = str(path)

        cpu_per_request: list[float] = []

        def load(seconds: float, tag: str) -> None:
            cpu = gw.cpu_seconds()
            result = run_wrk(
                args.operation,
                gw.base,
                threads=min(args.threads, args.connections),
                connections=args.connections,
                duration_s=seconds,
                env=env | {"BENCH_RUN": f"{run_id}{tag}"},
                rate=args.rate,
            )
            busy = (gw.cpu_seconds() - cpu) / result.seconds
            cpu_per_request.append(busy / result.rps * 1e6)
            print(
                f"{tag}: {result.rps:,.0f} requests/s, p99 {result.latency_ms['p99']:.1f} ms,"
                f" errors {result.errors}, service CPU {busy:.0%},"
                f" {busy / result.rps * 1e6:.0f} µs CPU per request",
                file=sys.stderr,
            )

        if args.operation == "soap_confirm":
            # The warm-up uses the first persons; the recorded run must not pay them again.
            load(3, "w")
            rows = rows[(4000 * 4) :]
            Path(env["BENCH_CANDIDATES"]).write_text("\n".join(rows) + "\n")
        else:
            load(3, "w")
        raw = OUT / f"profile-{args.operation}.txt"
        raw.unlink(missing_ok=True)
        spy = subprocess.Popen(
            [
                str(BIN / "py-spy"),
                "record",
                "--pid",
                str(gw.proc.pid),
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                str(int(args.seconds)),
                "--output",
                str(raw),
                *(["--native"] if args.native else ["--nonblocking"]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        load(args.seconds, "r")
        _, spy_err = spy.communicate(timeout=60)
        if spy.returncode != 0:
            raise SystemExit(f"py-spy failed: {spy_err.decode()[-2000:]}")
    finally:
        gw.stop()
    total, own, inclusive = top_entries(raw, args.top)
    print(render(args.operation, total, own, inclusive))
    print()
    print(render_layers(layers(raw), cpu_per_request[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
