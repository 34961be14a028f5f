"""The rate table, loaded from the store and refreshed now and then (rates change rarely)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from app.domain.rates import Rate, RateTable
from app.rates.records import RateSource


class RateBook:
    """Serves the current RateTable; reloads it after ``ttl_s`` or when told it changed.

    A confirm compares the table with the primary's rate lines under its lock and, when they
    differ, reads them on its own transaction and prices by what it read (``reload_with``,
    from ``app.counter.posting``). An inquiry's read counts the lines its standby holds, and a
    table with fewer is read again (``table(lines=...)``); a line removed by an operator is
    seen within ``ttl_s``, or at the next confirm. Reads may
    finish out of order: of two, the book keeps the one that began later (it saw at least what
    the other saw), so a slow read never puts back a table older than the one it serves.
    """

    def __init__(
        self,
        source: RateSource,
        *,
        ttl_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl_s
        self._monotonic = monotonic
        self._table: RateTable | None = None
        self._loaded_at = 0.0  # -inf: a reload is asked for
        self._reads = 0  # reads begun so far; each read's number orders it
        self._kept = 0  # the number of the read whose table the book serves
        self._changes = 0  # reloads asked for so far (``invalidate``)
        self._lock = asyncio.Lock()

    async def table(self, *, lines: int | None = None) -> RateTable:
        """The rate table, at most ``ttl_s`` old; read again now if a read of the store found
        more ``lines`` in it than the table holds (a rate added through another instance)."""
        if self._fresh(lines):
            assert self._table is not None
            return self._table
        async with self._lock:
            if not self._fresh(lines):
                started, changes = self._monotonic(), self._changes
                await self._read(self._source.load_rates)
                if changes == self._changes:  # else a rate came during the read: read again
                    self._loaded_at = started
        assert self._table is not None
        return self._table

    async def reload_with(self, load: Callable[[], Awaitable[list[Rate]]]) -> RateTable:
        """The table ``load`` reads (on a confirm's transaction, say), served from now on
        unless a read begun after it is served already; a reload asked for is still made."""
        table = await self._read(load)
        if self._loaded_at != float("-inf"):
            self._loaded_at = self._monotonic()
        return table

    def _fresh(self, lines: int | None) -> bool:
        table = self._table
        return (
            table is not None
            and self._monotonic() - self._loaded_at < self._ttl
            and (lines is None or lines <= len(table.rates))
        )

    def invalidate(self) -> None:
        """Reload on next use (after this instance changed a rate)."""
        self._loaded_at = float("-inf")
        self._changes += 1

    async def _read(self, load: Callable[[], Awaitable[list[Rate]]]) -> RateTable:
        self._reads += 1
        number = self._reads
        table = RateTable(await load())
        if number > self._kept:
            self._table, self._kept = table, number
        return table
