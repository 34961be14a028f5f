"""How late the event loop runs: a timer that should fire every ``interval_s``, and its delay.

Every request, audit commit and probe of an instance shares one event loop; when it is busy
(a long synchronous step, CPU saturation, a slow scrape) everything waits, and the request
latency alone cannot say why. The lag of a timer that asks for nothing else is that wait, as
a histogram (``ssogw_event_loop_lag_seconds``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class _Observes(Protocol):
    def observe(self, amount: float) -> None: ...


async def measure_loop_lag(histogram: _Observes, *, interval_s: float = 0.25) -> None:
    """Observe the timer's lateness every ``interval_s`` until cancelled."""
    while True:
        due = time.monotonic() + interval_s
        await asyncio.sleep(interval_s)
        histogram.observe(max(0.0, time.monotonic() - due))
