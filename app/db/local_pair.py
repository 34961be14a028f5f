"""A local PostgreSQL primary and streaming hot standby, for `make run`, `ssogw db` and tests.

Layout under ``root`` (``.data/`` by default)::

    pair.json        where the servers are: ports, data directories, binaries, OS user
    primary/         the primary's data directory
    replica/         the standby's (pg_basebackup -R, physical slot ``ssogw_replica``)
    logs/            server logs
    backups/wal/     the primary's WAL archive (``server_config.py``)
    backups/base/    base backups and their catalogue (``app/db/backup/``)
    restores/        point-in-time restores, each a data directory of its own

A second ``up()`` reuses what exists. As root, the servers run as an unprivileged OS user.

Three database roles: the superuser (``postgres``) of the servers themselves, used only here
and by tests that pause replay or create databases; the owner of the schema (``ssogw_owner``,
for `ssogw migrate`); the service role (``ssogw_service``) the gateway connects as
(``local_roles.sql``, ``grants.py``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path

from app.db.pg_binaries import OsUser, find_pg_bin, run_as, server_user
from app.db.server_config import (
    ARCHIVE_BLOCK,
    BASE_BLOCK,
    append_block,
    archive_dir,
    archive_settings,
    base_settings,
    has_block,
)

RECORD_FILE = "pair.json"
DATABASE = "ssogw"
SUPERUSER = "postgres"
OWNER_ROLE = "ssogw_owner"
SERVICE_ROLE = "ssogw_service"
SLOT = "ssogw_replica"
ROLES_SQL = Path(__file__).with_name("local_roles.sql")


def _psql_bin(bin_dir: Path) -> str:
    return str(bin_dir / "psql") if (bin_dir / "psql").exists() else "psql"


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_CHOSEN_PORT = 10_000


def free_port(*, besides: Collection[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, for a server started soon;
    not one of ``besides`` (ports chosen for servers not yet started).

    Chosen at random outside the kernel's ephemeral range, not by binding port 0: a port from
    that range, once released, may at once become the source port of any outgoing connection
    on the machine (a second test worker's, a client's), and the server would then fail to
    bind it. Where the range cannot be read, or leaves too few ports outside, the kernel chooses.
    """
    spare = _outside_ephemeral_range()
    for _ in range(200 if len(spare) >= 1_000 else 0):
        port = spare[secrets.randbelow(len(spare))]
        if port not in besides and _bindable(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def _outside_ephemeral_range() -> list[int]:
    try:
        low, high = (int(n) for n in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return []
    return [*range(LOWEST_CHOSEN_PORT, low), *range(high + 1, 65_536)]


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class PairRecord:
    """What ``up()`` recorded in ``pair.json``."""

    bin_dir: str
    bin_source: str
    os_user: str | None
    primary_port: int
    replica_port: int
    database: str = DATABASE
    durable: bool = True  # False: the tests' fsync-off pairs, whose backups need no sync either

    def dsn(self, port: int, *, role: str = SERVICE_ROLE, database: str | None = None) -> str:
        """A DSN of one of the servers, as ``role`` (the service role unless said)."""
        return f"postgresql://{role}@127.0.0.1:{port}/{database or self.database}"

    @property
    def primary_dsn(self) -> str:
        """The gateway's DSN of the primary (the service role)."""
        return self.dsn(self.primary_port)

    @property
    def replica_dsn(self) -> str:
        """The gateway's DSN of the standby (the service role)."""
        return self.dsn(self.replica_port)

    @property
    def owner_dsn(self) -> str:
        """The primary as the schema's owner, for `ssogw migrate`."""
        return self.dsn(self.primary_port, role=OWNER_ROLE)


def read_record(root: Path) -> PairRecord | None:
    """The recorded pair under ``root``, or None when there is none."""
    path = root / RECORD_FILE
    if not path.exists():
        return None
    return PairRecord(**json.loads(path.read_text()))


class LocalPair:
    """Initialises, starts, inspects and stops the local primary and standby."""

    def __init__(
        self,
        root: Path,
        *,
        pg_bin: Path | None = None,
        durable: bool = True,
        archive: bool = True,
        standby: bool = True,
        wal_segment_mb: int = 16,
        say: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        self.root = root.resolve()
        self._pg_bin = pg_bin
        self._durable = durable
        self._archive = archive
        self._standby = standby
        self._wal_segment_mb = wal_segment_mb  # PostgreSQL's default; a test's pair may go lower
        self._say = say
        self._user: OsUser | None = None

    # --- paths -------------------------------------------------------------------------------
    @property
    def primary_dir(self) -> Path:
        return self.root / "primary"

    @property
    def replica_dir(self) -> Path:
        return self.root / "replica"

    @property
    def archive_dir(self) -> Path:
        return archive_dir(self.root)

    def _log(self, role: str) -> Path:
        return self.root / "logs" / f"{role}.log"

    def _dir(self, role: str) -> Path:
        return self.primary_dir if role == "primary" else self.replica_dir

    # --- running commands as the server user ---------------------------------------------------
    @property
    def user(self) -> OsUser:
        if self._user is None:
            self._user = server_user()
        return self._user

    def _run(
        self, args: list[str], *, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_as(self.user, args, home=self.root, check=check, stdin=stdin)

    # --- lifecycle -----------------------------------------------------------------------------
    def up(self) -> PairRecord:
        """Initialise what is missing, start what is stopped, and record where both are."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        record = read_record(self.root)
        if self._archive:
            for path in (self.archive_dir.parent, self.archive_dir):
                path.mkdir(mode=0o700, exist_ok=True)
                self.user.chown(path)
        if record is None or not (self.primary_dir / "PG_VERSION").exists():
            record = self._initialise()
        if self._archive and not has_block(self.primary_dir, ARCHIVE_BLOCK):
            self._turn_on_archiving(record)
        bin_dir = Path(record.bin_dir)
        self._start(bin_dir, "primary", record.primary_port)
        # Read here, not by the server's OS user, who may not reach the checkout. Committed
        # locally: the standby starts after this, and a synchronous one (local_failover) would
        # hold these commits until it did.
        roles = "SET synchronous_commit = local;\n" + ROLES_SQL.read_text()
        self._psql(record, record.database, *self._role_variables(record), sql=roles)
        if not self._standby:
            return record
        if not (self.replica_dir / "standby.signal").exists():
            self._base_backup(bin_dir, record.primary_port)
        self._start(bin_dir, "replica", record.replica_port)
        return record

    def _initialise(self) -> PairRecord:
        bin_dir, source = find_pg_bin(self._pg_bin)
        self._say(f"PostgreSQL binaries: {bin_dir} (from {source})")
        for path in (self.primary_dir, self.replica_dir):
            if path.exists():
                shutil.rmtree(path)
        (self.root / "logs").mkdir(exist_ok=True)
        self.user.chown(self.root / "logs")
        self.primary_dir.mkdir(mode=0o700)
        self.user.chown(self.primary_dir)
        self._say(f"initialising the primary in {self.primary_dir}")
        self._run(
            [str(bin_dir / "initdb"), "-D", str(self.primary_dir), "-U", SUPERUSER,
             "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions",
             f"--wal-segsize={self._wal_segment_mb}"]
        )  # fmt: skip
        self._write_config(self.primary_dir)
        with (self.primary_dir / "pg_hba.conf").open("a") as hba:
            hba.write("\n# ssogw: loopback only, trust (local development pair)\n")
            hba.write("host all all 127.0.0.1/32 trust\n")
            hba.write("host replication all 127.0.0.1/32 trust\n")
        primary_port = free_port()
        record = PairRecord(
            bin_dir=str(bin_dir),
            bin_source=source,
            os_user=self.user.name,
            primary_port=primary_port,
            replica_port=free_port(besides=(primary_port,)),
            durable=self._durable,
        )
        (self.root / RECORD_FILE).write_text(json.dumps(asdict(record), indent=2) + "\n")
        self._start(bin_dir, "primary", record.primary_port)
        self._psql(record, "postgres", "-c", f"CREATE DATABASE {DATABASE}")
        return record

    def _write_config(self, data_dir: Path) -> None:
        append_block(data_dir / "postgresql.conf", BASE_BLOCK, base_settings(durable=self._durable))
        if self._archive:
            self._write_archive_config(data_dir)

    def _write_archive_config(self, data_dir: Path) -> None:
        settings = archive_settings(self.archive_dir, durable=self._durable)
        append_block(data_dir / "postgresql.conf", ARCHIVE_BLOCK, settings)

    def _turn_on_archiving(self, record: PairRecord) -> None:
        """On a pair made before WAL archiving existed: turn it on, restarting a running
        primary (``archive_mode`` is read at start only)."""
        self._say(f"turning on WAL archiving into {self.archive_dir}")
        self._write_archive_config(self.primary_dir)
        if self.is_running("primary"):
            self.stop("primary")
        self._start(Path(record.bin_dir), "primary", record.primary_port)

    def _base_backup(self, bin_dir: Path, primary_port: int) -> None:
        self._say(f"creating the streaming standby in {self.replica_dir}")
        if self.replica_dir.exists():
            shutil.rmtree(self.replica_dir)
        self.replica_dir.mkdir(mode=0o700)
        self.user.chown(self.replica_dir)
        slots = f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{SLOT}'"
        slot_exists = self.query(slots).strip() == "1"
        args = [
            str(bin_dir / "pg_basebackup"), "-D", str(self.replica_dir), "-h", "127.0.0.1",
            "-p", str(primary_port), "-U", SUPERUSER, "-R", "-X", "stream", "-S", SLOT,
            "--checkpoint=fast",
        ]  # fmt: skip
        if not slot_exists:
            args.append("-C")
        self._run(args)

    def query(self, sql: str, *, port: int | None = None, check: bool = True) -> str:
        """Run ``sql`` as the servers' superuser on the primary (or the server on ``port``);
        psql's unaligned output."""
        record = self._require_record()
        return self._run(
            [_psql_bin(Path(record.bin_dir)), "-h", "127.0.0.1", "-p",
             str(port or record.primary_port), "-U", SUPERUSER, "-d", "postgres", "-v",
             "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            check=check,
        ).stdout  # fmt: skip

    def _psql(self, record: PairRecord, database: str, *args: str, sql: str | None = None) -> str:
        """Run psql on the primary as the superuser (``sql`` on its stdin); its output."""
        out = self._run(
            [_psql_bin(Path(record.bin_dir)), "-h", "127.0.0.1", "-p", str(record.primary_port),
             "-U", SUPERUSER, "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-At", *args],
            stdin=sql,
        )  # fmt: skip
        return out.stdout

    @staticmethod
    def _role_variables(record: PairRecord) -> list[str]:
        names = {"owner": OWNER_ROLE, "service": SERVICE_ROLE, "database": record.database}
        return [arg for key, value in names.items() for arg in ("-v", f"{key}={value}")]

    def create_database(self, name: str) -> str:
        """A new, empty database owned by the owner role; its service-role DSN."""
        record = self._require_record()
        self._psql(record, "postgres", "-c", f'CREATE DATABASE "{name}" OWNER {OWNER_ROLE}')
        return record.dsn(record.primary_port, database=name)

    def drop_database(self, name: str) -> None:
        """Drop a database made by ``create_database`` (its sessions are ended)."""
        record = self._require_record()
        self._psql(record, "postgres", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def is_running(self, role: str) -> bool:
        """Whether the server of ``role`` ('primary' or 'replica') is running."""
        record = read_record(self.root)
        if record is None or not (self._dir(role) / "PG_VERSION").exists():
            return False
        result = self._run(
            [str(Path(record.bin_dir) / "pg_ctl"), "status", "-D", str(self._dir(role))],
            check=False,
        )
        return result.returncode == 0

    def _start(self, bin_dir: Path, role: str, port: int) -> None:
        data_dir = self._dir(role)
        status = self._run([str(bin_dir / "pg_ctl"), "status", "-D", str(data_dir)], check=False)
        if status.returncode == 0:
            return
        self._say(f"starting the {role} on 127.0.0.1:{port}")
        log = self._log(role)
        log.parent.mkdir(exist_ok=True)
        self.user.chown(log.parent)
        self._run(
            [
                str(bin_dir / "pg_ctl"),
                "start",
                "-D",
                str(data_dir),
                "-l",
                str(log),
                "-o",
                f"-p {port}",
                "-w",
                "-t",
                "60",
            ]
        )

    def start(self, role: str) -> None:
        """Start one server of an initialised pair."""
        record = self._require_record()
        port = record.primary_port if role == "primary" else record.replica_port
        self._start(Path(record.bin_dir), role, port)

    def stop(self, role: str, *, mode: str = "fast") -> None:
        """Stop one server ('primary' or 'replica'); ``mode`` is pg_ctl's shutdown mode."""
        record = read_record(self.root)
        if record is None or not (self._dir(role) / "PG_VERSION").exists():
            return
        pg_ctl = str(Path(record.bin_dir) / "pg_ctl")
        if self._run([pg_ctl, "status", "-D", str(self._dir(role))], check=False).returncode == 0:
            self._say(f"stopping the {role}")
            self._run([pg_ctl, "stop", "-D", str(self._dir(role)), "-m", mode, "-w", "-t", "60"])

    def down(self) -> None:
        """Stop the standby, then the primary."""
        self.stop("replica")
        self.stop("primary")

    def _require_record(self) -> PairRecord:
        record = read_record(self.root)
        if record is None:
            raise RuntimeError(f"no local pair under {self.root}; run `ssogw db up` first")
        return record

    def wait_streaming(self, timeout_s: float = 30.0) -> None:
        """Block until the primary reports the standby as streaming."""
        query = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.query(query, check=False).strip() not in ("", "0"):
                return
            time.sleep(0.2)
        raise RuntimeError("the standby did not start streaming in time")
