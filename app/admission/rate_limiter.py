"""Rate limits that hold for the fleet: one token bucket per partner and per client, shared by
every instance in PostgreSQL, spent through short local leases.

The bucket (``rate_buckets``, migration 0013) holds up to one second's worth of the principal's
rate R (at least one token) and refills at R by the database's clock: however many instances
share a partner's calls, together they admit R a second, after a burst of at most one second's
worth.

An instance never asks the database per call. It takes a *lease* of up to ``lease_s`` worth of
R (a tenth of a second's, at least one token, at most ``MAX_LEASE`` whatever rate a record
holds, so no rate can overflow the statement's parameters) with one statement that refills the
bucket, hands back what its previous lease left unspent, and takes the lease. It spends the
lease in memory; when the lease is spent the next call takes another, and calls arriving
meanwhile wait for that same request: one round trip per lease, never per call. A lease not
spent within ``lease_ttl_s`` is handed back with the next request, so unspent tokens do not
pile up on an instance: beyond what the bucket allows, the fleet holds at most one lease per
instance. The rate comes from the principal's record with every call, so a changed limit holds
from the next lease on (and a lower one caps the bucket at once).

Each answer says what is left in the bucket. When that is less than a lease's worth, the
instance, once its lease is spent, refuses calls until a lease's worth is due without asking
again, and that wait is the ``retry_after_s`` of ``client.rate_limited``. So a principal
calling far beyond its limit costs each instance one statement per lease period (``lease_s``),
not one per call.

When the database cannot be reached for a lease within ``timeout_s`` (or the statement fails),
the instance falls back to a bucket of its own at the full rate R (starting with one token, so
a fall back adds no burst), and asks again every ``fallback_s`` in the background, so that only
the call that found the database away waited for it: one instance never admits more than R,
the fleet at most N × R while the primary is away. It says so in its log (once when it
falls back, once when the buckets are shared again) and in
``ssogw_rate_leases_total{result="unreachable"}``. Without shared buckets (``buckets=None``,
tests of other parts) every limit is per instance.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

#: Leases a call may wait for before it is refused: the second one is only needed when the
#: first was shared out to other callers of this instance before this one's turn.
_REFILLS_PER_CALL = 2
#: The most tokens one lease asks for, whatever rate a record holds (the registry accepts at
#: most 100,000/s, a lease of 10,000): well within the statement's ``int`` parameter.
MAX_LEASE = 1_000_000


def whole_tokens(amount: float) -> int:
    """``amount`` of tokens as a whole number to ask for: at least one, at most ``MAX_LEASE``
    (an infinite or NaN amount, which no ``int`` holds, too)."""
    if not amount < MAX_LEASE:
        return MAX_LEASE
    return max(1, math.floor(amount))


class RateBuckets(Protocol):
    """The fleet's shared buckets (``app.principals.shared_limits.RateBucketRepository``)."""

    async def take(
        self, kind: str, ident: int, *, rate: float, capacity: float, want: int, returned: int
    ) -> tuple[int, float]:
        """Refill, put back ``returned``, take up to ``want``: (taken, tokens left)."""
        ...


