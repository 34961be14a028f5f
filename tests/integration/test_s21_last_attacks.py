"""Last attacks on the fleet's failure budgets (app/admission/shared_failures.py): a check
whose secret holds must spend nothing of them, whatever else the store does meanwhile."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Mapping, Sequence

import asyncpg
import pytest

from app.admission.shared_failures import SharedFailures
from app.main import Gateway
from app.principals.shared_limits import FailureBudgetRepository, RateBucketRepository
from app.settings import Settings

pytestmark = pytest.mark.db

STORED = "SELECT failures_left FROM failure_budgets WHERE key = $1"


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def checked(fleet: SharedFailures, budgets: Sequence[tuple[str, int]]) -> None:
    """What ``CredentialChecks._run`` does with the fleet for a secret that holds."""
    spent: Mapping[str, float] = await fleet.spend(budgets, 60.0)
    assert all(left >= 0 for left in spent.values())
    if spent:
        await fleet.give_back(budgets, 60.0)


@pytest.mark.serial
async def test_a_right_secret_gets_its_failure_back_though_another_check_timed_out_meanwhile(
    owner_pool: asyncpg.Pool, gateway: Gateway
) -> None:
    """A client's check spends its budgets, then runs argon2; meanwhile another check's spend
    waits for a row another instance's stalled transaction holds, past the store's timeout, so
    the store is taken for away. The client's secret holds, but its give-back is skipped as
    the store is away: the failure its right secret spent stays spent in the fleet's budget,
    and a few such lock the client out for the window."""
    fleet = SharedFailures(
        FailureBudgetRepository(lambda: gateway.db.admission_pool), timeout_s=0.3, clock=Ticks()
    )
    key, held = (f"pair|192.0.2.9|client:{uuid.uuid4().hex[:12]}" for _ in range(2))
    assert await fleet.spend([(key, 2)], 60.0) == {key: 1.0}  # before the client's argon2
    await owner_pool.execute(
        "INSERT INTO failure_budgets VALUES ($1, 2, 2, statement_timestamp())", held
    )
    async with owner_pool.acquire() as elsewhere, elsewhere.transaction():
        await elsewhere.execute("SELECT 1 FROM failure_budgets WHERE key = $1 FOR UPDATE", held)
        assert await fleet.spend([(held, 2)], 60.0) == {}  # timed out: taken for away
    await fleet.give_back([(key, 2)], 60.0)  # the client's secret held
    assert await owner_pool.fetchval(STORED, key) == 2, "the right secret's failure is kept"


class SlowPrune(FailureBudgetRepository):
    """The fleet's budgets, whose prune outlasts the store's timeout (the pool's connections
    all taken by payments when it asks for one, say)."""

    async def prune(self, window_s: float) -> bool:
        await asyncio.sleep(0.5)
        return await super().prune(window_s)


@pytest.mark.serial
async def test_a_prune_outlasting_the_timeout_keeps_the_spends_answer(
    owner_pool: asyncpg.Pool, gateway: Gateway
) -> None:
    """The prune due after a spend outlasts the store's timeout: the spend has committed, but
    its answer is dropped with the prune's, so a check whose secret then holds gives nothing
    back, and the failure its right secret spent stays spent in the fleet's budget."""
    ticks = Ticks()
    fleet = SharedFailures(SlowPrune(lambda: gateway.db.admission_pool), timeout_s=0.3, clock=ticks)
    key = f"pair|192.0.2.10|client:{uuid.uuid4().hex[:12]}"
    ticks.now += 60  # a window since this instance last pruned
    await checked(fleet, [(key, 2)])
    assert await owner_pool.fetchval(STORED, key) == 2, "the right secret's failure is kept"


async def test_a_take_overtaken_during_a_stall_is_not_given_a_full_bucket(
    owner_pool: asyncpg.Pool, settings: Settings
) -> None:
    """A principal's bucket row is held a while (a stalled statement, say: a commit waiting
    for the standby) and its takes queue. A take that began later gets the row first (arriving
    as the holder commits, it does not queue) and writes its own time; the earlier take then
    finds the refill more than a second ahead of its statement's time and takes the bucket
    as full: every take overtaken so mints a bucket. (Here the later take runs in the holder's
    transaction, so that it gets the row first every time.)"""
    pool = await asyncpg.create_pool(settings.primary_dsn, min_size=1, max_size=2)
    try:
        buckets = RateBucketRepository(lambda: pool)
        k = ("partner", secrets.randbelow(2**62) + 2**40)
        rate = {"rate": 1.0, "capacity": 1.0, "want": 1, "returned": 0}
        assert await buckets.take(*k, **rate) == (1, 0.0)  # emptied
        async with owner_pool.acquire() as stalled, stalled.transaction():
            await stalled.execute(
                "SELECT 1 FROM rate_buckets WHERE kind = $1 AND principal_id = $2 FOR UPDATE", *k
            )
            earlier = asyncio.create_task(buckets.take(*k, **rate))  # waits for the row
            await asyncio.sleep(1.5)
            assert (await RateBucketRepository(lambda: stalled).take(*k, **rate))[0] == 1
        taken, _ = await earlier
        assert taken == 0, "a second token within 1.5 s of a bucket of one at 1/s"
    finally:
        await pool.close()
