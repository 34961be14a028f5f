"""The lock that makes a spool directory one process's while it runs: ``instance.lock`` in it,
held with ``flock`` (closing the file lets go, and so does the process's end, kill -9
included), the holder's pid written in it for the message a second instance gets."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO

from app.audit.spool.names import FILE_MODE

LOCK_FILE = "instance.lock"


def locked(directory: Path) -> IO[str]:
    """``directory``'s lock file, opened and locked by this process. BlockingIOError when
    another process holds it; another OSError when the file system refuses (ENOLCK, say)."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, FILE_MODE)
    lock = os.fdopen(fd, "r+", encoding="utf-8")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        let_go(lock)
        raise
    return lock


def sign(lock: IO[str]) -> None:
    """Write this process's pid into the lock it holds."""
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()


def let_go(lock: IO[str]) -> None:
    """Close ``lock``, and so let go of it, even when the close fails: a pid a full disk did
    not take is flushed again by close(), which fails again and closes the file all the same."""
    with contextlib.suppress(OSError):
        lock.close()


def holder(directory: Path) -> str:
    """The pid the holder of ``directory``'s lock wrote, or "unknown" (a damaged lock file)."""
    with contextlib.suppress(OSError, ValueError):
        return (directory / LOCK_FILE).read_text("utf-8").strip() or "unknown"
    return "unknown"


def still_held(lock: IO[str], directory: Path) -> bool:
    """Whether ``lock`` is still ``directory``'s lock file: the directory, and the file with it,
    may have been removed (and made again) since it was taken."""
    try:
        here = os.stat(directory / LOCK_FILE)
    except FileNotFoundError:
        return False
    try:
        held = os.fstat(lock.fileno())
    except ValueError:  # closed: let go by a write locking the directory again meanwhile
        return False
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)
