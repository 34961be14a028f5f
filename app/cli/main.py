"""The `ssogw` command: every operator task, from the local database pair to audit queries.

Commands that create or report take ``--json`` and then print exactly one JSON document on
stdout; progress and messages go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from app.db.local_pair import LocalPair, read_record
from app.db.pools import resolve_dsns
from app.errors import ServiceError
from app.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]
COMMANDS: dict[str, Handler] = {}


def say(message: str) -> None:
    """A message for the person at the terminal (stderr, so --json output stays clean)."""
    print(message, file=sys.stderr, flush=True)


def emit(args: argparse.Namespace, document: Any, text: str) -> None:
    """Print ``document`` as JSON when --json was given, else ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(document, ensure_ascii=False, default=str))
    else:
        print(text)


def primary_dsn(settings: Settings) -> str:
    return resolve_dsns(
        primary_dsn=settings.primary_dsn,
        replica_dsns=settings.replica_dsns,
        data_dir=Path(settings.data_dir),
    )[0]


def run_async(work: Callable[[], Coroutine[Any, Any, int]]) -> int:
    return asyncio.run(work())


async def connect(settings: Settings) -> asyncpg.Connection:
    """A connection to the primary (for operator commands)."""
    return await asyncpg.connect(primary_dsn(settings), timeout=settings.connect_timeout_s)


# --- db --------------------------------------------------------------------------------------
def local_pair(settings: Settings) -> LocalPair:
    return LocalPair(Path(settings.data_dir), pg_bin=settings.pg_bin, say=say)


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    pair = local_pair(settings)
    if args.action == "up":
        record = pair.up()
        pair.wait_streaming()
        emit(
            args,
            {"primary": record.primary_dsn, "replica": record.replica_dsn},
            f"primary  {record.primary_dsn}\nreplica  {record.replica_dsn} (streaming)",
        )
        return 0
    if args.action == "down":
        pair.down()
        return 0
    return run_async(lambda: db_status(args, settings))


async def db_status(args: argparse.Namespace, settings: Settings) -> int:
    record = read_record(Path(settings.data_dir))
    primary, replicas = resolve_dsns(
        primary_dsn=settings.primary_dsn,
        replica_dsns=settings.replica_dsns,
        data_dir=Path(settings.data_dir),
    )
    report: dict[str, Any] = {"primary": {"dsn": primary}, "replicas": []}
    try:
        conn = await asyncpg.connect(primary, timeout=3)
        try:
            report["primary"]["lsn"] = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
            report["primary"]["standbys"] = [
                dict(row)
                for row in await conn.fetch(
                    "SELECT application_name, state, replay_lsn::text AS replay_lsn,"
                    " COALESCE(extract(epoch FROM replay_lag), 0)::float AS replay_lag_s,"
                    " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes"
                    " FROM pg_stat_replication"
                )
            ]
            report["primary"]["up"] = True
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        report["primary"].update(up=False, error=str(exc))
    for dsn in replicas:
        entry: dict[str, Any] = {"dsn": dsn}
        try:
            conn = await asyncpg.connect(dsn, timeout=3)
            try:
                row = await conn.fetchrow(
                    "SELECT pg_is_in_recovery() AS standby,"
                    " pg_last_wal_receive_lsn()::text AS receive_lsn,"
                    " pg_last_wal_replay_lsn()::text AS replay_lsn,"
                    " pg_is_wal_replay_paused() AS paused,"
                    " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float"
                    " AS since_last_replay_s"
                )
                entry.update(dict(row or {}), up=True)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            entry.update(up=False, error=str(exc))
        report["replicas"].append(entry)
    if record is not None:
        report["local"] = {
            "binaries": record.bin_dir,
            "from": record.bin_source,
            "os_user": record.os_user,
        }
    lines = [
        f"primary  {primary}  up={report['primary'].get('up')}  lsn={report['primary'].get('lsn')}"
    ]
    for standby in report["primary"].get("standbys", []):
        lines.append(
            f"  standby {standby['application_name']}: {standby['state']}"
            f"  replay_lsn={standby['replay_lsn']}  lag={standby['lag_bytes']} bytes"
            f" / {standby['replay_lag_s']:.3f} s"
        )
    for rep in report["replicas"]:
        lines.append(
            f"replica  {rep['dsn']}  up={rep.get('up')}  standby={rep.get('standby')}"
            f"  replay_lsn={rep.get('replay_lsn')}  paused={rep.get('paused')}"
        )
    emit(args, report, "\n".join(lines))
    return 0 if report["primary"].get("up") else 1


