"""Rate limits shared by the fleet: instances (here, limiters of their own, as each instance has
one) take leases from one bucket per principal in PostgreSQL; a lease is one round trip, never
one per call; an empty bucket says when the next token is due; a changed limit holds from the
next lease; without the database each instance holds the principal to its rate on its own."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from app.admission.rate_limiter import RateLimiter
from app.db.local_pair import free_port
from app.principals.shared_limits import RateBucketRepository
from app.settings import Settings

pytestmark = pytest.mark.db


class CountedBuckets:
    """The real shared buckets, counting the statements sent to them."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self.real = RateBucketRepository(pool)
        self.calls = 0

    async def take(
        self, kind: str, ident: int, *, rate: float, capacity: float, want: int, returned: int
    ) -> tuple[int, float]:
        self.calls += 1
        return await self.real.take(
            kind, ident, rate=rate, capacity=capacity, want=want, returned=returned
        )


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The primary as the service role, as a gateway connects."""
    pool = await asyncpg.create_pool(settings.primary_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


def key() -> tuple[str, int]:
    """A principal no other test uses."""
    return ("partner", secrets.randbelow(2**62) + 2**40)


async def admitted_during(
    limiters: list[RateLimiter], k: tuple[str, int], rate: float, s: float
) -> int:
    """Calls admitted in ``s`` seconds while every limiter is asked as fast as it answers."""
    admitted = 0
    deadline = time.monotonic() + s

    async def caller(limiter: RateLimiter) -> None:
        nonlocal admitted
        while time.monotonic() < deadline:
            wait = await limiter.take(k, rate)
            if wait == 0:
                admitted += 1
            else:
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))

    await asyncio.gather(*(caller(limiter) for limiter in limiters for _ in range(4)))
    return admitted


@pytest.mark.serial
async def test_three_instances_together_admit_the_rate(pool: asyncpg.Pool) -> None:
    rate, seconds = 20.0, 2.0
    k = key()
    fleet = [RateLimiter(buckets=RateBucketRepository(lambda: pool)) for _ in range(3)]
    await admitted_during(fleet, k, rate, 1.2)  # the first second's burst is spent here
    admitted = await admitted_during(fleet, k, rate, seconds)
    # At most the rate, plus one lease (two tokens) per instance held when the count began.
    assert rate * seconds * 0.8 <= admitted <= rate * seconds + 3 * 2, admitted
    # Each instance on its own would have let through three times as many.
    alone = [RateLimiter() for _ in range(3)]
    await admitted_during(alone, k, rate, 1.2)
    assert await admitted_during(alone, k, rate, seconds) > 2 * rate * seconds


async def test_a_lease_is_one_round_trip_shared_by_the_callers_waiting_for_it(
    pool: asyncpg.Pool,
) -> None:
    buckets = CountedBuckets(lambda: pool)
    limiter = RateLimiter(buckets=buckets)
    k = key()
    assert limiter.lease_size(1000) == 100
    waits = [await limiter.take(k, 1000) for _ in range(300)]
    assert waits == [0.0] * 300
    assert buckets.calls == 3, "a call per lease of 100"
    # 150 callers at once on a fresh principal: one request, sized for all of them.
    k = key()
    buckets.calls = 0
    waits = await asyncio.gather(*(limiter.take(k, 1000) for _ in range(150)))
    assert waits == [0.0] * 150
    assert buckets.calls == 1


async def test_an_empty_bucket_says_when_the_next_token_is_due(pool: asyncpg.Pool) -> None:
    buckets = CountedBuckets(lambda: pool)
    limiter = RateLimiter(buckets=buckets)
    k = key()
    assert [await limiter.take(k, 2) for _ in range(2)] == [0.0, 0.0]  # the burst: 2 tokens
    wait = await limiter.take(k, 2)
    assert 0.3 < wait <= 0.5, wait
    calls = buckets.calls
    for _ in range(50):  # refused here, until then, without asking the database again
        assert 0 < await limiter.take(k, 2) <= wait
    assert buckets.calls == calls
    await asyncio.sleep(wait + 0.02)
    assert await limiter.take(k, 2) == 0.0


async def test_a_principal_far_over_its_limit_costs_a_statement_per_lease_period(
    pool: asyncpg.Pool,
) -> None:
    buckets = CountedBuckets(lambda: pool)
    limiter = RateLimiter(buckets=buckets)  # at 100/s: leases of 10, a tenth of a second's
    k = key()
    while await limiter.take(k, 100) == 0.0:  # the burst: a second's worth
        pass
    buckets.calls = 0
    admitted, deadline = 0, time.monotonic() + 0.5
    while time.monotonic() < deadline:  # about 2,000 calls a second, twenty times the limit
        admitted += await limiter.take(k, 100) == 0.0
        await asyncio.sleep(0.0005)
    assert 40 <= admitted <= 60, admitted
    assert buckets.calls <= 7, "about one statement per lease period (0.1 s)"


async def test_a_changed_limit_holds_from_the_next_lease(pool: asyncpg.Pool) -> None:
    limiter = RateLimiter(buckets=RateBucketRepository(lambda: pool))
    k = key()
    assert [await limiter.take(k, 100) for _ in range(10)] == [0.0] * 10  # one lease of 10
    # Lowered to 1/s: the bucket (90 left) is capped at one second's worth at once.
    waits = [await limiter.take(k, 1) for _ in range(5)]
    assert waits.count(0.0) == 1, waits
    assert 0.5 < waits[-1] <= 1.0


async def test_what_a_lease_left_unspent_goes_back_to_the_bucket(pool: asyncpg.Pool) -> None:
    """Two instances, a principal at 4/s and leases of a second's worth: the first takes the
    whole bucket for one call. Once its lease has expired, its next request hands back the
    three tokens it did not spend, which the second instance then gets."""
    first, second = (
        RateLimiter(buckets=RateBucketRepository(lambda: pool), lease_s=1.0, lease_ttl_s=0.1)
        for _ in range(2)
    )
    k = key()
    assert await first.take(k, 4) == 0.0
    assert await second.take(k, 4) > 0  # the bucket is empty: the first holds the lease
    await asyncio.sleep(0.15)
    # The first hands back 3 with this request and takes up to 4 of what is there (3 + 0.6).
    assert await first.take(k, 4) == 0.0
    async with pool.acquire() as conn:
        tokens = await conn.fetchval(
            "SELECT tokens FROM rate_buckets WHERE kind = $1 AND principal_id = $2", *k
        )
    assert tokens < 1  # it took 3 back: without the hand-back it could have had at most 1


async def test_without_the_database_each_instance_holds_the_rate_alone(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    dead = await asyncpg.create_pool(
        f"postgresql://nobody@127.0.0.1:{free_port()}/none", min_size=0, max_size=1
    )
    current = {"pool": dead}
    buckets = CountedBuckets(lambda: current["pool"])
    limiter = RateLimiter(buckets=buckets, fallback_s=0.8)
    k = key()
    with caplog.at_level(logging.WARNING, logger="app.admission.rate_limiter"):
        admitted = await admitted_during([limiter], k, 5, 0.6)
    # One token to start with (no burst on a fall back), then 5 a second.
    assert 3 <= admitted <= 5, admitted
    assert buckets.calls == 1, "asked once, then the instance's own bucket until fallback_s"
    assert "could not be reached" in caplog.text
    # The database is back: after fallback_s the next call asks again, in the background (it
    # is answered by the instance's own bucket); leases are shared again, and it says so.
    current["pool"] = pool
    await asyncio.sleep(0.25)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.admission.rate_limiter"):
        assert await limiter.take(k, 5) == 0.0
        assert buckets.calls == 1
        await asyncio.sleep(0.1)
    assert buckets.calls == 2
    assert "answer again" in caplog.text
    assert [await limiter.take(k, 5) for _ in range(5)] == [0.0] * 5  # a full shared bucket
    await dead.close()
