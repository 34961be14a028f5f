"""What admission adds to a PasswordDigest call: a small loop, not a benchmark.

Starts its own PostgreSQL pair (durable, in a temporary directory), migrates it, wires one
gateway in process (no HTTP) and times N admissions of fresh PasswordDigest tokens one after
another, then N with ``--concurrency`` in flight, then N whole inquiries one after another
(admission, replica read, audit record). Run it on two commits to compare them::

    PYTHONPATH=. .venv/bin/python -m bench.admission_latency --calls 2000

(``PYTHONPATH`` chooses the code measured: this script runs on any commit with
``build_gateway``.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from app.admission.credential_vault import password_digest
from app.admission.credentials import PasswordType, UsernameToken
from app.admission.records import Caller, Protocol
from app.counter.records import InquiryRequest
from app.db.local_pair import SERVICE_ROLE, LocalPair, PairRecord
from app.db.migrator import migrate
from app.errors import ServiceError
from app.main import build_gateway, start_gateway, stop_gateway
from app.settings import Settings

OPERATION = "InquireContribution"


def digest_token(username: str, password: str) -> UsernameToken:
    """A PasswordDigest token with a fresh nonce, created now, as a partner's stack sends."""
    nonce = os.urandom(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return UsernameToken(
        username=username,
        password=password_digest(nonce=nonce, created=created, password=password),
        password_type=PasswordType.DIGEST,
        nonce_b64=base64.b64encode(nonce).decode(),
        created=created,
    )


def summary(name: str, seconds: list[float], wall_s: float) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p50, p99 = ms[len(ms) // 2], ms[min(len(ms) - 1, round(0.99 * len(ms)))]
    return (
        f"{name:<34} n={len(ms):>5}  mean {statistics.fmean(ms):6.3f} ms  p50 {p50:6.3f}"
        f"  p99 {p99:6.3f}  max {ms[-1]:7.3f}  ({len(ms) / wall_s:,.0f}/s)"
    )


async def timed(calls: list[Callable[[], Awaitable[object]]], concurrency: int) -> list[float]:
    seconds: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            started = time.perf_counter()
            await call()
            seconds.append(time.perf_counter() - started)

    await asyncio.gather(*(one(call) for call in calls))
    return seconds


async def measure(record: PairRecord, data_dir: Path, calls: int, concurrency: int) -> None:
    conn = await asyncpg.connect(record.owner_dsn)
    try:
        await migrate(conn, service_role=SERVICE_ROLE)
    finally:
        await conn.close()
    settings = Settings(
        data_dir=data_dir,
        primary_dsn=record.primary_dsn,
        replica_dsns=[record.replica_dsn],
        instance_id="latency",
        argon2_memory_kib=8192,
        argon2_time_cost=1,
        argon2_parallelism=1,
    )
    gw = build_gateway(settings)
    await start_gateway(gw)
    try:
        issued = await gw.registry.add_partner(
            name=f"lat-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"], rate_limit=100_000
        )

        def admit() -> Awaitable[object]:
            token = digest_token(issued.username, issued.password)
            caller = Caller(Protocol.SOAP, "127.0.0.1", uuid.uuid4().hex)
            return gw.admission.admit(
                caller=caller, credentials=token, operation=OPERATION, scope="counter"
            )

        async def inquire() -> None:
            token = digest_token(issued.username, issued.password)
            caller = Caller(Protocol.SOAP, "127.0.0.1", uuid.uuid4().hex)
            try:
                await gw.counter.inquire(
                    caller=caller, credentials=token, request=InquiryRequest("3100600445635")
                )
            except ServiceError as error:
                if error.code != "client.person_not_found":
                    raise

        await timed([admit for _ in range(200)], 1)  # warm-up: pools, caches
        for name, call, width in (
            ("admission, one at a time", admit, 1),
            (f"admission, {concurrency} in flight", admit, concurrency),
            ("inquiry, one at a time", inquire, 1),
        ):
            started = time.perf_counter()
            seconds = await timed([call] * calls, width)
            print(summary(name, seconds, time.perf_counter() - started), flush=True)
    finally:
        await stop_gateway(gw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ssogw-latency-"))
    os.chmod(root, 0o755)  # the unprivileged server user must reach its data directories
    pair = LocalPair(root / "pair", durable=True)
    try:
        record = pair.up()
        pair.wait_streaming()
        asyncio.run(measure(record, root / "data", args.calls, args.concurrency))
    finally:
        try:
            pair.down()
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
