"""The rate table, loaded from the store and refreshed now and then (rates change rarely)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from app.domain.rates import RateTable
from app.rates.records import RateSource


class RateBook:
    """Serves the current RateTable; reloads it after ``ttl_s`` or when told it changed.

    A confirm compares the table with the primary's under its lock and prices by the
    primary's when they differ (``app.counter.posting``); an inquiry may show a table up to
    ``ttl_s`` old."""

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
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def table(self) -> RateTable:
        """The rate table, at most ``ttl_s`` old."""
        if self._table is not None and self._monotonic() - self._loaded_at < self._ttl:
            return self._table
        async with self._lock:
            if self._table is None or self._monotonic() - self._loaded_at >= self._ttl:
                self._table = RateTable(await self._source.load_rates())
                self._loaded_at = self._monotonic()
        return self._table

    def adopt(self, table: RateTable) -> RateTable:
        """Serve ``table``, just read from the store, from now on (for ``ttl_s``); it."""
        self._table = table
        self._loaded_at = self._monotonic()
        return table

    def invalidate(self) -> None:
        """Reload on next use (after this instance changed a rate)."""
        self._loaded_at = float("-inf")
