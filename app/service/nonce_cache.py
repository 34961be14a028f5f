"""WS-Security nonces seen within the freshness window, to refuse replays.

Kept in this instance's memory: a replay sent to another instance within the window is not
seen here. Deployments with several instances route each partner to one instance (session
affinity on the partner's source address) or accept that window; README, "Operating".

At a thousand calls a second the window holds hundreds of thousands of nonces, so each is
kept small: a 64-bit fingerprint of (username, nonce) (Python's keyed string hash, random per
process) in a set, and the fingerprint and its time in two arrays that expire in arrival
order: about 90 bytes a nonce, where a dict of (username, nonce) tuples took about 250. With
a million nonces held, a new nonce shares a fingerprint with one of them with a probability
of about 5 in 10^14 (it would then be refused as replayed).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable


class NonceCache:
    """Remembers (username, nonce) pairs for ``window_s`` seconds, at most ``max_entries``."""

    def __init__(
        self,
        *,
        window_s: float,
        max_entries: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window_s
        self._max = max_entries
        self._clock = clock
        self._seen: set[int] = set()
        # The fingerprints and times in arrival order; ``_head`` is the oldest still held.
        self._keys = array("q")
        self._times = array("d")
        self._head = 0

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        keys, times, head = self._keys, self._times, self._head
        end = len(keys)
        while head < end and (now - times[head] > self._window or end - head >= self._max):
            self._seen.discard(keys[head])
            head += 1
        if head > 4096 and head * 2 > end:  # drop the expired prefix, amortised O(1)
            del keys[:head]
            del times[:head]
            head = 0
        self._head = head

    def first_use(self, username: str, nonce: str) -> bool:
        """Record the nonce; False when it was already used within the window."""
        now = self._clock()
        self._expire(now)
        key = hash((username, nonce))
        if key in self._seen:
            return False
        self._seen.add(key)
        self._keys.append(key)
        self._times.append(now)
        return True
