"""Replay protection for the fleet: a WS-Security nonce is admitted once, by any instance, ever
within the window a token carrying it could be accepted in.

A PasswordDigest nonce is consumed only once its call is otherwise admitted (its digest correct,
its partner's standing, operation and rate judged by ``Admission``): a forger cannot burn a
partner's nonces, and a refused call writes no ledger row. It is judged in two places:

1. this instance's ``NonceCache``, free: a replay sent here again is refused at once;
2. the ledger in PostgreSQL (table ``wsse_nonces``, migration 0012; SQL in
   ``app.principals.nonce_ledger``): a unique key on (partner id, first 16 bytes of SHA-256 of
   the nonce's decoded bytes), so a replay sent to another instance, or to this one after a
   restart, is refused (``client.unauthenticated``, reason ``replayed_nonce``).

**How long a nonce is kept** (``keep_s``). A Created time is accepted up to the window W
(``SSOGW_WSSE_WINDOW_S``) either side of the judging instance's clock, so one instance accepts
a token for 2 x W at most; but each instance judges by its own clock, and another instance
whose clock lags this one's by D accepts it up to D longer. A ledger row is therefore kept
2 x W + M from its first use, M being ``CLOCK_MARGIN_S`` (60 s), the stated bound on how far
apart the instances' clocks may be (NTP keeps them within milliseconds; the margin covers a
node whose time service failed for a while): within it, no instance can accept a token whose
nonce's row is gone. Instances further apart than M could admit a replay for the difference
beyond M. This instance's ``NonceCache`` keeps 2 x W by its own clock,
which is all it needs for the tokens it judges itself.

No round trip of its own per call: the nonces of concurrent calls are claimed together, one
``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING`` per batch (group
commit, as the audit writer does), one batch in flight; the calls that arrive while it is out
form the next. An idle gateway sends a call's nonce at once (no waiting for company), so a
quiet inquiry pays one round trip and commit on the primary, a busy one shares it.

**Commit durability.** The ledger's pool runs with ``synchronous_commit = off``: a claim waits
neither for its WAL to reach the disk nor for a synchronous standby. If the primary crashes,
the claims of the last moments are lost (the un-flushed WAL tail, at most 3 x
``wal_writer_delay``, 600 ms by default; after a failover, what had not yet streamed to the
new primary), and a token captured in them could be replayed once, within its window. A
replayed confirm still posts nothing twice (``partnerTxnId`` and the months are unique on the
primary), so this costs at most a repeated inquiry, against a disk flush and a standby's
acknowledgement on every inquiry.

**When the ledger cannot answer** (the primary unreachable or slower than
``SSOGW_WSSE_NONCE_TIMEOUT_S``): a confirm or a cancel is refused (``server.store_unavailable``
— it needs the primary anyway, and a payment gateway fails closed), and its nonce is taken back
from this instance's memory: no call was admitted with it, so the retry the answer asks for is
judged afresh, as it would be on any other instance. An inquiry or a status call is admitted on
this instance's own memory alone (a replay to the same instance is still refused), logged and
counted (``ssogw_nonce_checks_degraded_total``), because a failover of the primary must not be
an outage for inquiries (the audit spool exists for the same reason);
``SSOGW_WSSE_NONCE_OUTAGE_ADMITS_READS=false`` refuses those too. After a failure the ledger is
not asked again for ``RETRY_AFTER_S``, so calls do not queue up behind timeouts.

**Size.** Every serving instance deletes expired rows every ``SSOGW_WSSE_NONCE_PRUNE_S`` (a
few thousand at a time, by the ``expires_at`` index): the table holds calls/s x (2 x the window
+ the margin) nonces (660,000 rows at 1,000 calls/s, 300 s and 60 s).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.admission.nonce_cache import NonceCache
from app.errors import StoreUnavailable

log = logging.getLogger(__name__)
#: Jitter from a generator of this module's own: the process-wide ``random`` is left to
#: whoever else draws from it (a property-based test running beside a served app, say).
_JITTER = random.Random()

#: How far apart the instances' clocks may be, seconds: a ledger row outlives twice the window
#: by this much (module docstring, "How long a nonce is kept").
CLOCK_MARGIN_S = 60.0
MAX_BATCH = 500
RETRY_AFTER_S = 1.0  # after a failure, the ledger is not asked again for this long
PRUNE_BATCH = 5_000  # expired rows deleted per statement

NonceKey = tuple[int, bytes]  # (partner id, ledger key of the decoded nonce)


def ledger_key(nonce: bytes) -> bytes:
    """The ledger's key of a decoded nonce: 16 bytes, whatever the nonce's length."""
    return hashlib.sha256(nonce).digest()[:16]


class NonceLedger(Protocol):
    """The fleet's record of used nonces (``app.principals.nonce_ledger``)."""

    async def claim(self, keys: Sequence[NonceKey], *, keep_s: float) -> set[NonceKey]:
        """Record ``keys`` (distinct); the ones that were not recorded yet. ``StoreUnavailable``
        when the primary cannot be reached."""
        ...

    async def prune(self, *, limit: int) -> int:
        """Delete up to ``limit`` expired rows; how many went."""
        ...


class ReplayEvents(Protocol):
    """What the guard reports (``app.observability.metrics.Metrics``)."""

    def nonce_batch_claimed(self, size: int, seconds: float) -> None: ...

    def nonce_check_degraded(self, operation: str) -> None: ...


