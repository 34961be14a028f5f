"""`ssogw db up|down|status` and `ssogw migrate`: the local PostgreSQL pair and the schema."""

from __future__ import annotations

import argparse
from contextlib import suppress
from pathlib import Path
from typing import Any

import asyncpg

from app.cli.output import emit, say
from app.cli.session import run_async
from app.db.config import owner_dsn, service_role
from app.db.local_pair import LocalPair, read_record
from app.db.migrator import MigrationLimits, migrate
from app.db.pools import resolve_dsns
from app.settings import Settings


def local_pair(settings: Settings) -> LocalPair:
    """The local primary and streaming replica under ``data_dir``."""
    return LocalPair(Path(settings.data_dir), pg_bin=settings.pg_bin, say=say)


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    """Start, stop or show the local pair."""
    pair = local_pair(settings)
    if args.action == "up":
        record = pair.up()
        pair.wait_streaming()
        emit(
            args,
            {
                "primary": record.primary_dsn,
                "replica": record.replica_dsn,
                "owner": record.owner_dsn,
            },
            f"primary  {record.primary_dsn}\nreplica  {record.replica_dsn} (streaming)\n"
            f"owner    {record.owner_dsn} (migrations)",
        )
        return 0
    if args.action == "down":
        pair.down()
        return 0
    return run_async(lambda: db_status(args, settings))


async def db_status(args: argparse.Namespace, settings: Settings) -> int:
    """Both servers, their LSNs and the replay lag; exit 1 when the primary is down."""
    record = read_record(Path(settings.data_dir))
    primary, replicas = resolve_dsns(
        primary_dsn=settings.primary_dsn,
        replica_dsns=settings.replica_dsns,
        data_dir=Path(settings.data_dir),
    )
    # The standbys' replication state is shown to a monitoring role: the local pair's owner
    # is one. Without an owner DSN, the service role sees whether the primary is up.
    with suppress(RuntimeError):
        primary = owner_dsn(settings)
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


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the pending migrations on the primary as the schema's owner, then grant the
    service role its privileges."""
    role = service_role(settings)

    async def work() -> int:
        conn = await asyncpg.connect(owner_dsn(settings), timeout=settings.connect_timeout_s)
        try:
            limits = MigrationLimits(
                settings.migrate_lock_timeout_ms, settings.migrate_statement_timeout_ms
            )
            run = await migrate(conn, service_role=role, limits=limits)
        finally:
            await conn.close()
        for name in run.uncovered:
            say(f"warning: {name} is not in app/db/grants.py: {role} cannot use it")
        emit(
            args,
            {
                "applied": run.applied,
                "serviceRole": role,
                "grantsChanged": run.grants_changed,
                "uncovered": run.uncovered,
            },
            "\n".join(f"applied {name}" for name in run.applied) or "database is up to date",
        )
        return 0

    return run_async(work)


def register(subparsers: Any) -> None:
    """Add `db` and `migrate` to the `ssogw` parser."""
    db = subparsers.add_parser("db", help="the local PostgreSQL primary and streaming replica")
    db.add_argument("action", choices=("up", "down", "status"))
    db.add_argument("--json", action="store_true", help="print one JSON document")
    db.set_defaults(handler=cmd_db)

    mig = subparsers.add_parser(
        "migrate",
        help="apply pending database migrations and the service role's grants (as the owner)",
    )
    mig.add_argument("--json", action="store_true", help="print one JSON document")
    mig.set_defaults(handler=cmd_migrate)
