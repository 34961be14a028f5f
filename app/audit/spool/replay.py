"""The replay of an instance's spool onto the primary's chain, once the primary answers again.

The audit writer asks ``waiting()`` after each batch it commits and every second while idle,
and runs ``replay()`` when records wait: all of them go onto the chain in the order they were
spooled, each once (the writer's append skips the records the chain holds, by id), or none
this time. A file system that refuses the replay (read-only, full, failing), or a primary that
refuses it for another reason than an outage, keeps the spool for the next try and is logged
once until a replay gets through; the writer goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from uuid import UUID

from app.audit.chain import AuditRow
from app.audit.spool.files import AuditSpool
from app.db.failures import refused_for_values, translate

log = logging.getLogger(__name__)

Rows = list[tuple[UUID, AuditRow]]


class SpoolReplay:
    """Moves ``spool``'s records onto the chain with ``append`` (rows not yet on the chain),
    ``max_batch`` at a time, each batch within ``timeout_s``."""

    def __init__(
        self,
        spool: AuditSpool,
        *,
        append: Callable[[Rows], Awaitable[None]],
        max_batch: int,
        timeout_s: float,
    ) -> None:
        self._spool = spool
        self._append = append
        self._max_batch = max_batch
        self._timeout_s = timeout_s
        self._told: set[str] = set()  # failures logged: not again until a replay gets through

    def waiting(self) -> bool:
        """Whether spooled records wait for the primary (no file system call when known not)."""
        return self._spool.pending()

    async def replay(self) -> None:
        """Move the spooled records onto the chain (all of them, or none this time). A record
        the primary refuses for what it holds (another version's, or one a damaged disk left
        readable) would fail every replay and hold back the records after it: a batch so refused
        goes again a record at a time, and those refused alone are set aside."""
        try:
            rows = await asyncio.to_thread(lambda: list(self._spool.take()))
        except OSError:  # read-only, full, failing: the spool is kept, the writer goes on
            self._failed("the audit spool could not be taken for a replay")
            return
        refused: Rows = []
        try:
            for start in range(0, len(rows), self._max_batch):
                refused += await self._replayed(rows[start : start + self._max_batch])
        except Exception as exc:
            if translate(exc, store="audit") is None:  # not an outage: a refusal to tell
                self._failed("spooled audit records refused by the primary")
            return
        try:  # replayed again if either fails: the append skips what the chain holds
            if refused:
                await asyncio.to_thread(self._spool.set_aside, refused)
            self._spool.taken()
        except OSError:
            self._failed("a replayed audit spool's refused records not set aside, or kept")
            return
        self._told.clear()
        if rows:
            log.warning("%d spooled audit records moved to the primary", len(rows) - len(refused))

    def _failed(self, what: str) -> None:
        # Tried again every second while idle: one traceback of each kind until a replay gets
        # through (a file system that refuses it, a primary that refuses it).
        if what not in self._told:
            log.exception(what)
        self._told.add(what)

    async def _replayed(self, rows: Rows) -> Rows:
        """Replay ``rows``; those the primary refused for what they hold (one at a time)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._append(rows)
            return []
        except Exception as exc:
            if not refused_for_values(exc):
                raise
            if len(rows) == 1:
                return rows
        refused: Rows = []
        for row in rows:
            refused += await self._replayed([row])
        return refused
