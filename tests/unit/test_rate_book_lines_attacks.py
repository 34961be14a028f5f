"""Attacks on 2f70d4e's ``RateBook.table(lines=...)`` (now ``table(digest=...)``): an inquiry
whose standby holds another rate table than the instance's reads the table again, from the
primary.

Each test here failed on 2f70d4e; the docstring of each says what should happen and why.
"""

from __future__ import annotations

import asyncio

import pytest

from app.domain.months import Month
from app.domain.rates import DEFAULT_RATE_HISTORY, Rate, lines_digest
from app.errors import StoreUnavailable
from app.rates.book import RateBook
from tests.support.clock import ManualMonotonic

CUT = Rate(40, 2, Month(2030, 1), Month(2030, 1), 6_000, 5_000)


class _Primary:
    """The primary's rate lines, read in ``delay_s``; counts the reads; may be down."""

    def __init__(self, lines: list[Rate], *, delay_s: float = 0.01) -> None:
        self.lines = list(lines)
        self.delay_s = delay_s
        self.reads = 0
        self.down = False

    async def load_rates(self) -> list[Rate]:
        self.reads += 1
        await asyncio.sleep(self.delay_s)
        if self.down:
            raise StoreUnavailable("the primary database is unavailable; retry the same request")
        return list(self.lines)


async def test_inquiries_counting_a_line_the_primary_no_longer_holds_share_one_read() -> None:
    """An operator removed a mistaken rate line on the primary (with the owner's role); the
    standby that serves the inquiries has not replayed the removal yet (within the router's
    lag bound), so each inquiry's read counts one line more than the table the instance just
    read from the primary. The doc of ``RateBook`` promises a table read again when it is
    *older* than the store's; here it is not older, and 50 inquiries arriving at once should
    cost at most a read or two of the primary, not one each.

    On 2f70d4e every one of them reads the primary's rate table again, one after another
    under the book's lock (app/rates/book.py ``table``: ``_fresh(lines)`` stays false, since
    the primary's table never reaches the standby's count): 50 inquiries make 50 primary
    reads, and the last waits for all the others. The inquiry path, meant to spare the
    primary (DESIGN.md: "partner traffic never loads the primary"), serialises on it."""
    primary, clock = _Primary([*DEFAULT_RATE_HISTORY, CUT]), ManualMonotonic()
    book = RateBook(primary, ttl_s=60.0, monotonic=clock)
    await book.table()
    held_by_standby = lines_digest(primary.lines)
    primary.lines.remove(CUT)  # the operator's DELETE, not yet replayed by the standby
    clock.now = 61.0  # the book reads the primary again (TTL over): it holds the removal
    await book.table()
    primary.reads = 0
    clock.now = 62.0
    await asyncio.gather(*(book.table(digest=held_by_standby) for _ in range(50)))
    assert primary.reads <= 2, f"{primary.reads} reads of the primary for 50 inquiries"


async def test_an_inquiry_served_by_a_standby_does_not_fail_while_the_primary_is_down() -> None:
    """DESIGN.md, Shape: "a failover of the primary is not an outage for inquiries", which are
    "served from the enquiry store". Another instance added a rate line (a far future month)
    just before the primary went down; the standby holds it; this instance's table, read a
    few seconds ago, does not. An inquiry on this instance should still be answered, from
    the standby and the table it holds (as before 2f70d4e, within the TTL).

    On 2f70d4e the inquiry's count (N + 1 lines) makes ``RateBook.table(lines=...)`` read the
    primary (app/counter/service.py ``inquire``, app/rates/book.py ``table``), which is down:
    the inquiry fails with server.store_unavailable, and so does every other inquiry of the
    instance while the primary is away, each trying the primary in turn under the book's
    lock."""
    primary, clock = _Primary(list(DEFAULT_RATE_HISTORY)), ManualMonotonic()
    book = RateBook(primary, ttl_s=60.0, monotonic=clock)
    await book.table()
    primary.lines.append(CUT)  # through another instance; the standby replays it
    primary.down = True  # then the primary fails
    clock.now = 5.0  # well within the TTL
    try:
        served = await book.table(digest=lines_digest(primary.lines))
    except StoreUnavailable as failed:
        pytest.fail(f"the inquiry failed with the primary down: {failed}")
    assert len(served.rates) == len(DEFAULT_RATE_HISTORY)