@dataclass(slots=True)
class _Claim:
    key: NonceKey
    verdict: asyncio.Future[bool]


class ReplayGuard:
    """Says whether a partner's nonce is used for the first time, here and across the fleet."""

    def __init__(
        self,
        *,
        cache: NonceCache,
        ledger: NonceLedger | None,
        keep_s: float,
        timeout_s: float = 1.0,
        outage_admits: Collection[str] = (),
        prune_interval_s: float | None = None,
        events: ReplayEvents | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``ledger`` None: this instance's memory only (unit tests). ``outage_admits``: the
        operations admitted on memory alone while the ledger cannot answer. ``prune_interval_s``
        None: leave the pruning to other instances (an operator's command)."""
        self._cache = cache
        self._ledger = ledger
        self._keep_s = keep_s
        self._timeout_s = timeout_s
        self._outage_admits = frozenset(outage_admits)
        self._prune_interval_s = prune_interval_s
        self._events = events
        self._monotonic = monotonic
        self._queue: deque[_Claim] = deque()
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._down_until = float("-inf")

    async def start(self) -> None:
        """Start claiming in batches, and pruning where configured (once)."""
        if self._running or self._ledger is None:
            return
        self._running = True
        self._tasks.append(asyncio.create_task(self._claim_batches(), name="nonce-ledger"))
        if self._prune_interval_s is not None:
            self._tasks.append(asyncio.create_task(self._prune(), name="nonce-prune"))

    async def stop(self) -> None:
        """Settle the claims queued, then stop; later calls find the ledger unavailable."""
        self._running = False
        self._arrived.set()
        for task in self._tasks[1:]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def seen(self, partner_id: int, nonce: bytes) -> bool:
        """Whether this instance saw the nonce used within the window (its memory alone, no
        claim): a replay sent here again, told before anything is spent on it."""
        return self._cache.seen(str(partner_id), nonce)

    async def first_use(self, partner_id: int, nonce: bytes, *, operation: str) -> bool:
        """Whether ``nonce`` (decoded) is this partner's first use of it in the window: False
        for a replay; ``StoreUnavailable`` when the ledger cannot answer and ``operation``
        may not be admitted on this instance's memory alone."""
        if not self._cache.first_use(str(partner_id), nonce):
            return False
        if self._ledger is None:
            return True
        if not self._running or self._monotonic() < self._down_until:
            return self._unanswered(partner_id, nonce, operation)
        verdict: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Claim((partner_id, ledger_key(nonce)), verdict))
        self._arrived.set()
        try:
            # A caller cancelled now leaves its claim in the batch: its nonce is still taken.
            return await verdict
        except StoreUnavailable:
            return self._unanswered(partner_id, nonce, operation)

    def _unanswered(self, partner_id: int, nonce: bytes, operation: str) -> bool:
        if operation not in self._outage_admits:
            # Refused for the gateway's own failure: the nonce was not used, so its retry
            # meets the same judgement here as on any other instance.
            self._cache.forget(str(partner_id), nonce)
            raise _unavailable()
        if self._events is not None:
            self._events.nonce_check_degraded(operation)
        return True

    # --- the background tasks ------------------------------------------------------------------
    async def _claim_batches(self) -> None:
        try:
            while self._running or self._queue:
                if not self._queue:
                    self._arrived.clear()
                    await self._arrived.wait()
                    continue
                batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                await self._settle(batch)
        finally:
            leftover = list(self._queue)
            self._queue.clear()
            self._fail(leftover)

    async def _settle(self, batch: list[_Claim]) -> None:
        assert self._ledger is not None
        keys: dict[NonceKey, None] = {}  # distinct, in order: a key twice is a replay
        for claim in batch:
            keys.setdefault(claim.key)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                fresh = await self._ledger.claim(list(keys), keep_s=self._keep_s)
        except Exception as exc:
            self._down_until = self._monotonic() + RETRY_AFTER_S
            log.warning(
                "nonce ledger: %d claims unanswered (%s, sqlstate %s); the next %.0f s are"
                " judged without it",
                len(batch), type(exc).__name__, getattr(exc, "sqlstate", None), RETRY_AFTER_S,
            )  # fmt: skip
            self._fail(batch)
            return
        if self._events is not None:
            self._events.nonce_batch_claimed(len(batch), time.perf_counter() - started)
        for claim in batch:
            first = claim.key in fresh
            fresh.discard(claim.key)  # a second claim of the same key in a batch is a replay
            if not claim.verdict.done():
                claim.verdict.set_result(first)

    @staticmethod
    def _fail(batch: list[_Claim]) -> None:
        for claim in batch:
            if not claim.verdict.done():
                claim.verdict.set_exception(_unavailable())

    async def _prune(self) -> None:
        assert self._ledger is not None and self._prune_interval_s is not None
        while True:
            # Spread over the interval, so instances started together do not prune together.
            await asyncio.sleep(self._prune_interval_s * _JITTER.uniform(0.5, 1.5))
            try:
                deleted = PRUNE_BATCH
                while deleted == PRUNE_BATCH:  # a backlog: batch after batch
                    deleted = await self._ledger.prune(limit=PRUNE_BATCH)
            except Exception as exc:
                log.warning("nonce ledger: expired nonces not pruned (%s)", type(exc).__name__)


def _unavailable() -> StoreUnavailable:
    return StoreUnavailable(
        "Replay protection cannot reach the primary database; retry later.",
        store="primary",
        reason="nonce_ledger_unavailable",
    )
