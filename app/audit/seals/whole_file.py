"""A file created whole and exclusively: it appears with all its bytes on disk, or not at all,
and an existing file is never replaced (what an append-only store needs of each write)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)


def create_whole(path: Path, content: bytes, *, mode: int) -> bool:
    """Create ``path`` with ``content`` (fsynced, file and directory); False if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a name of its own first (O_EXCL), then linked to its real name: link()
    # refuses an existing name as O_EXCL does, and readers never see a half-written file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        try:
            os.unlink(temporary)
        except OSError:  # storage that keeps whatever it is given; the dot name marks it aside
            log.warning("could not remove %s", temporary)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return True
