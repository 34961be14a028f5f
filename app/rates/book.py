"""The rate table, loaded from the store and refreshed now and then (rates change rarely)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from app.domain.rates import Rate, RateTable
from app.errors import StoreUnavailable
from app.rates.records import RateSource

#: A fingerprint the primary was read for is not read for again within this: a standby that
#: has not replayed a change yet costs the primary one read a second, not one per inquiry.
ASK_AGAIN_S = 1.0


class RateBook:
    """Serves the current RateTable; reloads it after ``ttl_s`` or when told it changed.

    A confirm compares the table's fingerprint (``RateTable.digest``) with the primary's under
    its person's lock and, when they differ, reads the table on its own transaction and prices
    by what it read (``reload_with``, from ``app.counter.posting``). An inquiry's read brings
    the fingerprint of its standby's table, and a table that differs is read again from the
    primary, at most once a second for each fingerprint (``table(digest=...)``: a standby that
    has not replayed a change yet costs the primary a read a second, not one per inquiry), and
    kept if the primary cannot be read then: the standby still answers. Reads may finish out
    of order: the book keeps the one that began last (it saw at least what the others saw).
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
        self._asked: dict[str, float] = {}  # fingerprint -> when a read was last made for it
        self._shown: str | None = None  # the store's fingerprint, as a read last showed it
        self._down = False  # the last read of the primary failed (none has succeeded since)
        self._lock = asyncio.Lock()

    async def table(self, *, digest: str | None = None) -> RateTable:
        """The rate table, at most ``ttl_s`` old; read again now if a read of the store found
        another table there (``digest``, its fingerprint), at most once a second for each.
        A call without a fingerprint is held to the last one shown: most inquiries' reads bring
        none, and one must not be priced by the old table while another waits for the new;
        but not while the primary cannot be read: then only calls that bring a fingerprint try
        it again (once a second), and the others are served the table held at once.

        The table held is served when the primary cannot be read while it is within its TTL,
        or, past it, while the store's fingerprint (as last shown) is its own: the standbys
        prove it current, and inquiries go on through a primary's outage."""
        if digest is None:
            if self._down and self._table is not None and self._servable():
                return self._table
            digest = self._shown
        else:
            self._shown = digest
        if self._fresh(digest):
            assert self._table is not None
            return self._table
        async with self._lock:
            if not self._fresh(digest):
                held = self._table is not None and self._servable()
                try:
                    await self._load()
                    self._down = False
                except StoreUnavailable:
                    self._down = True
                    if not held:
                        raise
                finally:
                    # Noted once the read is over: a call showing the same fingerprint meanwhile
                    # waits for it (on the lock), and then serves what it read.
                    if digest is not None:
                        now = self._monotonic()
                        self._asked = {
                            d: at for d, at in self._asked.items() if now - at < ASK_AGAIN_S
                        }
                        self._asked[digest] = now
        assert self._table is not None
        return self._table

    async def reload_with(self, load: Callable[[], Awaitable[list[Rate]]]) -> RateTable:
        """The table ``load`` reads (on a confirm's transaction, say), served from now on
        unless a read begun after it is served already; a reload asked for is still made."""
        table = await self._read(load)
        if self._loaded_at != float("-inf"):
            self._loaded_at = self._monotonic()
        return table

    def invalidate(self) -> None:
        """Reload on next use (after this instance changed a rate)."""
        self._loaded_at = float("-inf")
        self._changes += 1

    def _expired(self) -> bool:
        return self._monotonic() - self._loaded_at >= self._ttl

    def _servable(self) -> bool:
        """The table held may be served without reading the primary again: within its TTL, or
        its fingerprint is the one the store last showed."""
        assert self._table is not None
        return not self._expired() or self._shown == self._table.digest

    def _fresh(self, digest: str | None) -> bool:
        table = self._table
        return (
            table is not None
            and not self._expired()
            and (digest is None or digest == table.digest or self._asked_lately(digest))
        )

    def _asked_lately(self, digest: str) -> bool:
        at = self._asked.get(digest)
        return at is not None and self._monotonic() - at < ASK_AGAIN_S

    async def _load(self) -> None:
        started, changes = self._monotonic(), self._changes
        await self._read(self._source.load_rates)
        if changes == self._changes:  # else a rate came during the read: read again
            self._loaded_at = started

    async def _read(self, load: Callable[[], Awaitable[list[Rate]]]) -> RateTable:
        self._reads += 1
        number = self._reads
        table = RateTable(await load())
        if number > self._kept:
            self._table, self._kept = table, number
        return table
