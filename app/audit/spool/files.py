"""A local, durable spool for audit records while the primary cannot take them.

The rule is that an audit record is committed before the answer leaves. When the primary is
unreachable, enquiries can still be answered from a replica; their records are then committed
to this spool instead — appended as JSON lines and fsynced (and the directory too when that
created the file, so that its name is on disk as well) — and moved onto the primary's hash
chain as soon as it answers again (in the order they were spooled, with their original times).
A record that the primary refuses for any other reason (a constraint, say) is never spooled:
that is a real failure and the call fails.

The spool belongs to one instance: its directory is ``<spool dir>/<instance id>``, and the
instance holds a lock on it while it runs, so two instances never append to or replay one
file, even when they are given the same spool directory. Each line carries the record's id:
the writer skips a record the chain already holds, so a replay interrupted after its commit
(and before the file was removed) is not doubled. Files are created 0600 and the directory
0700 (they hold national IDs and names). Give each instance persistent storage for it, or
records spooled by an instance that is lost before the primary returns are lost with it.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from uuid import UUID

from app.audit.chain import AuditRow
from app.audit.spool.lines import decode_line, encode_line, ends_torn
from app.audit.spool.lock import holder, let_go, locked, sign, still_held
from app.audit.spool.names import (
    FILE_MODE,
    claimed_dir,
    open_to_append,
    sync_directory,
)

SPOOL_FILE = "audit-spool.jsonl"
REPLAYING_FILE = "audit-spool.replaying.jsonl"
log = logging.getLogger(__name__)
REJECTED_FILE = "audit-spool.unreadable.jsonl"  # lines no version of the gateway could read
REFUSED_FILE = "audit-spool.refused.jsonl"  # records the primary refused for what they held
ADOPTED = "adopted-*.jsonl"
MIN_FREE_BYTES = 1 << 20  # below this the spool no longer counts as a writable audit path


class SpoolUnusable(RuntimeError):
    """The spool directory cannot be written, or another running instance holds it."""


def hand_over(base: Path, *, source: str, target: str) -> int:
    """Give the records instance ``source`` left spooled to instance ``target``, unless
    ``source`` runs (holds its lock): its files are moved into ``target``'s directory as
    adopted ones, which ``target`` takes in when it next claims its spool. The number of files
    moved. (A worker of ``ssogw serve --workers N`` that no longer runs when N is lowered.)"""
    old = base / source
    if not old.is_dir():
        return 0
    try:
        lock = locked(old)
    except OSError:
        return 0  # running (its spool is its own), or not to be locked here
    with lock:  # closing it lets go
        pending = [*sorted(old.glob(ADOPTED)), old / REPLAYING_FILE, old / SPOOL_FILE]
        pending = [path for path in pending if path.exists()]
        if not pending:
            return 0
        claimed_dir(base / target)  # named on disk whoever made it, before the old names go
        stamp = time.time_ns()
        for n, path in enumerate(pending):  # oldest first, as claim() takes them in
            os.replace(path, base / target / f"adopted-{stamp}-{source}-{n:04d}.jsonl")
        sync_directory(base / target)  # the new names on disk, then the old ones gone
        sync_directory(old)
    return len(pending)


class AuditSpool:
    """Append-only JSON-lines file of audit rows awaiting the primary, in ``base/instance_id``."""

    def __init__(self, base: Path, *, instance_id: str) -> None:
        self._dir = base / instance_id
        self._path = self._dir / SPOOL_FILE
        self._replaying = self._dir / REPLAYING_FILE
        self._lock: IO[str] | None = None
        # Seen empty since the last append: only this process writes its directory (the lock
        # says so), so the writer's check after every batch needs no file system call.
        self._seen_empty = False
        # The spool ends in a line a write cut short (a full disk, a kill): the next write
        # ends it first, or its own first line would join it and be set aside with it.
        self._torn = False
        # The names in the directory are on disk (it was fsynced since a file was created in
        # it): not yet when a directory fsync failed after a write created a file, which the
        # next write then finds and did not create, nor as far as this process knows at start
        # or after release() (another process may have written here meanwhile).
        self._named = False
        # The file being replayed had its unreadable lines set aside: a replay tried again
        # (every second while the primary is down) does not set them aside once more.
        self._aside = False
        # The directory's own name is on disk (claimed_dir): not while a write that made it
        # again (removed while the instance ran) failed before its parent was fsynced.
        self._placed = False
        # The size last read of each file the gauge counts: what it reports while a stat fails.
        self._sizes: dict[Path, int] = {}
        # A write, take or set-aside (in the spool's thread) and release() (on the loop, also
        # when a forced stop cancelled the writer with its write in flight) one at a time: the
        # directory is never let go with a write still to land in it.
        self._busy = threading.Lock()

    @property
    def directory(self) -> Path:
        """This instance's spool directory."""
        return self._dir

    def claim(self) -> None:
        """Make sure the directory is this instance's and writable; SpoolUnusable if not.

        Called when the instance starts: an instance that could not spool must not serve.
        """
        if self._lock is not None:
            return
        try:
            claimed_dir(self._dir)
            self._placed = True
            lock = locked(self._dir)
        except BlockingIOError as exc:
            raise SpoolUnusable(
                f"the audit spool directory {self._dir} is in use by another running instance "
                f"(pid {holder(self._dir)}); give each instance its own SSOGW_INSTANCE_ID"
            ) from exc
        except OSError as exc:  # not writable, or no locks there (ENOLCK): no holder to name
            raise self._unwritable(exc) from exc
        try:
            sign(lock)
            for existing in (self._path, self._replaying):
                if existing.exists():
                    os.chmod(existing, FILE_MODE)  # spooled by an older version, 0644
            self._held_from_now(lock)  # the last run's last write may have been cut short
            self._adopt_legacy()  # its writes find the directory held: no walk above it each
        except BaseException as exc:
            self._lock = None
            let_go(lock)  # whatever ended the claim: the lock with it
            if isinstance(exc, OSError):
                raise self._unwritable(exc) from exc
            raise

    def _held_from_now(self, lock: IO[str]) -> None:
        """Hold ``lock`` from now on, and forget what another process (a run before, or one
        that claimed the directory meanwhile) may have changed: whether the spool is empty,
        named on disk, set aside, or ends in a line a kill cut short."""
        self._lock = lock
        self._seen_empty = self._named = self._aside = False
        self._torn = True  # until read (an EIO there): an empty line more is harmless
        self._torn = ends_torn(self._path)

    def _lock_again(self) -> None:
        """Lock the directory made again after it was removed while this instance ran, unless
        it still holds its lock: another process may have claimed it meanwhile, and two must
        never spool into, nor replay, one directory (OSError: that one holds it now)."""
        if self._lock is None or still_held(self._lock, self._dir) or not self._dir.is_dir():
            return
        try:
            lock = locked(self._dir)
        except BlockingIOError as exc:
            raise OSError(
                errno.EWOULDBLOCK,
                f"the audit spool directory {self._dir} was removed while this instance ran,"
                f" and is held by another instance now (pid {holder(self._dir)})",
            ) from exc
        try:
            sign(lock)
        except BaseException:
            let_go(lock)
            raise
        let_go(self._lock)
        self._held_from_now(lock)  # another process may have spooled here meanwhile

    def _adopt_legacy(self) -> None:
        """Take over a spool an older version left in the shared directory itself.

        It is renamed into this instance's directory first (one instance wins the rename),
        then its lines join this instance's spool and it is removed.
        """
        base, stamp = self._dir.parent, time.time_ns()
        for n, legacy in enumerate((base / REPLAYING_FILE, base / SPOOL_FILE)):
            try:  # oldest first: the file being replayed, then the one appended to
                os.replace(legacy, self._dir / f"adopted-{stamp}-{n}.jsonl")
            except FileNotFoundError:
                continue
        for adopted in sorted(self._dir.glob(ADOPTED)):
            # Moved in as lines, their bytes as they are, and decoded by take(): split at line
            # feeds only (``splitlines()`` also splits at U+2028 and the like, which a record's
            # text may hold raw), and a line no version can read set aside, not a reason for
            # this instance not to start.
            with adopted.open("rb") as source:
                self._write(b"".join(line.rstrip(b"\n") + b"\n" for line in source if line.strip()))
            adopted.unlink()

    def _unwritable(self, exc: OSError) -> SpoolUnusable:
        return SpoolUnusable(
            f"the audit spool directory {self._dir} is not writable: {exc.strerror or exc};"
            " set SSOGW_AUDIT_SPOOL_DIR to a writable directory on persistent storage (a"
            " volume, under a read-only root file system)"
        )

    def writable(self) -> bool:
        """Whether records could be spooled now: the directory is this instance's, writable,
        on a file system mounted read-write, with room left (for /readyz; no write made)."""
        if self._lock is None:
            return False
        try:  # removed, and made again by another instance? (a failing disk: EIO)
            if not still_held(self._lock, self._dir):
                return False
            fs = os.statvfs(self._dir)
        except OSError:
            return False
        if fs.f_flag & os.ST_RDONLY or fs.f_bavail * fs.f_frsize < MIN_FREE_BYTES:
            return False
        return os.access(self._dir, os.W_OK)

    def release(self) -> None:
        """Let another process claim the directory (the instance is stopping)."""
        with self._busy:
            if self._lock is None:
                return
            self._lock.close()  # closing the file drops the lock
            self._lock = None
            # Another process may spool here until claimed again (and leave a file unnamed).
            self._seen_empty = self._named = self._aside = False

    def append(self, rows: list[tuple[UUID, AuditRow]]) -> None:
        """Write ``rows`` (record id, row) durably (fsync) before returning."""
        data = "".join(encode_line(record_id, row) + "\n" for record_id, row in rows).encode()
        with self._busy:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._lock is None:  # released (stopping), or never claimed: the directory not ours
            raise OSError(errno.ENOLCK, f"the audit spool directory {self._dir} is not held")
        held = still_held(self._lock, self._dir)
        if not (self._placed and held):  # removed while the instance ran, made again since?
            self._placed = False
            claimed_dir(self._dir)  # found made by a write that failed: named on disk too
            self._lock_again()
            self._placed = True
        self._seen_empty = False
        if self._torn:  # an empty line if the file was taken meanwhile: take() skips it
            data = b"\n" + data
        fd, created = open_to_append(self._path)
        self._named = self._named and not created
        try:
            with os.fdopen(fd, "ab") as spool:
                spool.write(data)
                spool.flush()
                os.fsync(spool.fileno())
            self._name_on_disk()  # committed only once the file's name is on disk too
        except BaseException:
            self._torn = True  # some of it may be written, its last line without its end
            raise
        self._torn = False

    def pending_bytes(self) -> int:
        """Bytes of spooled rows waiting for the primary (for a gauge). A file whose stat fails
        (a failing disk's EIO, which must not fail the scrape of every other metric) counts its
        size last read, 1 at least: waiting as far as the spool can tell, as ``pending()`` takes
        it, not drained (SsogwAuditSpoolNotDraining fires on more than 0)."""
        total = 0
        # The spool before the file being replayed: take() renames the one to the other, and
        # between two stats in the other order the bytes would be in neither (a 0 resets the
        # alert's 10 minutes); in this order they are counted twice for that moment.
        for path in (self._path, self._replaying):
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # taken or not yet written
                size = 0
            except OSError:
                total += max(self._sizes.get(path, 0), 1)
                continue
            self._sizes[path] = size
            total += size
        return total

    def pending(self) -> bool:
        """Whether any spooled rows wait for the primary: True when the file system cannot
        say (a failing disk), so that a replay tries, and its failure is handled there."""
        if self._seen_empty:
            return False
        try:
            waiting = any(
                p.exists() and p.stat().st_size > 0 for p in (self._replaying, self._path)
            )
        except OSError:
            return True
        self._seen_empty = not waiting and self._lock is not None
        return waiting

    def take(self) -> Iterator[tuple[UUID, AuditRow]]:
        """The spooled rows (record id, row), oldest first; ``taken()`` once they are committed.

        The spool is first renamed aside, so records spooled meanwhile start a new file. A
        replay interrupted half-way is retried whole; the writer skips the records the chain
        already holds (by record id). OSError when the directory, removed while this instance
        ran, is another instance's now: its records are that one's to replay.
        """
        with self._busy:
            return self._take()

    def _take(self) -> Iterator[tuple[UUID, AuditRow]]:
        self._lock_again()  # if the directory was removed (and made again) since it was locked
        if not self._replaying.exists() and self._path.exists():
            os.replace(self._path, self._replaying)
            self._aside = False
        if not self._replaying.exists():
            return iter(())
        # Read as bytes, each line decoded on its own: one that is not UTF-8 (no version
        # writes one) is set aside as it is, not replayed with U+FFFD for what it held.
        with self._replaying.open("rb") as spool:
            lines = spool.readlines()
        rows, unreadable = [], []
        for line in lines:
            try:
                text = line.decode()
                if text.strip():
                    rows.append(decode_line(text))
            except (ValueError, TypeError, KeyError, RecursionError):
                # Torn by a full disk, another version's, not UTF-8 (UnicodeDecodeError is a
                # ValueError); RecursionError: nested past json.loads's limit. What escaped
                # here ended the writer's task with it.
                unreadable.append(line)
        if unreadable and not self._aside:
            # Kept aside for an operator (never replayed, never lost): one bad line must not
            # stop the records around it, nor the writer.
            self._keep_aside(REJECTED_FILE, [line.rstrip(b"\n") + b"\n" for line in unreadable])
            log.error(
                "%d unreadable audit spool line(s) set aside in %s", len(unreadable),
                self._dir / REJECTED_FILE,
            )  # fmt: skip
        self._aside = True
        return iter(rows)

    def set_aside(self, rows: list[tuple[UUID, AuditRow]]) -> None:
        """Keep ``rows``, which the primary refused for what they hold, for an operator (in
        ``REFUSED_FILE``, as they were spooled) before ``taken()`` forgets them."""
        lines = [(encode_line(rid, row) + "\n").encode() for rid, row in rows]
        with self._busy:
            self._keep_aside(REFUSED_FILE, lines)
        log.error(
            "%d spooled audit record(s) the primary refused set aside in %s", len(rows),
            self._dir / REFUSED_FILE,
        )  # fmt: skip

    def _keep_aside(self, name: str, lines: list[bytes]) -> None:
        fd, created = open_to_append(self._dir / name)
        self._named = self._named and not created
        with os.fdopen(fd, "ab") as aside:
            aside.writelines(lines)
            aside.flush()
            os.fsync(aside.fileno())
        self._name_on_disk()  # before taken() forgets the lines

    def _name_on_disk(self) -> None:
        """fsync the directory unless its names are known to be on disk already."""
        if not self._named:
            sync_directory(self._dir)
            self._named = True

    def taken(self) -> None:
        """Forget the rows handed out by ``take()`` (they are on the primary now). Not the file
        at the path if the directory changed hands meanwhile (removed, and claimed by another
        instance): that one's, while the file taken went with the directory."""
        if self._lock is None or still_held(self._lock, self._dir):
            self._replaying.unlink(missing_ok=True)
        self._aside = False
