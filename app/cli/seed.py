"""`ssogw seed`: deterministic synthetic insured persons and their histories, by COPY.

A bulk load, run as the schema's owner (``SSOGW_OWNER_DSN``), like the migrations: it
analyses the tables it filled, which only their owner may.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, date, datetime
from typing import Any

from app.cli.output import emit, progress_bar
from app.cli.session import run_async
from app.db.config import owner_dsn
from app.domain.calendar import bangkok_date
from app.insured.demo_data import SeedPlan, load
from app.settings import Settings


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    """Load ``--persons`` synthetic persons with the loader processes."""
    plan = SeedPlan(
        persons=args.persons, seed=args.seed, as_of=args.as_of or bangkok_date(datetime.now(UTC))
    )

    async def work() -> int:
        started = time.monotonic()
        with progress_bar(args, total=plan.persons, unit="persons") as bar:
            inserted = await load(
                owner_dsn(settings), plan, workers=args.workers, progress=bar.update
            )
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
