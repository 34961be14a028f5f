"""What two processes get of the machine, doing nothing but Python: the host's share, now.

Issue 20 asks ``ssogw serve --workers 2`` for 1.6× the SOAP throughput of one worker. That
figure needs the second CPU to be worth nearly a first one. On a VM the two CPUs may be two
hardware threads of one core, or share a core's caches and memory bandwidth with other guests,
and the share moves while a run goes on; the guest cannot tell (``lscpu`` says one thread a
core either way). This measures it: the same CPU-bound Python loop (integer arithmetic, a
dict, small strings: the interpreter's common work) in one process alone, then in two at
once, each pinned to nothing. The ratio is the throughput of two against one, 2.0 on two free
cores. It is context for the two-worker figure, not its bound: the one-worker gateway leaves
part of the machine idle (waiting on PostgreSQL), which a second worker may take, so the
gateway's ratio can exceed this one (s31: 1.53× against 1.47×).

    .venv/bin/python -m bench.machine_scaling [--rounds 5] [--loops 3000000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor


def _work(loops: int) -> float:
    """Seconds of wall time for ``loops`` turns of plain Python work (run in a child)."""
    started = time.perf_counter()
    table: dict[int, str] = {}
    total = 0
    for i in range(loops):
        total += i * i % 7
        table[i & 1023] = str(i)
    if total < 0 or not table:  # keeps the loop's results alive
        raise AssertionError
    return time.perf_counter() - started


def _alone_and_paired(pool: ProcessPoolExecutor, loops: int) -> tuple[float, float]:
    """One round: the loop's time alone, then the slower of the two loops run at once (each
    timed inside its own process: the two start a moment apart)."""
    alone = pool.submit(_work, loops).result()
    pair = [pool.submit(_work, loops) for _ in range(2)]
    return alone, max(f.result() for f in pair)


def measure(*, rounds: int = 5, loops: int = 3_000_000) -> dict[str, float]:
    """The median over ``rounds`` of one process's time alone and two processes' time at
    once; ``ratio``: the throughput of two against one (2 × alone / paired)."""
    with ProcessPoolExecutor(max_workers=2) as pool:
        pool.submit(_work, loops // 10).result()  # both children started, the code warm
        pool.submit(_work, loops // 10).result()
        samples = [_alone_and_paired(pool, loops) for _ in range(rounds)]
    alone = statistics.median(a for a, _ in samples)
    paired = statistics.median(p for _, p in samples)
    ratios = [2 * a / p for a, p in samples]
    return {
        "alone_s": round(alone, 3),
        "paired_s": round(paired, 3),
        "ratio": round(statistics.median(ratios), 2),
        "ratio_min": round(min(ratios), 2),
        "ratio_max": round(max(ratios), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loops", type=int, default=3_000_000)
    a = parser.parse_args()
    print(json.dumps(measure(rounds=a.rounds, loops=a.loops)))


if __name__ == "__main__":
    main()
