"""Files and directories named on disk: a spooled record is committed only once its lines are
fsynced and so is every name on the way to them (the file's in its directory, each directory's
it made in its parent), or a power cut can lose a file whose records were answered."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) readable by this user only."""
    if not path.is_dir():  # each name on disk before a record is spooled in it
        named_dir(path.parent, mode=DIR_MODE)
        named_dir(path, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)  # whatever the umask, or an older version, made it


def claimed_dir(path: Path) -> None:
    """``private_dir``, and its name on disk whoever made it, and the names of the directories
    above it this user may have made (``mkdir -p``): an earlier start (or write) may have made
    them and failed to fsync a parent, and the one after finds them there. Up to a directory
    this user does not own, or a mount point: no name above is the spool's to make; nor in a
    directory this user may not read (an operator's ``/srv`` 0711): it cannot fsync it."""
    private_dir(path)
    sync_directory(path.parent)
    made = path.parent
    while made.parent != made:
        info, above = made.stat(), made.parent.stat()
        if info.st_uid != os.geteuid() or info.st_dev != above.st_dev:
            return
        try:
            sync_directory(made.parent)
        except PermissionError:
            return
        made = made.parent


def named_dir(path: Path, *, mode: int) -> None:
    """mkdir ``path`` if it is missing, and its missing parents (with the default mode, as
    ``mkdir -p`` does), each one's parent fsynced once it is made: its name is on disk."""
    if path.is_dir():
        return
    named_dir(path.parent, mode=0o777)
    try:
        path.mkdir(mode=mode)
    except FileExistsError:
        if not path.is_dir():
            raise
        # made meanwhile by another instance: fsynced here too, it may not have been yet
    sync_directory(path.parent)


def sync_directory(path: Path) -> None:
    """fsync the directory ``path``: the names it holds (a file just created) are on disk.

    A file system that cannot fsync a directory says so with EINVAL (or EBADF): there is then
    nothing more this process can make durable, and that is taken as done, as PostgreSQL's
    fsync of a directory takes it (``fsync_fname``)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
        if path not in _UNSYNCABLE:  # once a directory: the operator should know, not daily
            _UNSYNCABLE.add(path)
            log.warning(
                "the file system of %s cannot fsync a directory (%s): a file created there "
                "may lose its name in a power cut", path, errno.errorcode[exc.errno],
            )  # fmt: skip
    finally:
        os.close(fd)


_UNSYNCABLE: set[Path] = set()  # directories whose fsync was refused, warned of once


def open_to_append(path: Path) -> tuple[int, bool]:
    """A descriptor appending to ``path``, and whether this open created the file (its name
    is then not on disk until its directory is fsynced)."""
    flags = os.O_WRONLY | os.O_APPEND
    while True:
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE), True
        except FileExistsError:
            pass
        try:
            return os.open(path, flags), False
        except FileNotFoundError:
            if os.path.lexists(path):  # a dangling symlink: EEXIST and ENOENT for ever
                raise
            # renamed aside in between (take()): create it
