"""A rate bucket whose last refill is ahead of the database's clock: written before the clock
was stepped back (NTP on a VM resumed, an operator's correction). ``refilled_at`` never moved
back, so such a bucket refilled not at all until the clock caught up, and its principal was
refused ``rate_limited`` on every instance for as long as the step, not a second."""

from __future__ import annotations

import secrets

import asyncpg
import pytest

from app.main import Gateway
from app.principals.shared_limits import RateBucketRepository

pytestmark = pytest.mark.db


async def test_a_bucket_refilled_ahead_of_the_clock_refills_within_a_second(
    gateway: Gateway, owner_pool: asyncpg.Pool
) -> None:
    buckets = RateBucketRepository(lambda: gateway.db.admission_pool)
    ident = secrets.randbelow(2**40) + 2**41  # a principal of its own
    taken, _ = await buckets.take("partner", ident, rate=10, capacity=10, want=10, returned=0)
    assert taken == 10  # the bucket is empty
    # As a bucket emptied an hour before the database's clock was stepped back by an hour.
    await owner_pool.execute(
        "UPDATE rate_buckets SET refilled_at = statement_timestamp() + interval '1 hour'"
        " WHERE kind = 'partner' AND principal_id = $1",
        ident,
    )
    taken, _ = await buckets.take("partner", ident, rate=10, capacity=10, want=10, returned=0)
    assert taken == 10, "the bucket waits for the clock to catch up"
    at = await owner_pool.fetchval(
        "SELECT refilled_at <= statement_timestamp() FROM rate_buckets"
        " WHERE kind = 'partner' AND principal_id = $1",
        ident,
    )
    assert at, "the refill's time stays ahead of the clock"
