"""The disk's commit time and its tail, where the bench pair keeps its WAL.

An inquiry is answered only once its audit record has committed: the primary's WAL flushed,
and the synchronous standby's too. Every call in flight waits for the same group commit, so
one slow flush holds them all: a 150 ms stall at 1,200 calls a second delays some 200 calls,
and two such stalls in a 30 s run put the run's p99 over 20 ms. This writes 8 KiB and
``fdatasync``s it, over and over, for ``--seconds``, on the disk of ``bench/out`` (the bench
pair's), and prints the distribution and the stalls.

    .venv/bin/python -m bench.fsync_tail [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench.gateway import OUT


def measure(seconds: float) -> dict[str, float]:
    """fdatasync times (ms) over ``seconds``: p50, p99, p99.9, max, and stalls over 20/100 ms."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"fsync-tail-{os.getpid()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times: list[float] = []
    try:
        block = b"\0" * 8192
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            os.pwrite(fd, block, 0)
            started = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    n = len(times)
    return {
        "flushes": n,
        "p50_ms": round(times[n // 2], 3),
        "p99_ms": round(times[int(n * 0.99)], 3),
        "p999_ms": round(times[int(n * 0.999)], 3),
        "max_ms": round(times[-1], 1),
        "over_20_ms": sum(1 for t in times if t > 20),
        "over_100_ms": sum(1 for t in times if t > 100),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    seconds = parser.parse_args().seconds
    if not seconds > 0:
        parser.error("--seconds must be more than 0")
    print(json.dumps(measure(seconds)))


if __name__ == "__main__":
    main()
