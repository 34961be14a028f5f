"""The tests' business clock: pinned, settable, the same one every in-process gateway reads.

The session pins business time once (``SSOGW_TEST_BUSINESS_TIME``, default 10:00 Bangkok on
today's Bangkok date) and every gateway, app and expectation the tests build in-process reads
this clock instead of the wall clock, so the suite gives the same answers at any hour::

    SSOGW_TEST_BUSINESS_TIME=23:30 pytest ...                      # after the 23:00 cut-off
    SSOGW_TEST_BUSINESS_TIME=00:05 pytest ...                      # just after midnight
    SSOGW_TEST_BUSINESS_TIME=2026-12-04T23:45:00+07:00 pytest ...  # one exact instant

A time of day is taken on today's Bangkok date (so business dates stay near the database's
own ``now()``); a timestamp without an offset is a Bangkok one. The clock ticks from the
pinned instant at the rate of ``time.monotonic`` (records written one after another keep their
order), and a test that needs a particular time of day moves it with ``at`` and gets the
session's pinned instant back afterwards.

Gateways run as subprocesses (tests/reliability, the smoke test) and the command line (its
services are built by ``app.cli``) read the wall clock: those tests compute business dates from
the wall clock too (``following_wall``, the ``cli_time`` fixture), and assert nothing that
depends on the time of day.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from functools import cache

from app.domain.calendar import BANGKOK, bangkok_date, settlement_day
from app.domain.months import Month

ENV = "SSOGW_TEST_BUSINESS_TIME"
DEFAULT_TIME_OF_DAY = time_of_day(10, 0)


class ManualMonotonic:
    """A monotonic clock that moves only when told (``now += s``): a unit test's time for what
    reads ``time.monotonic`` (the rate book's TTL and once-a-second rules, say)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class PinnedClock:
    """An aware-UTC clock pinned to an instant, ticking from it; callable like ``datetime.now``."""

    def __init__(self, instant: datetime) -> None:
        self._anchor = _aware(instant)
        self._since = time.monotonic()

    def __call__(self) -> datetime:
        return self._anchor + timedelta(seconds=time.monotonic() - self._since)

    def set(self, instant: datetime) -> None:
        """Pin the clock to ``instant`` (aware, or naive in Bangkok) from now on."""
        self._anchor = _aware(instant)
        self._since = time.monotonic()

    @contextmanager
    def at(self, when: time_of_day, *, on: date | None = None) -> Iterator[datetime]:
        """Within the block the clock reads ``when`` (Bangkok) on the business date ``on``
        (default: the one it reads now); afterwards it continues from where it was."""
        saved, since = self._anchor, self._since
        self.set(datetime.combine(on or self.today(), when, tzinfo=BANGKOK))
        try:
            yield self()
        finally:
            self._anchor, self._since = saved, since

    @contextmanager
    def following_wall(self) -> Iterator[datetime]:
        """Within the block the clock reads the wall clock: for tests that drive the command
        line, whose services (built by ``app.cli``, not here) read the wall clock."""
        saved, since = self._anchor, self._since
        self.set(datetime.now(UTC))
        try:
            yield self()
        finally:
            self._anchor, self._since = saved, since

    def today(self) -> date:
        """The business date (in Bangkok) the clock reads."""
        return bangkok_date(self())

    def business_day(self) -> date:
        """The business day a payment made now settles in (after the 23:00 cut-off, the next)."""
        return settlement_day(self())

    def month(self) -> Month:
        """The contribution month the clock reads."""
        return Month.of(self.today())


def pinned_instant(setting: str | None, *, wall: datetime | None = None) -> datetime:
    """The instant ``SSOGW_TEST_BUSINESS_TIME`` names: ``HH:MM[:SS]`` in Bangkok on the wall
    clock's Bangkok date, or an ISO timestamp; unset means 10:00 Bangkok on that date."""
    today = bangkok_date(wall or datetime.now(UTC))
    text = (setting or "").strip()
    if not text:
        return datetime.combine(today, DEFAULT_TIME_OF_DAY, tzinfo=BANGKOK).astimezone(UTC)
    if "T" not in text and " " not in text:
        try:
            when = time_of_day.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{ENV}={text!r}: not HH:MM[:SS] nor an ISO timestamp") from None
        return datetime.combine(today, when, tzinfo=BANGKOK).astimezone(UTC)
    try:
        return _aware(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"{ENV}={text!r}: not HH:MM[:SS] nor an ISO timestamp") from None


@cache
def business_clock() -> PinnedClock:
    """The session's one clock (made on first use, from the environment)."""
    return PinnedClock(pinned_instant(os.environ.get(ENV)))


def current_month() -> Month:
    """The contribution month of the session's business clock."""
    return business_clock().month()


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        instant = instant.replace(tzinfo=BANGKOK)
    return instant.astimezone(UTC)
