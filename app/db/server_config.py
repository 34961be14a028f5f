"""What the local pair's servers are configured with: the ordinary settings, and WAL archiving.

Every WAL segment the primary completes is copied into ``backups/wal/`` under the pair's root
(beside the data directories, never inside one, so a base backup does not copy the archive).
The copy is PostgreSQL's ``archive_command``, run by the server as its own OS user::

    test ! -f ARCHIVE/SEG && cp WAL/SEG ARCHIVE/SEG.part && sync ARCHIVE/SEG.part
        && mv ARCHIVE/SEG.part ARCHIVE/SEG  ||  cmp -s WAL/SEG ARCHIVE/SEG

- a segment is never overwritten, and appears under its name only whole: it is written to
  ``.part`` and renamed, so a crash mid-copy leaves no short segment a restore would trust;
- if the segment is already there (the server crashed after the copy but before it noted it),
  the command succeeds only when the copy is byte-for-byte the same, as PostgreSQL's manual asks;
  anything else fails, and the server keeps the segment and tries again;
- ``sync`` puts the copy on disk before the rename (left out on the test session's fsync-off
  pairs).

Why ``archive_command`` rather than ``pg_receivewal``: the server itself keeps each segment until
it is archived and retries failures, with no extra process to supervise, restart and watch for
a local pair; ``pg_receivewal``'s one advantage, streaming the still-open segment, matters for a
fleet's RPO (CloudNativePG's own archiver covers that in Kubernetes), not for a laptop.

No ``archive_timeout``: a mostly idle development pair would write a 16 MB segment every period.
`ssogw db backup` and `ssogw db restore` switch to a new segment themselves, so the archive
holds everything up to the moment they ran.
"""

from __future__ import annotations

import shlex
from pathlib import Path

BASE_BLOCK = "# ssogw local pair"
ARCHIVE_BLOCK = "# ssogw WAL archive"


def base_settings(*, durable: bool) -> dict[str, str]:
    """The settings of both servers of a pair (``durable=False``: the tests' fsync-off pair)."""
    return {
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": "''",
        "max_connections": "200",
        "shared_buffers": "256MB" if durable else "128MB",
        "wal_level": "replica",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
        "hot_standby": "on",
        "hot_standby_feedback": "on",
        "wal_receiver_status_interval": "1s",
        "max_standby_streaming_delay": "5s",
        "fsync": "on" if durable else "off",
        "synchronous_commit": "on",
        "full_page_writes": "on" if durable else "off",
        "checkpoint_timeout": "15min",
        "max_wal_size": "4GB",
        "timezone": "'UTC'",
        "log_min_messages": "warning",
        "log_line_prefix": "'%m [%p] '",
    }


def archive_dir(root: Path) -> Path:
    """The WAL archive of the pair under ``root``."""
    return root / "backups" / "wal"


def archive_command(archive: Path, *, durable: bool) -> str:
    """The shell command that copies one segment (``%p`` → ``archive/%f``) safely."""
    final = shlex.quote(str(archive)) + "/%f"
    part = final + ".part"
    sync = f" && sync {part}" if durable else ""
    return f"test ! -f {final} && cp %p {part}{sync} && mv {part} {final} || cmp -s %p {final}"


def archive_settings(archive: Path, *, durable: bool) -> dict[str, str]:
    """The settings that turn WAL archiving on (a change of ``archive_mode`` needs a restart)."""
    command = archive_command(archive, durable=durable).replace("'", "''")
    return {"archive_mode": "on", "archive_command": f"'{command}'"}


def restore_command(archive: Path) -> str:
    """The ``restore_command`` that reads segments back from ``archive``."""
    return f"cp {shlex.quote(str(archive))}/%f %p"


def has_block(data_dir: Path, marker: str) -> bool:
    """Whether ``postgresql.conf`` of ``data_dir`` already has the block ``marker`` starts."""
    conf = data_dir / "postgresql.conf"
    return conf.exists() and marker in conf.read_text()


def append_block(conf: Path, marker: str, settings: dict[str, str]) -> None:
    """Append ``settings`` to a configuration file under the heading ``marker`` (later lines
    of a PostgreSQL configuration file win over earlier ones)."""
    with conf.open("a") as out:
        out.write(f"\n{marker}\n")
        out.writelines(f"{key} = {value}\n" for key, value in settings.items())
