"""Failure budgets that hold for the fleet: ``FailureThrottle``'s budgets kept in PostgreSQL as
well (``failure_budgets``, migration 0021), so that a guesser spreading wrong secrets over the
instances, and over each instance's workers, gets the configured budget once, not once a
process.

Off the hot path: only a PasswordText or bearer secret that no one verified lately reaches the
budgets (a PasswordDigest never does), and then an argon2 run of a good part of a second
follows, so the budgets may cost a statement each way: one read before the check, one write
after a failed one. Both are by the database's clock, so instances whose clocks differ refill
the same budget alike.

Each instance spends its own budgets too (``FailureThrottle``): they see a part of what the
shared ones see, so while the database answers they refuse nothing the shared ones would not,
and while it does not (no answer within ``TIMEOUT_S``, or an error) they hold alone: the fleet
grants at most one budget a process, as before. The database is asked again ``RETRY_S`` later;
the log says so once each way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)

#: The longest a check waits for the shared budgets before its instance's own decide.
TIMEOUT_S = 1.0
#: While they are away, how long until they are asked again.
RETRY_S = 5.0


class FailureBudgets(Protocol):
    """The fleet's failure budgets (``app.principals.repository.FailureBudgetRepository``):
    ``budgets`` are (name, size) as ``FailureThrottle.budgets`` gives them."""

    async def least_left(self, budgets: Sequence[tuple[str, int]], window_s: float) -> float:
        """The fewest failures any of ``budgets`` has left now (their size when never spent)."""
        ...

    async def spend(self, budgets: Sequence[tuple[str, int]], window_s: float) -> None:
        """Refill each of ``budgets`` for the time since it was last spent and spend one."""
        ...

    async def prune(self, window_s: float) -> None:
        """Forget the budgets unspent for ``window_s``: full again."""
        ...


class SharedFailures:
    """Reads and spends the fleet's failure budgets, or says it cannot (module docstring)."""

    def __init__(
        self,
        store: FailureBudgets,
        *,
        timeout_s: float = TIMEOUT_S,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._timeout = timeout_s
        self._retry = retry_s
        self._clock = clock
        self._away_until: float | None = None  # None: the store answered last time
        self._pruned = clock()

    async def throttled(self, budgets: Sequence[tuple[str, int]], window_s: float) -> bool:
        """Whether any of ``budgets`` has less than one failure left for the fleet; False when
        the store cannot say (the instance's own budgets decide)."""
        if self._asleep():
            return False
        try:
            async with asyncio.timeout(self._timeout):
                left = await self._store.least_left(budgets, window_s)
        except Exception as exc:  # whatever keeps the store away: the instance's own budgets
            self._gone(exc)
            return False
        self._back()
        return left < 1.0

    async def failed(self, budgets: Sequence[tuple[str, int]], window_s: float) -> None:
        """Spend one failure of each of ``budgets`` for the fleet (not when the store is away:
        the instance's own budgets hold it), and now and then forget the full ones."""
        if self._asleep():
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._store.spend(budgets, window_s)
                if self._clock() - self._pruned >= window_s:
                    self._pruned = self._clock()
                    await self._store.prune(window_s)
        except Exception as exc:
            self._gone(exc)
            return
        self._back()

    def _asleep(self) -> bool:
        return self._away_until is not None and self._clock() < self._away_until

    def _gone(self, exc: Exception) -> None:
        if self._away_until is None:
            log.warning(
                "credential checks: the fleet's failure budgets could not be reached (%s); each"
                " instance holds callers to its own budgets until they answer again",
                type(exc).__name__,
            )
        self._away_until = self._clock() + self._retry

    def _back(self) -> None:
        if self._away_until is not None:
            self._away_until = None
            log.warning("credential checks: the fleet's failure budgets answer again")
