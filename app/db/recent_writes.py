"""Read-your-writes: the WAL position of each person's latest write on this instance.

After a confirm or cancel, an inquiry for that person on this instance is served only by a
replica that has replayed the write (or by the primary), so the months just paid are never
offered again, however far the replica lags.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RecentWrites:
    """Remembers ``national_id -> lsn`` for ``ttl_s`` seconds, at most ``max_entries``."""

    def __init__(
        self,
        *,
        ttl_s: float = 300.0,
        max_entries: int = 200_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def note(self, national_id: str, lsn: int) -> None:
        """Record that ``national_id`` was written at ``lsn``."""
        self._entries[national_id] = (lsn, self._monotonic() + self._ttl)
        self._entries.move_to_end(national_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def min_lsn(self, national_id: str) -> int | None:
        """The LSN a read of ``national_id`` must see, or None if there is no recent write."""
        entry = self._entries.get(national_id)
        if entry is None:
            return None
        if entry[1] < self._monotonic():
            del self._entries[national_id]
            return None
        return entry[0]
