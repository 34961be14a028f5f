"""`ssogw seed`: deterministic synthetic insured persons and their histories, by COPY.

A bulk load, run as the schema's owner (``SSOGW_OWNER_DSN``), like the migrations: into empty
tables it drops and builds again their indexes (in one transaction: app/insured/demo_data/
load.py), and it analyses the tables it filled, which only their owner may.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, date, datetime
from typing import Any, TextIO

from app.cli.output import emit, say
from app.cli.session import run_async
from app.db.config import owner_dsn
from app.domain.calendar import bangkok_date
from app.insured.demo_data import SeedPlan, load
from app.settings import Settings


class SeedProgress:
    """Persons stored so far, their rate and the time left: a bar on a terminal, else a plain
    line every ``every_s`` seconds (and at the end); nothing with --quiet."""

    def __init__(
        self, total: int, *, quiet: bool, stream: TextIO = sys.stderr, every_s: float = 10.0
    ) -> None:
        self.total, self.quiet, self.stream, self.every_s = total, quiet, stream, every_s
        self.done = 0
        self.started = self._last = time.monotonic()
        self._bar: Any = None
        if not quiet and stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=" persons", unit_scale=True, file=stream)

    def update(self, persons: int) -> None:
        self.done += persons
        if self._bar is not None:
            self._bar.update(persons)
            if self.done >= self.total:  # the steps after the load print below it
                self.close()
            return
        now = time.monotonic()
        if not self.quiet and (now - self._last >= self.every_s or self.done >= self.total):
            self._last = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        seconds = max(now - self.started, 1e-9)
        rate = self.done / seconds
        left = (self.total - self.done) / rate if rate else float("inf")
        eta = f"{left // 60:.0f} min {left % 60:02.0f} s" if left != float("inf") else "?"
        share = 100 * self.done / self.total if self.total else 100.0
        return (
            f"{self.done:,} of {self.total:,} persons ({share:.0f} %), {rate:,.0f} persons/s,"
            f" {eta} left"
        )

    def step(self, message: str) -> None:
        """A step other than storing persons (building an index, ANALYZE)."""
        if self.quiet:
            return
        line = f"[{time.monotonic() - self.started:6.1f} s] {message}"
        if self._bar is not None:
            self._bar.write(line, file=self.stream)  # above the bar
        else:
            say(line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    """Load ``--persons`` synthetic persons with the loader processes."""
    plan = SeedPlan(
        persons=args.persons, seed=args.seed, as_of=args.as_of or bangkok_date(datetime.now(UTC))
    )

    async def work() -> int:
        started = time.monotonic()
        progress = SeedProgress(plan.persons, quiet=args.quiet)
        try:
            inserted = await load(
                owner_dsn(settings),
                plan,
                workers=args.workers,
                progress=progress.update,
                say=progress.step,
            )
        finally:
            progress.close()
        seconds = time.monotonic() - started
        emit(
            args,
            {
                "persons": plan.persons,
                "inserted": inserted,
                "seconds": round(seconds, 2),
                "rows_per_second": round(plan.persons / seconds) if seconds else None,
            },
            f"seeded {inserted} of {plan.persons} persons in {seconds:.1f} s",
        )
        return 0

    return run_async(work)


def register(subparsers: Any) -> None:
    """Add `seed` to the `ssogw` parser."""
    seed = subparsers.add_parser("seed", help="load deterministic synthetic insured persons")
    seed.add_argument("--persons", type=int, default=200_000, help="how many (default 200000)")
    seed.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    seed.add_argument(
        "--as-of", type=date.fromisoformat, help="business date (default: today in Bangkok)"
    )
    seed.add_argument("--quiet", action="store_true", help="no progress bar")
    seed.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="loader processes (default: cores, at most 4)",
    )
    seed.add_argument("--json", action="store_true", help="print one JSON document")
    seed.set_defaults(handler=cmd_seed)
