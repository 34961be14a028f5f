"""Attacks on 4c60393's ``RateBook.table(digest=...)`` (``_asked``, ``ASK_AGAIN_S``).

Each test here fails on 4c60393; the docstring of each says what should happen and why.
"""

from __future__ import annotations

import asyncio

from app.domain.months import Month
from app.domain.rates import DEFAULT_RATE_HISTORY, Rate, lines_digest
from app.rates.book import RateBook
from tests.support.clock import ManualMonotonic

CUT = Rate(40, 2, Month(2030, 1), Month(2030, 1), 6_000, 5_000)


class _SlowPrimary:
    """The primary's rate lines; a read takes a while (``gate`` opens it), as a read over the
    network does while other inquiries arrive."""

    def __init__(self, lines: list[Rate]) -> None:
        self.lines = list(lines)
        self.reads = 0
        self.gate: asyncio.Event | None = None

    async def load_rates(self) -> list[Rate]:
        self.reads += 1
        lines = list(self.lines)
        if self.gate is not None:
            await self.gate.wait()
        return lines


async def test_an_inquiry_showing_a_new_fingerprint_waits_for_the_read_made_for_it() -> None:
    """Another instance added a cut for Section 40 option 2 (100 -> 60 baht); this instance's
    standby holds it. Two inquiries on this instance read that standby a moment apart and
    both show the new fingerprint. The first reads the table from the primary (as it should:
    ``table(digest=...)``); the second arrives while that read is on the wire. Both standbys'
    reads say the cut is there, and the primary is up: both should be offered 60 baht (the
    second waiting for the read in progress, as any caller of a book with no table does).
    2f70d4e: "Inquiries offer a rate another instance added once their standby holds it".

    On 4c60393 the second is offered the old 100 baht: ``table`` records the fingerprint in
    ``_asked`` *before* the read (app/rates/book.py, ``self._asked[digest] = now``), and
    ``_fresh`` then takes ``_asked_lately(digest)`` as fresh and returns the held table on the
    lock-free fast path, without waiting for the read that was made for that fingerprint.
    The counter then refuses the 100 baht the inquiry offered (the confirm prices by the
    primary's table)."""
    primary, clock = _SlowPrimary(list(DEFAULT_RATE_HISTORY)), ManualMonotonic()
    book = RateBook(primary, ttl_s=60.0, monotonic=clock)
    await book.table()
    primary.reads = 0
    primary.lines.append(CUT)  # through another instance; the standby replays it
    shown = lines_digest(primary.lines)
    primary.gate = asyncio.Event()
    clock.now = 5.0
    first = asyncio.create_task(book.table(digest=shown))
    await asyncio.sleep(0)  # the first inquiry's read of the primary is in progress
    await asyncio.sleep(0)
    assert primary.reads == 1
    second = asyncio.create_task(book.table(digest=shown))
    await asyncio.sleep(0)
    primary.gate.set()
    served_first, served_second = await first, await second
    assert served_first.amount(40, 2, Month(2030, 1)) == 6_000
    assert served_second.amount(40, 2, Month(2030, 1)) == 6_000, (
        f"the second inquiry, whose standby holds the cut, is offered"
        f" {served_second.amount(40, 2, Month(2030, 1))} satang"
    )
