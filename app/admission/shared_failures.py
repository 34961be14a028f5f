"""Failure budgets that hold for the fleet: ``FailureThrottle``'s budgets kept in PostgreSQL as
well (``failure_budgets``, migration 0021), so that a guesser spreading wrong secrets over the
instances, and over each instance's workers, gets the configured budget once, not once a
process.

Off the hot path: only a check that runs argon2 (a PasswordText or bearer secret no one
verified lately, never a PasswordDigest) asks, once it holds its place in the argon2 pool, so
the statements are bounded by the pool as the argon2 runs are: a read, then, before the run, a
spend that takes one failure of each budget only when every one has one left (checks racing
one another, on this instance or others, cannot all be let through by one failure left); a
check that holds gives it back. All are by the database's clock, so instances whose clocks
differ refill the same budget alike.

Each instance keeps its own budgets too (``FailureThrottle``), spent with these and lowered to
what these say is left where they refuse (``learn``): a caller throttled elsewhere is refused
here from memory until its budget refills, not read again for each call. While the database
does not answer (within ``TIMEOUT_S``, or an error) the instance's own budgets hold alone: the
fleet grants at most one budget a process, as before. The database is asked again ``RETRY_S``
later; the log says so once each way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: The longest a check waits for the shared budgets before its instance's own decide.
TIMEOUT_S = 1.0
#: While they are away, how long until they are asked again.
RETRY_S = 5.0


class FailureBudgets(Protocol):
    """The fleet's failure budgets (``app.principals.shared_limits.FailureBudgetRepository``):
    ``budgets`` are (name, size) as ``FailureThrottle.budgets`` gives them; what is left of
    each, by name, for those spent lately (the others are full)."""

    async def left(
        self, budgets: Sequence[tuple[str, int]], window_s: float
    ) -> Mapping[str, float]:
        """What is left now of each of ``budgets`` spent lately."""
        ...

    async def spend(
        self, budgets: Sequence[tuple[str, int]], window_s: float
    ) -> Mapping[str, float]:
        """Refill each of ``budgets`` for the time since it was last spent and, when every one
        has a failure left, spend one of each, at once; say what is left after (below 0 for
        one that had none: then none is spent)."""
        ...

    async def give_back(self, budgets: Sequence[tuple[str, int]], window_s: float) -> None:
        """Give one failure back to each of ``budgets``: the check they were spent for held."""
        ...

    async def prune(self, window_s: float) -> bool:
        """Forget some of the budgets unspent for ``window_s`` (full again), a bounded batch:
        whether more may be left."""
        ...


class FailureEvents(Protocol):
    def failure_budgets_asked(self, result: str) -> None:
        """The budgets were asked: ``answered`` or ``unreachable``."""
        ...


class SharedFailures:
    """Reads and spends the fleet's failure budgets, or says nothing when it cannot (module
    docstring): what it says is for ``FailureThrottle.learn``."""

    def __init__(
        self,
        store: FailureBudgets,
        *,
        timeout_s: float = TIMEOUT_S,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
        events: FailureEvents | None = None,
    ) -> None:
        self._store = store
        self._events = events
        self._timeout = timeout_s
        self._retry = retry_s
        self._clock = clock
        self._away_until: float | None = None  # None: the store answered last time
        self._pruned = clock()

    async def left(
        self, budgets: Sequence[tuple[str, int]], window_s: float
    ) -> Mapping[str, float]:
        """What the fleet has left of ``budgets`` spent lately; nothing when the store is
        away (the instance's own budgets decide)."""
        return await self._ask(self._store.left(budgets, window_s), window_s, prune=False)

    async def spend(
        self, budgets: Sequence[tuple[str, int]], window_s: float
    ) -> Mapping[str, float]:
        """Spend one failure of each of ``budgets`` for the fleet, unless one has none left,
        and say what is left (below 0: none was spent; nothing when the store is away: the
        instance's own budgets hold it); now and then forget the full ones."""
        return await self._ask(self._store.spend(budgets, window_s), window_s, prune=True)

    async def give_back(self, budgets: Sequence[tuple[str, int]], window_s: float) -> None:
        """Give back the failure ``spend`` took for a check that held: asked even while the
        store is taken for away since (another check timed out meanwhile), as the spend
        reached it."""
        await self._ask(self._gave_back(budgets, window_s), window_s, prune=False, while_away=True)

    async def _gave_back(
        self, budgets: Sequence[tuple[str, int]], window_s: float
    ) -> Mapping[str, float]:
        await self._store.give_back(budgets, window_s)
        return {}

    async def _ask(
        self,
        asked: Coroutine[Any, Any, Mapping[str, float]],
        window_s: float,
        *,
        prune: bool,
        while_away: bool = False,
    ) -> Mapping[str, float]:
        if self._asleep() and not while_away:
            asked.close()
            return {}
        deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            async with asyncio.timeout_at(deadline):
                left = await asked
        except Exception as exc:  # whatever keeps the store away: the instance's own budgets
            self._gone(exc)
            return {}
        self._back()
        if prune and self._clock() - self._pruned >= window_s:
            await self._prune(window_s, deadline)
        return left

    def _said(self, result: str) -> None:
        if self._events is not None:
            self._events.failure_budgets_asked(result)

    async def _prune(self, window_s: float, deadline: float) -> None:
        # A batch at a time, within what is left of the timeout: while batches come back full
        # (a flood's backlog), or one fails, the next spend prunes again instead of a window
        # later. A prune that fails drops nothing: the spend's answer stands (it committed).
        try:
            async with asyncio.timeout_at(deadline):
                more = await self._store.prune(window_s)
        except Exception as exc:
            log.debug("credential checks: pruning the fleet's failure budgets failed (%r)", exc)
            return
        if not more:
            self._pruned = self._clock()

    @property
    def asking(self) -> bool:
        """Whether the store is asked now (not taken for away)."""
        return not self._asleep()

    def _asleep(self) -> bool:
        return self._away_until is not None and self._clock() < self._away_until

    def _gone(self, exc: Exception) -> None:
        self._said("unreachable")
        if self._away_until is None:
            log.warning(
                "credential checks: the fleet's failure budgets could not be reached (%s); each"
                " instance holds callers to its own budgets until they answer again",
                type(exc).__name__,
            )
        self._away_until = self._clock() + self._retry

    def _back(self) -> None:
        self._said("answered")
        if self._away_until is not None:
            self._away_until = None
            log.warning("credential checks: the fleet's failure budgets answer again")
