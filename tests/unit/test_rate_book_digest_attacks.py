"""Attacks on 38d2dbc's ``RateBook.table(digest=...)``: the fingerprints "asked" once
(``RateBook._asked``) and the held table kept when the primary cannot be read.

Each test here fails on 38d2dbc; the docstring of each says what should happen and why.
"""

from __future__ import annotations

import asyncio

from app.domain.months import Month
from app.domain.rates import DEFAULT_RATE_HISTORY, Rate, lines_digest
from app.errors import StoreUnavailable
from app.rates.book import RateBook
from tests.support.clock import ManualMonotonic

CUT = Rate(40, 2, Month(2030, 1), Month(2030, 1), 6_000, 5_000)
MISTAKE = Rate(40, 1, Month(2030, 1), Month(2030, 1), 6_500, 3_000)


class _Primary:
    """The primary's rate lines; counts the reads; may be down."""

    def __init__(self, lines: list[Rate]) -> None:
        self.lines = list(lines)
        self.reads = 0
        self.down = False

    async def load_rates(self) -> list[Rate]:
        self.reads += 1
        await asyncio.sleep(0)
        if self.down:
            raise StoreUnavailable("the primary database is unavailable; retry the same request")
        return list(self.lines)


async def test_a_fingerprint_whose_read_failed_is_read_again_once_the_primary_is_back() -> None:
    """Another instance added a cut for Section 40 option 2 (100 -> 60 baht); the standby
    holds it, and an inquiry on this instance shows its fingerprint. The primary cannot be
    read for a moment then (a connection reset, the pool's acquire timeout, a switchover): the
    inquiry is served the held table, as 38d2dbc wants ("kept if the primary cannot be read
    then: the standby still answers"). A second later the primary is back. The next inquiry
    showing the same fingerprint should read the table again and offer 60 baht, not the
    held 100 that every confirm now refuses (the confirm prices by the primary's table).

    On 38d2dbc the fingerprint is added to ``_asked`` *before* the read (app/rates/book.py
    ``table``), and kept there when the read fails; ``_fresh`` then takes any inquiry showing
    it as fresh, so the instance offers the old price until its TTL (60 s) is over, with the
    primary up the whole time. A failed read is not a read "made for" the fingerprint."""
    primary, clock = _Primary(list(DEFAULT_RATE_HISTORY)), ManualMonotonic()
    book = RateBook(primary, ttl_s=60.0, monotonic=clock)
    await book.table()
    primary.lines.append(CUT)  # through another instance; the standby replays it
    shown = lines_digest(primary.lines)
    primary.down = True
    clock.now = 1.0
    held = await book.table(digest=shown)  # the held table, the primary being down
    assert held.amount(40, 2, Month(2030, 1)) == 10_000
    primary.down = False  # back a second later
    clock.now = 2.0
    served = await book.table(digest=shown)
    assert served.amount(40, 2, Month(2030, 1)) == 6_000, (
        f"offers {served.amount(40, 2, Month(2030, 1))} satang with the primary back;"
        f" {primary.reads} read(s) of the primary"
    )


async def test_a_line_removed_is_seen_by_inquiries_once_their_standby_shows_it() -> None:
    """A mistaken rate line (option 1 at 65 baht) was added through another instance. This
    instance's confirm saw the primary's new fingerprint and read the table with the mistake
    (``reload_with``). Its standby, lagging (within the router's bound), still showed the
    table before the mistake, so an inquiry read the primary once for that fingerprint, and
    got the table with the mistake again. Then an operator removes the mistaken line: the
    primary's table is the one before the mistake again, and the standby replays that. An
    inquiry showing it should be priced without the mistake (70 baht): the fingerprint the
    standby shows is not the held table's, and the table that fingerprint names is now the
    primary's.

    On 38d2dbc the inquiry is priced by the removed line (65 baht) until the TTL is over:
    ``_asked`` keeps every fingerprint a read was ever made for (cleared only when 64 are
    held), and ``_fresh`` takes an inquiry showing one of them as fresh whatever the table
    held, so a fingerprint seen once while the standby lagged is trusted for ever after,
    even when it later names the primary's current table."""
    primary, clock = _Primary(list(DEFAULT_RATE_HISTORY)), ManualMonotonic()
    book = RateBook(primary, ttl_s=60.0, monotonic=clock)
    await book.table()
    before = lines_digest(primary.lines)
    primary.lines.append(MISTAKE)  # another instance adds the mistake
    await book.reload_with(primary.load_rates)  # this instance's confirm sees it
    clock.now = 1.0
    await book.table(digest=before)  # the lagging standby: one read, the mistake again
    primary.lines.remove(MISTAKE)  # the operator's DELETE; the standby replays it
    clock.now = 2.0
    served = await book.table(digest=before)
    assert served.amount(40, 1, Month(2030, 1)) == 7_000, (
        f"offers {served.amount(40, 1, Month(2030, 1))} satang: the removed line's price"
    )
