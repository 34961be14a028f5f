"""The CPU one call costs the gateway's app, without the HTTP server: steadier than wrk's figures.

Runs the app (``create_app``) in this process on the bench pair, past uvicorn: ``--concurrency``
tasks each send calls straight into the ASGI app, for ``--calls`` calls in all, and the process's
own CPU time (``time.process_time``: the app, its audit writer and nonce batches, never
PostgreSQL's) is divided by the calls. What wrk measures also pays the HTTP server and shares
the two cores with PostgreSQL and wrk; this figure moves only with the app's own work, so two
commits can be compared on a busy machine. ``--profile`` prints cProfile's top functions;
``--profile-out PATH`` also keeps its stats there (``pstats``: callers, callees).

    .venv/bin/python -m bench.asgi_cost soap_inquiry|rest_inquiry [--calls 20000] [--profile]
                     [--profile-out soap.pstats]

The bench pair must be up and seeded (``make bench`` leaves it so).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench import gateway
from bench.gateway import OUT, Principals, pair_dsns, soap_envelope


def _soap_body(p: Principals, national_id: str) -> bytes:
    return soap_envelope(
        p,
        "<sso:InquireContribution>"
        f"<sso:nationalId>{national_id}</sso:nationalId><sso:storeId>S-0001</sso:storeId>"
        "<sso:terminalId>T-01</sso:terminalId></sso:InquireContribution>",
    )


def _scope(operation: str, p: Principals, national_id: str) -> tuple[dict[str, Any], bytes]:
    if operation == "soap_inquiry":
        body = _soap_body(p, national_id)
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"text/xml; charset=utf-8"),
            (b"soapaction", b'"urn:sso:contribution:v1/InquireContribution"'),
            (b"content-length", str(len(body)).encode()),
        ]
        return _http("POST", "/soap/v1", headers), body
    headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {p.token}".encode())]
    return _http("GET", f"/api/v1/insured/{national_id}/contributions", headers), b""


def _http(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a disconnect never comes while the call runs
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _national_ids(data_dir: Path, count: int) -> list[str]:
    _, replica = pair_dsns(data_dir)
    conn = await asyncpg.connect(replica)
    try:
        rows = await conn.fetch(
            "SELECT national_id FROM insured_persons TABLESAMPLE SYSTEM (5) LIMIT $1", count
        )
    finally:
        await conn.close()
    return [r["national_id"] for r in rows]


async def _run(args: argparse.Namespace) -> None:
    data_dir = args.data_dir.resolve()
    os.environ.update(gateway.ssogw_env(data_dir, SSOGW_LOG_LEVEL="WARNING"))
    from app.main import create_app
    from app.observability.logs import configure_logging
    from app.observability.serving import tune_gc
    from app.settings import Settings

    configure_logging("INFO")
    p = await gateway.register(data_dir, "a" + datetime.now().strftime("%Y%m%d%H%M%S%f"))
    ids = await _national_ids(data_dir, 5_000)
    app = create_app(Settings())
    statuses: dict[int, int] = {}
    async with app.router.lifespan_context(app):
        tune_gc()

        async def worker(calls: int) -> None:
            for _ in range(calls):
                scope, body = _scope(args.operation, p, random.choice(ids))
                status = await _call(app, scope, body)
                statuses[status] = statuses.get(status, 0) + 1

        each = max(1, args.warmup // args.concurrency)
        await asyncio.gather(*(worker(each) for _ in range(args.concurrency)))
        statuses.clear()
        each = max(1, args.calls // args.concurrency)
        profiler = cProfile.Profile() if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        await asyncio.gather(*(worker(each) for _ in range(args.concurrency)))
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    calls = each * args.concurrency
    print(
        f"{args.operation}: {calls:,} calls in {wall:.1f} s ({calls / wall:,.0f}/s),"
        f" {cpu / calls * 1e6:.0f} µs CPU per call, statuses {statuses}"
        + (" (under cProfile)" if profiler else "")
    )
    if profiler:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(args.top)
        if args.profile_out is not None:
            profiler.dump_stats(args.profile_out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=("soap_inquiry", "rest_inquiry"))
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-out", type=Path, help="with --profile: keep the stats here")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--data-dir", type=Path, default=OUT / "data")
    args = parser.parse_args()
    if args.profile_out is not None and not args.profile:
        parser.error("--profile-out needs --profile")
    try:  # the loop `ssogw serve` runs on (uvicorn's "auto")
        import uvloop
    except ImportError:
        asyncio.run(_run(args))
    else:
        uvloop.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