class RateEvents(Protocol):
    def rate_lease(self, result: str) -> None:
        """A lease was asked for: ``granted``, ``empty`` or ``unreachable``."""
        ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class LocalBuckets:
    """A token bucket per principal in this instance's memory: ``rate`` requests per second,
    with a burst of one second's worth. The fallback when the shared buckets are away."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, start_tokens: float | None = None
    ) -> None:
        self._clock = clock
        self._start_tokens = start_tokens  # None: a new bucket starts full
        self._buckets: dict[tuple[str, int], _Bucket] = {}

    def take(self, key: tuple[str, int], rate: float) -> float:
        """Take one token; return 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        capacity = max(rate, 1.0)
        bucket = self._buckets.get(key)
        if bucket is None:
            start = capacity if self._start_tokens is None else self._start_tokens
            bucket = self._buckets[key] = _Bucket(min(start, capacity), now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def give_back(self, key: tuple[str, int]) -> None:
        """Return the token a call took (``RateLimiter.give_back``)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens += 1.0  # the next take caps it at the bucket's capacity


@dataclass(slots=True)
class _Lease:
    """What this instance holds of one principal's shared bucket."""

    tokens: int = 0
    expires: float = 0.0  # monotonic: after this, what is left is handed back
    empty_until: float = 0.0  # the bucket said: no token before this ...
    empty_rate: float = 0.0  # ... at this rate (at another, the bucket is asked again)
    waiting: int = 0  # calls waiting for the lease being taken
    refill: asyncio.Task[None] | None = None


class RateLimiter:
    """Allows ``rate`` requests per second per principal across the fleet (module docstring)."""

    def __init__(
        self,
        *,
        buckets: RateBuckets | None = None,
        lease_s: float = 0.1,
        lease_ttl_s: float = 1.0,
        timeout_s: float = 0.5,
        fallback_s: float = 1.0,
        events: RateEvents | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._buckets = buckets
        self._lease_s = lease_s
        self._ttl = lease_ttl_s
        self._timeout = timeout_s
        self._fallback_s = fallback_s
        self._events = events
        self._clock = clock
        self._local = LocalBuckets(clock=clock)
        self._leases: dict[tuple[str, int], _Lease] = {}
        self._unreachable_until = 0.0
        self._fallen_back = False

    async def take(self, key: tuple[str, int], rate: float) -> float:
        """Take one token for ``key`` (kind, id); 0.0 if allowed, else the seconds until the
        next one is due."""
        wait, _ = await self.take_token(key, rate)
        return wait

    async def take_token(self, key: tuple[str, int], rate: float) -> tuple[float, bool]:
        """``take``, and whether an allowed token came from the fleet's shared bucket (a lease)
        rather than this instance's own: where ``give_back`` returns it."""
        if self._buckets is None:
            return self._local.take(key, rate), False
        lease = self._leases.get(key)
        if lease is None:
            lease = self._leases[key] = _Lease()
        for attempt in range(_REFILLS_PER_CALL + 1):
            now = self._clock()
            if lease.tokens > 0 and now < lease.expires:
                lease.tokens -= 1
                return 0.0, True
            if self._fallen_back:
                if now >= self._unreachable_until and lease.refill is None:
                    # Ask again in the background: no call waits on a database still away.
                    lease.refill = asyncio.create_task(self._refill(key, lease, rate))
                return self._local.take(key, rate), False
            if lease.tokens == 0 and now < lease.empty_until and rate == lease.empty_rate:
                return lease.empty_until - now, False  # spent; the bucket had too little for more
            if attempt == _REFILLS_PER_CALL:
                break
            if lease.refill is None:
                lease.refill = asyncio.create_task(self._refill(key, lease, rate))
            lease.waiting += 1
            try:
                # Shielded: a caller that goes away does not cancel the others' lease.
                await asyncio.shield(lease.refill)
            finally:
                lease.waiting -= 1
        # The leases taken were spent by the callers ahead of this one: the bucket is low.
        return max(lease.empty_until - self._clock(), 1.0 / rate), False

    async def give_back(self, key: tuple[str, int], rate: float, *, shared: bool) -> None:
        """Return a token a call took (``take_token``) and did not use: its call was refused
        after the rate was judged, as a replayed nonce, which a stranger without the secret can
        send, and which must not spend the partner's rate. Where it came from: into the fleet's
        shared bucket (one statement, so the other instances may spend it at once; a replay is
        refused there once an instance, and then by its memory before the rate), or into this
        instance's own bucket. A token of the shared bucket is dropped when it is away."""
        if not shared or self._buckets is None:
            self._local.give_back(key)
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._buckets.take(
                    key[0], key[1], rate=rate, capacity=max(rate, 1.0), want=0, returned=1
                )
        except Exception:  # the bucket away: the token is not given back
            return

    def lease_size(self, rate: float) -> int:
        """Tokens one lease asks for: ``lease_s`` worth of ``rate``, at least one, at most
        ``MAX_LEASE``."""
        return whole_tokens(rate * self._lease_s)

    async def _refill(self, key: tuple[str, int], lease: _Lease, rate: float) -> None:
        assert self._buckets is not None
        # What is left of an expired lease goes back to the bucket with this request.
        returned, lease.tokens = lease.tokens, 0
        capacity = max(rate, 1.0)
        want = min(max(self.lease_size(rate), lease.waiting), whole_tokens(capacity))
        try:
            async with asyncio.timeout(self._timeout):
                taken, left = await self._buckets.take(
                    key[0], key[1], rate=rate, capacity=capacity, want=want, returned=returned
                )
        except Exception as exc:  # whatever keeps the bucket away: the instance's own limit
            self._fall_back(exc)
            return
        finally:
            lease.refill = None
        now = self._clock()
        if self._fallen_back:
            self._fallen_back = False
            log.warning("rate limits: the shared buckets answer again; limits hold fleet-wide")
        lease.tokens = taken
        lease.expires = now + self._ttl
        # With less than a lease's worth left, the next request waits until one is due, not a
        # token: one round trip per lease even for a principal calling far over its limit.
        lease.empty_until = now + max(0.0, self.lease_size(rate) - left) / rate
        lease.empty_rate = rate  # a changed limit holds from the next lease, not after this
        if self._events is not None:
            self._events.rate_lease("granted" if taken else "empty")

    def _fall_back(self, exc: Exception) -> None:
        self._unreachable_until = self._clock() + self._fallback_s
        if self._events is not None:
            self._events.rate_lease("unreachable")
        if not self._fallen_back:
            self._fallen_back = True
            # Buckets that start with one token, not a second's worth: a fall back is not a
            # burst on top of what the leases gave.
            self._local = LocalBuckets(clock=self._clock, start_tokens=1.0)
            log.warning(
                "rate limits: the shared buckets could not be reached (%s); each principal is"
                " held to its rate by this instance alone (the fleet may admit up to the number"
                " of instances times it) until they answer again",
                type(exc).__name__,
            )
