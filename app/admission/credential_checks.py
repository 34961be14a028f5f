"""The expensive check of a presented secret (PasswordText, a bearer token's secret), made so it
cannot be turned against the gateway.

In order: a secret this principal presented successfully in the last few minutes is admitted
from memory (``VerifiedSecrets``); otherwise, a source address or a claimed name that failed
too often lately on this instance is refused without hashing (``FailureThrottle``, reason
``throttled``); otherwise the check takes a place in a small argon2 pool that refuses rather
than queues when full (``SecretHashing``, ``server.overloaded``), asks the fleet's budgets
(``SharedFailures``: ``throttled`` again when they are spent), and argon2 runs off the event
loop — against the principal's hash, or a dummy one when there is no principal to check
against, so that costs the same; the fleet's budgets are spent before the run and given back
when the secret holds. The same secret presented again for the same principal while its check
runs waits for that check instead of starting another: a busy client's burst after a restart
(64 connections, one token, nothing remembered yet) costs one argon2 run, not 64 that fill the
pool and answer ``server.overloaded``; such a check runs to its end even when the caller that
began it goes away. PasswordDigest never comes here: it is a SHA-1 against the partner's
secret, cheap as it is.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.admission.failure_throttle import FailureThrottle
from app.admission.secret_hashing import SecretHashing
from app.admission.shared_failures import FailureBudgets, FailureEvents, SharedFailures
from app.admission.verified_secrets import VerifiedSecrets
from app.errors import Unauthenticated
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class Presented:
    """A secret presented for a principal, as the check needs it.

    ``ident`` and ``stored_hash`` are None when there is nothing to check against (an unknown
    name; ``stored_hash`` alone when the principal may not use this kind of secret).
    """

    kind: str  # "partner" or "client"
    name: str  # the username or token id the caller claimed, known or not
    address: str  # the caller's source address
    secret: str
    ident: int | None
    stored_hash: str | None


#: Whether a secret held, and what the fleet's failure budgets have left after its failure.
_Verdict = tuple[bool, Mapping[str, float]]


@dataclass(frozen=True, slots=True)
class CredentialChecks:
    """Checks presented secrets: cache, throttle, then argon2 in a bounded pool."""

    hashing: SecretHashing = field(default_factory=SecretHashing)
    verified: VerifiedSecrets = field(default_factory=lambda: VerifiedSecrets(ttl_s=300))
    throttle: FailureThrottle = field(
        default_factory=lambda: FailureThrottle(
            per_pair=5, per_name=20, per_address=30, window_s=60
        )
    )
    # The fleet's failure budgets, spent with this instance's (None: this instance's alone).
    fleet: SharedFailures | None = None

    # The checks running now, by (kind, principal, stored hash, SHA-256 of the secret), each
    # apart from the callers waiting for it.
    running: dict[tuple[str, int, str, bytes], asyncio.Task[_Verdict]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        settings: Settings,
        *,
        budgets: FailureBudgets | None = None,
        events: FailureEvents | None = None,
    ) -> CredentialChecks:
        """The checks as configured (``SSOGW_CREDENTIAL_*``, ``SSOGW_ARGON2_*``), their failure
        budgets shared by the fleet through ``budgets`` (told to ``events``)."""
        return cls(
            fleet=None if budgets is None else SharedFailures(budgets, events=events),
            hashing=SecretHashing(
                workers=settings.credential_check_workers,
                queue=settings.credential_check_queue,
                memory_kib=settings.argon2_memory_kib,
                time_cost=settings.argon2_time_cost,
                parallelism=settings.argon2_parallelism,
            ),
            verified=VerifiedSecrets(ttl_s=settings.credential_cache_s),
            throttle=FailureThrottle(
                per_pair=settings.credential_failures_per_pair,
                per_name=settings.credential_failures_per_name,
                per_address=settings.credential_failures_per_address,
                window_s=settings.credential_failure_window_s,
            ),
        )

    async def holds(self, presented: Presented) -> bool:
        """Whether the secret matches the principal's hash (always False without one).

        Raises ``Unauthenticated`` (reason ``throttled``) when the address or the name failed
        too often lately, and ``Overloaded`` when the hashing pool is full (no budget spent).
        """
        p = presented
        if (
            p.ident is not None
            and p.stored_hash is not None
            and self.verified.holds(p.kind, p.ident, p.stored_hash, p.secret)
        ):
            return True
        name = f"{p.kind}:{p.name}"
        if self.throttle.throttled(p.address, name):
            raise _throttled()
        # A full pool (Overloaded) spends no failure budget: it says nothing of the secret,
        # and a client retrying through the gateway's own busy spell must not be locked out.
        # What a stranger's flood of such calls costs is bounded where it is recorded
        # (``RefusalTally``) and by the pool's own size.
        holds, fleet_left = await self._verify(p, name)
        if holds:
            assert p.ident is not None and p.stored_hash is not None  # a hash was matched
            self.verified.remember(p.kind, p.ident, p.stored_hash, p.secret)
            return True
        self.throttle.failed(p.address, name)
        self.throttle.learn(self.throttle.budgets(p.address, name), fleet_left)
        return False

    async def _verify(self, p: Presented, name: str) -> _Verdict:
        """argon2 for ``p``, shared with a check of the same secret for the same principal
        that is already running."""
        if p.ident is None or p.stored_hash is None:
            return await self._run(p, name)
        key = (p.kind, p.ident, p.stored_hash, hashlib.sha256(p.secret.encode()).digest())
        running = self.running.get(key)
        if running is None:
            # Apart from its callers: one that goes away leaves the check to end for the others
            # and for the give-back its spend is owed when the secret holds, not a failure spent
            # for a right secret and another for the callers joined to it, checked anew.
            running = self.running[key] = asyncio.ensure_future(self._run(p, name))
            running.add_done_callback(lambda ended: self._ended(key, ended))
        return await asyncio.shield(running)

    def _ended(self, key: tuple[str, int, str, bytes], ended: asyncio.Future[_Verdict]) -> None:
        if self.running.get(key) is ended:
            del self.running[key]
        if not ended.cancelled():
            ended.exception()  # retrieved: no "never retrieved" warning when no one waits

    async def _run(self, p: Presented, name: str) -> _Verdict:
        """One argon2 run in a place of the pool, taken first (``Overloaded`` before any
        statement), then, with the fleet's budgets, once one failure of each is spent for it
        (given back if the secret holds); what they have left after a failure is said with it
        (for ``FailureThrottle.learn`` once this instance's own are spent)."""
        slot = self.hashing.reserve()
        budgets = self.throttle.budgets(p.address, name)
        window_s = self.throttle.window_s
        spent: Mapping[str, float] = {}
        sent = False
        if self.fleet is not None:
            try:
                # Kept here only where the fleet refuses (FailureThrottle.learn).
                self.throttle.learn(budgets, await self.fleet.left(budgets, window_s))
                if self.throttle.throttled(p.address, name):
                    raise _throttled()
                # Spent before the run, when there is one to spend: checks racing this one, here
                # or on other instances, cannot all read the same failure left. Lost to a race,
                # nothing is learned: the failures may yet be given back.
                sent = self.fleet.asking
                spent = await self.fleet.spend(budgets, window_s)
                if any(left < 0 for left in spent.values()):
                    raise _throttled()
            except BaseException:  # throttled, or the call cancelled: the place is not used
                slot.release()
                raise
        holds = await self.hashing.verify(p.stored_hash, p.secret, slot=slot)
        if holds and self.fleet is not None and sent:
            # A success spends nothing: given back when spent, and when the spend was sent but
            # its answer lost (it may have been made; at most one more, up to the budget's size).
            await self.fleet.give_back(budgets, window_s)
        return holds, {} if holds else spent


def _throttled() -> Unauthenticated:
    return Unauthenticated("Too many failed checks lately; not checked.", reason="throttled")
