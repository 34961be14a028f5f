"""RateBook's reads finishing out of order: a table a confirm read is never replaced by an
older one read before it.

A confirm compares its instance's table with the primary's rate lines under the person's lock
and reads the primary's when they differ (app/counter/posting.py), so that the instance
prices, and offers, what the primary holds. eed1875's ``adopt`` set the table without asking
whether it was newer than what was there, so a reload that began before the new rate was
committed (``table()`` after the TTL) or a slower confirm's read put the older table back,
with a fresh load time: for up to ``ttl_s`` the instance's inquiries offered the old price
again (its own confirms then refuse the amount offered: DOMAIN.md, Money, "Amounts are
exact"). Found by an attack on that change; each test failed on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from app.domain.months import Month
from app.domain.rates import DEFAULT_RATE_HISTORY, Rate
from app.rates.book import RateBook
from tests.support.clock import ManualMonotonic

CUT = Rate(40, 2, Month(2030, 1), Month(2030, 1), 6_000, 5_000)
LATER = Rate(40, 3, Month(2030, 1), Month(2030, 1), 18_000, 15_000)


class _Store:
    """The primary's rate lines; a load may be held after it has read them."""

    def __init__(self) -> None:
        self.lines: list[Rate] = list(DEFAULT_RATE_HISTORY)
        self.hold: asyncio.Event | None = None
        self.read = asyncio.Event()

    async def load_rates(self) -> list[Rate]:
        snapshot = list(self.lines)
        self.read.set()
        if self.hold is not None:
            await self.hold.wait()
        return snapshot


def _lines(lines: list[Rate]) -> Callable[[], Awaitable[list[Rate]]]:
    snapshot = list(lines)

    async def load() -> list[Rate]:
        return snapshot

    return load


async def test_a_reload_begun_before_a_rate_never_replaces_the_table_a_confirm_adopted() -> None:
    """An inquiry's ``table()`` (TTL over) reads the lines, then a rate is added and a confirm
    on this instance adopts the primary's table with it; the inquiry's reload then ends. The
    book must go on serving the adopted table (it is the newer); eed1875 serves the older one
    for another ``ttl_s`` (app/rates/book.py ``table`` stores its result over the adopt)."""
    store, clock = _Store(), ManualMonotonic()
    book = RateBook(store, ttl_s=60.0, monotonic=clock)
    await book.table()
    clock.now = 61.0  # the TTL is over: the next call reloads
    store.hold = asyncio.Event()
    store.read.clear()
    reload = asyncio.create_task(book.table())
    await asyncio.wait_for(store.read.wait(), 5)  # read before the rate
    store.lines.append(CUT)  # another instance adds a rate
    adopted = await book.reload_with(_lines(store.lines))  # a confirm here sees it, reads it
    store.hold.set()
    await reload
    clock.now = 62.0
    served = await book.table()
    assert len(served.rates) == len(adopted.rates), "the book went back to the older table"
    assert served.amount(40, 2, Month(2030, 1)) == 6_000


async def test_a_slower_confirm_never_adopts_an_older_table_over_a_newer_one() -> None:
    """Two confirms find the instance's table short: the first reads N + 1 lines, a rate is
    added, the second reads N + 2 and adopts them, then the first adopts its N + 1. The book
    must keep N + 2; eed1875 kept N + 1 (``adopt`` replaced whatever was there)."""
    store, clock = _Store(), ManualMonotonic()
    book = RateBook(store, ttl_s=60.0, monotonic=clock)
    await book.table()
    store.lines.append(CUT)
    first = list(store.lines)  # the slower confirm's read
    store.lines.append(LATER)
    slower = asyncio.Event()

    async def slow_read() -> list[Rate]:
        await slower.wait()
        return first

    slow = asyncio.create_task(book.reload_with(slow_read))  # its read begins first
    await asyncio.sleep(0)
    await book.reload_with(_lines(store.lines))  # the quicker confirm's, begun after
    slower.set()
    await slow  # the slower one ends last
    served = await book.table()
    assert served.amount(40, 3, Month(2030, 1)) == 18_000, "the later rate was dropped"
