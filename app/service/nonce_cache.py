"""WS-Security nonces seen within the freshness window, to refuse replays.

Kept in this instance's memory: a replay sent to another instance within the window is not
seen here. Deployments with several instances route each partner to one instance (session
affinity on the partner's source address) or accept that window; README, "Operating".
"""

from __future__ import annotations

import time
from collections import OrderedDict
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
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def first_use(self, username: str, nonce: str) -> bool:
        """Record the nonce; False when it was already used within the window."""
        now = self._clock()
        while self._seen:
            key, seen_at = next(iter(self._seen.items()))
            if now - seen_at <= self._window and len(self._seen) < self._max:
                break
            self._seen.popitem(last=False)
        key = (username, nonce)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True
