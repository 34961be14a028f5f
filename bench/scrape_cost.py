"""What a /metrics scrape costs with 100 partners × every operation and outcome (issue 19).

No database and no HTTP: the gateway's ``Metrics`` filled with that many series, scraped with
``Metrics.exposition()`` (what ``GET /metrics`` answers) on an event loop that also runs
simulated calls — tasks that each wake every millisecond and record how late they woke. The
lateness is what a scrape adds to calls in flight. Prints the scrape's time and the calls'
p99 lateness without and with scrapes running back to back.

With ``--workers N`` (``ssogw serve --workers N``), also what the supervisor spends on a scrape:
reading N such expositions and merging them into the group's (``group_exposition``), in the
supervisor's process, off every worker's event loop.

    .venv/bin/python -m bench.scrape_cost [--partners 100] [--seconds 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from prometheus_client import CollectorRegistry

from app.errors import all_error_classes
from app.observability.group_exposition import Retired, merge, parse
from app.observability.metrics import Metrics
from app.observability.serving import tune_gc

OPERATIONS = (
    ("soap", "InquireContribution"), ("soap", "ConfirmPayment"), ("soap", "CancelPayment"),
    ("soap", "GetPaymentStatus"), ("rest", "GET /api/v1/insured/{nationalId}/contributions"),
    ("rest", "POST /api/v1/payments"), ("rest", "POST /api/v1/payments/{partnerTxnId}/cancel"),
    ("rest", "GET /api/v1/payments/{partnerTxnId}"),
)  # fmt: skip


def filled(partners: int) -> Metrics:
    metrics = Metrics(CollectorRegistry())
    outcomes = ["ok", *(cls.code for cls in all_error_classes())]
    for protocol, operation in OPERATIONS:
        for outcome in outcomes:
            metrics.request_seconds.labels(protocol, operation, outcome).observe(0.012)
            for p in range(partners):
                metrics.requests.labels(protocol, operation, outcome, f"partner-{p:03d}").inc()
    return metrics


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else 0.0


async def calls(stop: float, lateness: list[float]) -> None:
    while time.perf_counter() < stop:
        due = time.perf_counter() + 0.001
        await asyncio.sleep(0.001)
        lateness.append(time.perf_counter() - due)


async def measure(metrics: Metrics, seconds: float, *, scraping: bool) -> tuple[float, list[float]]:
    lateness: list[float] = []
    scrapes: list[float] = []
    stop = time.perf_counter() + seconds

    async def scraper() -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            body = await metrics.exposition()
            scrapes.append(time.perf_counter() - started)
            assert body
            await asyncio.sleep(0.01)

    tasks = [calls(stop, lateness) for _ in range(32)]
    await asyncio.gather(*tasks, *([scraper()] if scraping else []))
    return p99(lateness), scrapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1, help="the supervisor's merge of N")
    args = parser.parse_args()
    metrics = filled(args.partners)
    tune_gc()  # as `ssogw serve` does once the app is built
    series = len(asyncio.run(metrics.exposition()).splitlines())
    quiet, _ = asyncio.run(measure(metrics, args.seconds, scraping=False))
    busy, scrapes = asyncio.run(measure(metrics, args.seconds, scraping=True))
    print(f"{series:,} lines per scrape; {len(scrapes)} scrapes in {args.seconds:.0f} s")
    median, worst = statistics.median(scrapes) * 1000, p99(scrapes) * 1000
    print(f"scrape: median {median:.1f} ms, p99 {worst:.1f} ms")
    print(f"calls' p99 lateness: {quiet * 1000:.2f} ms without scrapes, {busy * 1000:.2f} ms with")
    if args.workers > 1:
        text = asyncio.run(metrics.exposition()).decode()
        merges = []
        for _ in range(10):
            started = time.perf_counter()
            merge([(i, parse(text)) for i in range(args.workers)], retired=Retired())
            merges.append(time.perf_counter() - started)
        print(
            f"the supervisor's merge of {args.workers} workers' expositions: median"
            f" {statistics.median(merges) * 1000:.1f} ms, worst {max(merges) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
