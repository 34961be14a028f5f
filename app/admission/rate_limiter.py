"""A token bucket per principal, in this instance's memory.

The limit is per instance: with N instances behind a load balancer that spreads partners
evenly, a partner may make up to N × its rate. To hold a partner to R requests/s overall,
register it with a rate limit of R / N (README, "Operating").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allows ``rate`` requests per second per key, with a burst of one second's worth."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, int], _Bucket] = {}

    def take(self, key: tuple[str, int], rate: float) -> float:
        """Take one token; return 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        capacity = max(rate, 1.0)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate
