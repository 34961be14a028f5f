"""Point-in-time restore of the local pair into a new data directory, started on a free port.

The running pair is never touched: the restore is a copy of the newest base backup finished
before the target, with ``recovery.signal`` and the target in its ``postgresql.auto.conf``,
replaying the archive up to the target and then promoting (``recovery_target_action =
promote``). It does not archive (``archive_mode = off``), so it never writes into the pair's
archive. Replacing the pair's primary with it is a separate, deliberate step
(docs/operations.md, "Backups and restore").
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.db.backup.catalogue import BackupEntry, data_of, list_backups
from app.db.backup.wal_archive import switch_and_wait
from app.db.local_pair import SUPERUSER, LocalPair, free_port, read_record
from app.db.pg_binaries import run_as
from app.db.server_config import append_block, restore_command
from app.domain.calendar import BANGKOK

RESTORE_BLOCK = "# ssogw point-in-time restore"


def parse_target(text: str) -> datetime | None:
    """``--to``: an ISO date-time (with an offset, or without: Asia/Bangkok time), or
    ``latest`` (None: replay all of the archive)."""
    if text.strip().lower() == "latest":
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date-time (or 'latest')") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=BANGKOK)
    return moment


@dataclass(frozen=True, slots=True)
class Restored:
    """A restored server, running: where, from which backup, and how far replay got."""

    data_dir: Path
    port: int
    backup_id: str
    target: datetime | None
    last_transaction_at: datetime | None  # the last commit replayed
    timeline: int
    lsn: str
    recovery_stop: str | None  # the server's own words on where it stopped
    log: Path

    def dsn(self, role: str = SUPERUSER, database: str = "ssogw") -> str:
        return f"postgresql://{role}@127.0.0.1:{self.port}/{database}"

    def as_json(self) -> dict[str, object]:
        return {
            "dataDir": str(self.data_dir),
            "port": self.port,
            "dsn": self.dsn("ssogw_service"),
            "backup": self.backup_id,
            "target": self.target.isoformat() if self.target else "latest",
            "lastTransactionAt": self.last_transaction_at.isoformat()
            if self.last_transaction_at
            else None,
            "timeline": self.timeline,
            "lsn": self.lsn,
            "recoveryStop": self.recovery_stop,
            "log": str(self.log),
        }


def choose_backup(backups: list[BackupEntry], target: datetime | None) -> BackupEntry:
    """The newest backup that finished before ``target`` (any backup can reach 'latest')."""
    usable = [b for b in backups if target is None or b.finished_at < target]
    if not usable:
        oldest = f"; the oldest finished at {backups[0].finished_at.isoformat()}" if backups else ""
        raise RuntimeError(
            f"no base backup finished before {target.isoformat() if target else 'now'}{oldest}"
            " (`ssogw db backups` lists them)"
        )
    return usable[-1]


def restore(
    pair: LocalPair, *, target: datetime | None, into: Path | None = None, timeout_s: float = 120
) -> Restored:
    """Restore to ``target`` into ``into`` (default ``restores/NAME`` under the pair's root),
    start it on a free port and wait until it has promoted."""
    record = read_record(pair.root)
    if record is None:
        raise RuntimeError(f"no local pair under {pair.root}; run `ssogw db up` first")
    if pair.is_running("primary"):
        switch_and_wait(pair)  # the archive then holds everything committed until now
    backup = choose_backup(list_backups(pair.root), target)
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{backup.id}"
    data_dir = _new_directory(pair, into or pair.root / "restores" / name)
    run_as(pair.user, ["cp", "-a", f"{data_of(pair.root, backup.id)}/.", str(data_dir)],
           home=pair.root)  # fmt: skip
    settings = {
        "restore_command": f"'{restore_command(pair.archive_dir)}'",
        "recovery_target_timeline": "'latest'",
        "archive_mode": "off",
        "log_min_messages": "log",  # the server says where recovery stopped, at level LOG
    }
    if target is not None:
        settings["recovery_target_time"] = f"'{target.astimezone(UTC).isoformat(sep=' ')}'"
        settings["recovery_target_action"] = "'promote'"
    append_block(data_dir / "postgresql.auto.conf", RESTORE_BLOCK, settings)
    signal = data_dir / "recovery.signal"
    signal.touch()
    pair.user.chown(signal)
    port = free_port()
    log = pair.root / "logs" / f"restore-{data_dir.name}.log"
    run_as(
        pair.user,
        [str(Path(record.bin_dir) / "pg_ctl"), "start", "-D", str(data_dir), "-l", str(log),
         "-o", f"-p {port}", "-w", "-t", str(int(timeout_s))],
        home=pair.root, check=False,
    )  # fmt: skip
    _wait_promoted(pair, port, data_dir, log, timeout_s=timeout_s)
    row = pair.query(
        "SELECT to_json(pg_last_xact_replay_timestamp())#>>'{}',"
        " ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int,"
        " pg_current_wal_lsn()",
        port=port,
    ).strip()
    last, timeline, lsn = row.split("|")
    return Restored(
        data_dir=data_dir,
        port=port,
        backup_id=backup.id,
        target=target,
        last_transaction_at=datetime.fromisoformat(last) if last else None,
        timeline=int(timeline),
        lsn=lsn,
        recovery_stop=_stop_line(log),
        log=log,
    )


def _new_directory(pair: LocalPair, path: Path) -> Path:
    """An empty directory for the restore, owned by the servers' OS user; never one in use."""
    path = path.resolve()
    if path in (pair.primary_dir, pair.replica_dir) or pair.root == path:
        raise RuntimeError(f"{path} is the pair's own directory: restore into a new one")
    if path.exists() and any(path.iterdir()):
        raise RuntimeError(f"{path} is not empty: restore into a new or empty directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    pair.user.chown(path)
    return path


def _wait_promoted(
    pair: LocalPair, port: int, data_dir: Path, log: Path, *, timeout_s: float
) -> None:
    """Until the server has left recovery; RuntimeError with its log when it stopped instead
    (a target beyond the archive: "recovery ended before configured recovery target")."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = pair.query("SELECT pg_is_in_recovery()", port=port, check=False).strip()
        if answer == "f":
            return
        if answer != "t" and not (data_dir / "postmaster.pid").exists():
            raise RuntimeError(f"the restored server stopped during recovery:\n{_tail(log)}")
        time.sleep(0.1)
    raise RuntimeError(f"the restored server did not finish recovery in time:\n{_tail(log)}")


def _tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def _stop_line(log: Path) -> str | None:
    text = log.read_text(errors="replace") if log.exists() else ""
    found = re.findall(r"(recovery stopping .*|last completed transaction was at .*)", text)
    return found[0] if found else None


def stop_restored(pair: LocalPair, data_dir: Path) -> None:
    """Stop a server ``restore`` started (fast shutdown); nothing when it is not running."""
    record = read_record(pair.root)
    if record is None or not (data_dir / "postmaster.pid").exists():
        return
    pg_ctl = str(Path(record.bin_dir) / "pg_ctl")
    run_as(pair.user, [pg_ctl, "stop", "-D", str(data_dir), "-m", "fast", "-w"], home=pair.root)


def stop_command(pair: LocalPair, data_dir: Path) -> str:
    """The shell command that stops a restored server, for the operator."""
    record = read_record(pair.root)
    pg_ctl = Path(record.bin_dir) / "pg_ctl" if record else Path("pg_ctl")
    as_user = f"runuser -u {pair.user.name} -- " if pair.user.name else ""
    return f"{as_user}{pg_ctl} stop -D {data_dir}"
