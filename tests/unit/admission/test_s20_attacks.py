"""Session 20 attacks on admission, at unit level: each test fails on the code it was written
against because of the defect its docstring names."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

from app.admission.failure_throttle import FailureThrottle
from app.admission.nonce_cache import NonceCache
from app.admission.replay_guard import NonceKey, ReplayGuard
from app.errors import StoreUnavailable


def test_every_ipv4_caller_of_a_dual_stack_listener_shares_one_failure_budget() -> None:
    """Defect: ``app.admission.failure_throttle.address_key`` counts an IPv6 address by its
    /64, and an IPv4-mapped address (how a listener on ``::`` — ``ssogw serve --host ::``,
    made by ``bind_listeners`` without ``IPV6_V6ONLY`` — reports every IPv4 peer:
    ``::ffff:198.51.100.7``) is an IPv6 address, so every IPv4 caller of the instance is
    counted as the one "address" ``::/64``. One stranger failing ``per_address`` times (30 a
    minute by default, made-up token ids) holds back every other IPv4 caller's credential check
    (``throttled``), a REST client or PasswordText partner whose secret is not remembered yet
    (after a restart, or after the change listener reconnects and forgets all).

    Correct: an IPv4-mapped address is counted as the IPv4 address it maps: another host's
    budget is untouched by the stranger's failures.
    """
    throttle = FailureThrottle(per_pair=5, per_name=20, per_address=3, window_s=60)
    for guess in range(3):
        throttle.failed("::ffff:198.51.100.7", f"client:guess{guess}")
    assert throttle.throttled("::ffff:198.51.100.7", "client:guess9")  # the stranger: held back
    assert not throttle.throttled("::ffff:203.0.113.9", "client:payments-app"), (
        "another IPv4 host was held back by a stranger's failures"
    )


class UnreachableLedger:
    """The fleet's nonce ledger while the primary cannot be reached."""

    async def claim(self, keys: Sequence[NonceKey], *, keep_s: float) -> set[NonceKey]:
        raise StoreUnavailable("the primary database is unavailable", store="primary")

    async def prune(self, *, limit: int) -> int:
        return 0


async def test_a_confirm_refused_for_want_of_the_ledger_is_a_replay_when_retried() -> None:
    """Defect: ``ReplayGuard.first_use`` records the nonce in this instance's ``NonceCache``
    before it asks the ledger. When the ledger cannot answer, a confirm is refused with
    ``server.store_unavailable`` — retryable: "retry the same request" — but its nonce stays
    taken here, though no call was admitted with it and the ledger never recorded it. The
    retry of that same request is then answered as a replayed nonce (``client.unauthenticated``,
    not retryable: a counter takes it for a credential problem), by this instance only; another
    instance, or this one after a restart, admits the same bytes once the primary is back. A
    refusal for the gateway's own failure leaves the nonce half-taken.

    Correct: a nonce whose call was refused because the ledger could not answer is not held as
    used (the cache entry is taken back), so the retry meets the same judgement on every
    instance: ``server.store_unavailable`` while the ledger is away, admitted once it answers.
    """
    guard = ReplayGuard(
        cache=NonceCache(window_s=600),
        ledger=UnreachableLedger(),
        keep_s=600,
        outage_admits={"InquireContribution", "GetPaymentStatus"},
    )
    await guard.start()
    try:
        nonce = os.urandom(16)
        with pytest.raises(StoreUnavailable):
            await guard.first_use(7, nonce, operation="ConfirmPayment")
        try:
            verdict = await guard.first_use(7, nonce, operation="ConfirmPayment")
        except StoreUnavailable:
            return  # the retry is judged as the first call was: correct
        assert verdict, "the retry of a confirm refused for the ledger's outage is a 'replay'"
    finally:
        await guard.stop()
