"""`ssogw db up|down|status|backup|backups|prune|restore` and `ssogw migrate`: the local
PostgreSQL pair, its backups and point-in-time restore, and the schema."""

from __future__ import annotations

import argparse
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from app.cli.output import emit, say
from app.cli.session import run_async
from app.db.backup.base_backup import take_backup
from app.db.backup.catalogue import list_backups
from app.db.backup.restore import parse_target, restore, stop_command
from app.db.backup.retention import Pruned, prune
from app.db.backup.wal_archive import summarise
from app.db.config import owner_dsn, service_role
from app.db.local_pair import LocalPair, read_record
from app.db.migrator import MigrationLimits, migrate
from app.db.pools import resolve_dsns
from app.errors import InvalidInput
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
        if run.newer:
            say(
                f"warning: a newer release migrated this database ({', '.join(run.newer)}):"
                " its grants were left as it set them; only the audit partitions were kept ahead"
            )
        if run.newer:
            summary = "nothing applied: a newer release migrated this database"
        else:
            summary = "\n".join(f"applied {name}" for name in run.applied)
        emit(
            args,
            {
                "applied": run.applied,
                "serviceRole": role,
                "grantsChanged": run.grants_changed,
                "uncovered": run.uncovered,
                "newer": run.newer,
            },
            summary or "database is up to date",
        )
        return 0

    return run_async(work)


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """A base backup of the local primary; then the retention policy, when one is given."""
    pair = local_pair(settings)
    entry = take_backup(pair)
    document: dict[str, Any] = {"backup": entry.as_json()}
    text = f"backup {entry.id}: {entry.size_bytes / 2**20:.1f} MiB, verified={entry.verified}"
    if args.keep is not None or args.keep_days is not None:
        pruned = _prune(pair, args)
        document["pruned"] = pruned.as_json()
        text += f"\n{_pruned_text(pruned)}"
    emit(args, document, text)
    return 0


def cmd_backups(args: argparse.Namespace, settings: Settings) -> int:
    """The backup catalogue and the WAL archive."""
    pair = local_pair(settings)
    backups = list_backups(pair.root)
    archive = summarise(pair.archive_dir)
    lines = [
        f"{b.id}  finished {b.finished_at.isoformat()}  {b.size_bytes / 2**20:.1f} MiB"
        f"  from WAL {b.start_wal}  verified={b.verified}"
        for b in backups
    ] or ["no base backups (`ssogw db backup` takes one)"]
    lines.append(
        f"WAL archive {pair.archive_dir}: {archive.segments} segments"
        f" ({archive.size_bytes / 2**20:.0f} MiB), {archive.oldest} … {archive.newest}"
    )
    emit(
        args,
        {"backups": [b.as_json() for b in backups], "walArchive": archive.as_json()},
        "\n".join(lines),
    )
    return 0


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the retention policy to the backups and the WAL archive."""
    if args.keep is None and args.keep_days is None:
        raise InvalidInput("Say what to keep: --keep N and/or --keep-days D.", field="keep")
    pruned = _prune(local_pair(settings), args)
    emit(args, pruned.as_json(), _pruned_text(pruned))
    return 0


def _prune(pair: LocalPair, args: argparse.Namespace) -> Pruned:
    return prune(pair.root, pair.archive_dir, keep=args.keep, keep_days=args.keep_days, now=_now())


def _now() -> datetime:
    # Retention is judged on the machine's clock, as the backups' times were recorded.
    return datetime.now(UTC)


def _pruned_text(pruned: Pruned) -> str:
    return (
        f"removed {len(pruned.removed_backups)} backups"
        f" ({', '.join(pruned.removed_backups) or 'none'}) and"
        f" {len(pruned.removed_wal)} archived WAL files; kept {', '.join(pruned.kept_backups)}"
    )


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """Point-in-time restore into a new data directory, started on a free port."""
    try:
        target = parse_target(args.to)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="to") from None
    pair = local_pair(settings)
    done = restore(pair, target=target, into=args.into)
    reached = done.last_transaction_at.isoformat() if done.last_transaction_at else "none"
    emit(
        args,
        {**done.as_json(), "stop": stop_command(pair, done.data_dir)},
        f"restored backup {done.backup_id} to {args.to} into {done.data_dir}\n"
        f"running on 127.0.0.1:{done.port} (timeline {done.timeline}, lsn {done.lsn}):"
        f" {done.dsn('ssogw_service')}\n"
        f"last transaction replayed: {reached}\n"
        f"{done.recovery_stop or ''}\n"
        f"stop it with: {stop_command(pair, done.data_dir)}",
    )
    return 0


def register(subparsers: Any) -> None:
    """Add `db` and `migrate` to the `ssogw` parser."""
    db = subparsers.add_parser(
        "db", help="the local PostgreSQL primary and streaming replica, backups and restore"
    )
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("up", "initialise what is missing and start the pair (turns on WAL archiving)"),
        ("down", "stop the standby, then the primary"),
        ("status", "both servers, their LSNs and the replay lag; exit 1 if the primary is down"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--json", action="store_true", help="print one JSON document")
        action.set_defaults(handler=cmd_db)

    def retention(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--keep", type=int, metavar="N", help="keep the N newest backups")
        parser.add_argument(
            "--keep-days", type=float, metavar="D",
            help="keep what a restore to any moment of the last D days needs",
        )  # fmt: skip
        parser.add_argument("--json", action="store_true", help="print one JSON document")

    backup = actions.add_parser("backup", help="a verified base backup of the local primary")
    retention(backup)
    backup.set_defaults(handler=cmd_backup)
    listing = actions.add_parser("backups", help="the base backups and the WAL archive")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(handler=cmd_backups)
    pruning = actions.add_parser("prune", help="remove backups (and WAL) the policy does not keep")
    retention(pruning)
    pruning.set_defaults(handler=cmd_prune)
    rest = actions.add_parser(
        "restore", help="point-in-time restore into a new data directory, on a free port"
    )
    rest.add_argument(
        "--to", required=True, metavar="TIME",
        help="ISO date-time, with an offset or in Asia/Bangkok time; or 'latest'",
    )  # fmt: skip
    rest.add_argument(
        "--into", type=Path, metavar="DIR",
        help="a new or empty directory (default: restores/NAME under the data directory)",
    )  # fmt: skip
    rest.add_argument("--json", action="store_true", help="print one JSON document")
    rest.set_defaults(handler=cmd_restore)

    mig = subparsers.add_parser(
        "migrate",
        help="apply pending database migrations and the service role's grants (as the owner)",
    )
    mig.add_argument("--json", action="store_true", help="print one JSON document")
    mig.set_defaults(handler=cmd_migrate)
