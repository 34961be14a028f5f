"""Attacks on session 20's admission fixes, in a fleet on a real database: each test fails on
the code it was written against because of the defect its docstring names, and says what the
correct behaviour is."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from app.main import Gateway
from app.settings import Settings
from tests.support.clock import PinnedClock
from tests.support.fleet import instance, verdict
from tests.support.wsse import digest_token


@pytest.fixture(scope="module")
async def fleet(settings: Settings, clock: PinnedClock) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two fresh instances on the session's database (a fleet behind a load balancer)."""
    async with (
        instance(settings, clock, "s20f-fleet-a") as a,
        instance(settings, clock, "s20f-fleet-b") as b,
    ):
        yield a, b


async def test_replays_of_one_captured_token_spend_the_partners_fleet_rate(
    gateway: Gateway, fleet: tuple[Gateway, Gateway]
) -> None:
    """Defect: since the nonce is claimed last (``Admission._admit_partner``: ``_check_rate``
    then ``_claim_nonce``), a replayed PasswordDigest token — correct digest, used nonce —
    takes a token from the partner's fleet-wide bucket (``rate_buckets``) before the ledger
    refuses it as ``replayed_nonce``. Whoever captured one request of the partner (no secret
    needed; from an address of its allowlist, where captures happen: its network, its NAT, an
    on-path box) resends it to every instance for the token's whole 2 x window, and the
    partner's own fresh calls are refused ``client.rate_limited`` across the fleet. Before the
    change a replay was refused at the digest, spending nothing.

    Correct: a replay spends none of the partner's rate (e.g. consult this instance's nonce
    cache before the rate, and/or claim before the rate and give the rate token back, or give
    the nonce back, whichever is refused): after 20 replays on two instances, the partner's
    next fresh call is admitted.
    """
    issued = await gateway.registry.add_partner(
        name=f"s20f-rate-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"], rate_limit=2.0
    )
    a, b = fleet
    captured = digest_token(issued.username, issued.password)
    assert await verdict(a, captured) == "ok"  # the partner's own call
    replays = [await verdict(gw, captured) for _ in range(10) for gw in (a, b)]
    assert "ok" not in replays, replays  # no replay is admitted: the ledger holds
    fresh = await verdict(a, digest_token(issued.username, issued.password))
    assert fresh == "ok", (
        f"the partner's fresh call was answered {fresh} after 20 replays of one captured token"
        f" (answered {sorted(set(replays))})"
    )