# --- migrate and seed -----------------------------------------------------------------------
def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from app.db.migrator import migrate

    async def work() -> int:
        conn = await connect(settings)
        try:
            applied = await migrate(conn)
        finally:
            await conn.close()
        emit(
            args,
            {"applied": applied},
            "\n".join(f"applied {name}" for name in applied) or "database is up to date",
        )
        return 0

    return run_async(work)


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from tqdm import tqdm

    from app.insured.demo_data import SeedPlan, load

    plan = SeedPlan(persons=args.persons, seed=args.seed, as_of=args.as_of or date.today())

    async def work() -> int:
        started = time.monotonic()
        with tqdm(total=plan.persons, unit="persons", file=sys.stderr, disable=args.quiet) as bar:
            inserted = await load(
                primary_dsn(settings), plan, workers=args.workers, progress=bar.update
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


# --- serve -----------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.main import create_app
    from app.observability.logs import configure_logging
    from app.observability.serving import DrainingServer, tune_gc

    configure_logging(settings.log_level)
    app = create_app(settings)
    tune_gc()
    config = uvicorn.Config(
        app,
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        workers=1,
        proxy_headers=False,  # the service decides which forwarded addresses to believe
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        log_config=None,
        access_log=False,
        server_header=False,
    )
    DrainingServer(
        config, drain_s=settings.shutdown_drain_s, begin_drain=app.state.begin_drain
    ).run()
    return 0


# --- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssogw", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the gateway (uvicorn, one worker)")
    serve.add_argument("--host", help="listen address (default SSOGW_HTTP_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default SSOGW_HTTP_PORT, 8000)")
    serve.set_defaults(handler=cmd_serve)

    db = sub.add_parser("db", help="the local PostgreSQL primary and streaming replica")
    db.add_argument("action", choices=("up", "down", "status"))
    db.add_argument("--json", action="store_true", help="print one JSON document")
    db.set_defaults(handler=cmd_db)

    mig = sub.add_parser("migrate", help="apply pending database migrations")
    mig.add_argument("--json", action="store_true", help="print one JSON document")
    mig.set_defaults(handler=cmd_migrate)

    seed = sub.add_parser("seed", help="load deterministic synthetic insured persons")
    seed.add_argument("--persons", type=int, default=200_000, help="how many (default 200000)")
    seed.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    seed.add_argument("--as-of", type=date.fromisoformat, help="business date (default today)")
    seed.add_argument("--quiet", action="store_true", help="no progress bar")
    seed.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="loader processes (default: cores, at most 4)",
    )
    seed.add_argument("--json", action="store_true", help="print one JSON document")
    seed.set_defaults(handler=cmd_seed)

    for register in EXTENSIONS:
        register(sub)
    return parser


# Command groups defined in their own modules add themselves here (see app/cli_*.py).
EXTENSIONS: list[Callable[[Any], None]] = []


def import_command_groups() -> None:
    """Import the modules whose command groups register themselves in EXTENSIONS."""
    import importlib

    for name in (
        "app.cli.principals",
        "app.cli.audit",
        "app.cli.settlement",
        "app.cli.accountability",
    ):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ssogw` console script."""
    import_command_groups()
    args = build_parser().parse_args(argv)
    settings = Settings()
    try:
        code: int = args.handler(args, settings)
    except ServiceError as exc:
        say(f"error: {exc.code}: {exc.message}")
        if exc.details:
            say(json.dumps(exc.details, ensure_ascii=False, default=str))
        return 2
    except (RuntimeError, OSError, asyncpg.PostgresError) as exc:
        say(f"error: {exc}")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
