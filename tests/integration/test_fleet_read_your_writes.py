"""Read-your-writes for the whole fleet: a payment confirmed on one instance is never offered
again by another, because payments commit with ``synchronous_commit = remote_apply`` against a
synchronous standby (the session pair's standby, made synchronous for this module and made
asynchronous again afterwards).

Two instances on the session's pair, separate ``Gateway`` objects with their own pools, read
routers and RecentWrites: a confirm on A, an inquiry on B right after, a thousand times. The
confirm's added cost is measured too: the same confirms with ``remote_apply`` and ``local``
(``pytest -s`` prints the figures).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from app.counter.records import InquiryRequest
from app.db.local_failover import synchronous
from app.db.local_pair import LocalPair, PairRecord
from app.errors import StoreUnavailable
from app.main import Gateway, build_gateway, start_gateway, stop_gateway
from app.settings import Settings
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, confirm_request, today
from tests.support.people import add_person, wait_replayed
from tests.support.wsse import digest_token

TRIES = 1000
COUNTERS = 8  # counters working at once, each confirm followed by its inquiry
LATENCY_CONFIRMS = 150


@pytest.fixture(scope="module")
def synchronous_standby(pg_pair: tuple[LocalPair, PairRecord]) -> Iterator[None]:
    """The session's standby in the primary's synchronous_standby_names for this module."""
    pair, _ = pg_pair
    synchronous(pair, on=True)
    try:
        yield
    finally:
        synchronous(pair, on=False)


async def _instance(
    settings: Settings, clock: PinnedClock, name: str, **changes: object
) -> Gateway:
    instance = settings.model_copy(
        update={"instance_id": f"{settings.instance_id}-{name}", **changes}
    )
    gw = build_gateway(instance, clock=clock)
    await start_gateway(gw, background=False)
    return gw


@pytest.fixture(scope="module")
async def fleet(
    settings: Settings, clock: PinnedClock, synchronous_standby: None
) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Instances A and B: separate Gateway objects, pools, routers and RecentWrites."""
    a = await _instance(settings, clock, "fleet-a")
    b = await _instance(settings, clock, "fleet-b")
    try:
        yield a, b
    finally:
        await stop_gateway(b)
        await stop_gateway(a)


async def _partner_token(gw: Gateway) -> tuple[str, str]:
    issued = await gw.registry.add_partner(
        name=f"fleet-{uuid.uuid4().hex[:10]}", cidrs=["127.0.0.0/8"], rate_limit=100_000
    )
    return issued.username, issued.password


async def _members(gw: Gateway, count: int) -> list[str]:
    """``count`` fresh Section 40 members, already on the replica."""
    async with gw.db.primary.acquire() as conn:
        async with conn.transaction():
            ids = [
                await add_person(conn, section=40, coverage_start=today().minus(6))
                for _ in range(count)
            ]
        await wait_replayed(conn, [s.pool for s in gw.db.router.replicas])
    return ids


async def test_a_month_paid_on_one_instance_is_never_offered_by_another(
    fleet: tuple[Gateway, Gateway],
) -> None:
    a, b = fleet
    assert a.db is not b.db and a.counter is not b.counter
    username, password = await _partner_token(a)
    members = await _members(a, TRIES)
    month = str(today())
    await b.db.router.probe()
    offered, served = 0, Counter[str]()

    async def counter(ids: list[str]) -> None:
        # One counter: a confirm on A, then at once an inquiry on B for the same person.
        nonlocal offered
        for nid in ids:
            await a.counter.confirm(
                caller=caller(), credentials=digest_token(username, password),
                request=confirm_request(nid, [month], 7000),
            )  # fmt: skip
            seen = await b.counter.inquire(
                caller=caller(), credentials=digest_token(username, password),
                request=InquiryRequest(nid),
            )  # fmt: skip
            offered += month in [m.month for m in seen.months]
            served[seen.served_by.value] += 1

    started = time.perf_counter()
    await asyncio.gather(*(counter(members[i::COUNTERS]) for i in range(COUNTERS)))
    elapsed = time.perf_counter() - started
    print(
        f"\nfleet read-your-writes: {TRIES} confirms on A, each followed at once by an inquiry"
        f" on B ({COUNTERS} counters at a time):"
        f" {offered} offered the paid month again; served by {dict(served)}; {elapsed:.1f} s"
    )
    assert offered == 0
    # The replica served most of them: the test is about the standby, not the primary.
    assert served["replica"] >= TRIES // 2, served


async def _timed_confirms(
    gw: Gateway, replica: asyncpg.Pool, members: list[str]
) -> tuple[list[float], int]:
    """Each confirm's time, and how many of the paid months the standby already had when it
    was answered."""
    username, password = await _partner_token(gw)
    month = str(today())
    times, on_standby = [], 0
    for nid in members:
        begun = time.perf_counter()
        await gw.counter.confirm(
            caller=caller(), credentials=digest_token(username, password),
            request=confirm_request(nid, [month], 7000),
        )  # fmt: skip
        times.append(time.perf_counter() - begun)
        on_standby += await replica.fetchval(
            "SELECT count(*) FROM paid_months WHERE national_id = $1", nid
        )
    return times, on_standby


async def test_remote_apply_puts_the_payment_on_the_standby_before_the_answer(
    fleet: tuple[Gateway, Gateway], settings: Settings, clock: PinnedClock
) -> None:
    a, b = fleet
    local = await _instance(settings, clock, "fleet-local", payment_synchronous_commit="local")
    try:
        replica = b.db.router.replicas[0].pool
        members = await _members(a, 2 * LATENCY_CONFIRMS)
        # Alternating rounds, so both see the same machine.
        applied: list[float] = []
        unwaited: list[float] = []
        applied_seen = unwaited_seen = 0
        for start in range(0, LATENCY_CONFIRMS, 50):
            times, seen = await _timed_confirms(a, replica, members[start : start + 50])
            applied += times
            applied_seen += seen
            batch = members[LATENCY_CONFIRMS + start : LATENCY_CONFIRMS + start + 50]
            times, seen = await _timed_confirms(local, replica, batch)
            unwaited += times
            unwaited_seen += seen
            await asyncio.sleep(0)
    finally:
        await stop_gateway(local)

    def ms(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1] * 1000

    print(
        f"\nconfirm latency, {LATENCY_CONFIRMS} each (service layer, session pair):"
        f" remote_apply p50 {ms(applied, 50):.2f} ms p95 {ms(applied, 95):.2f} ms;"
        f" local p50 {ms(unwaited, 50):.2f} ms p95 {ms(unwaited, 95):.2f} ms;"
        f" on the standby at the answer: remote_apply {applied_seen}/{LATENCY_CONFIRMS},"
        f" local {unwaited_seen}/{LATENCY_CONFIRMS}"
    )
    assert applied_seen == LATENCY_CONFIRMS


@pytest.mark.serial
async def test_a_standby_that_does_not_apply_makes_payments_fail_retryably_not_hang(
    fleet: tuple[Gateway, Gateway],
    settings: Settings,
    clock: PinnedClock,
    replica_superuser: asyncpg.Connection,
) -> None:
    """The synchronous standby connected but not applying (replay paused: as slow as it gets):
    a payment's commit waits its bound, is answered with the retryable code, and the same
    request sent again once the standby applies answers with the payment, made once."""
    impatient = await _instance(settings, clock, "fleet-impatient", payment_commit_wait_s=0.5)
    try:
        username, password = await _partner_token(impatient)
        (nid,) = await _members(impatient, 1)
        request = confirm_request(nid, [str(today())], 7000)
        await replica_superuser.execute("SELECT pg_wal_replay_pause()")
        try:
            begun = time.perf_counter()
            with pytest.raises(StoreUnavailable) as refused:
                await impatient.counter.confirm(
                    caller=caller(), credentials=digest_token(username, password),
                    request=request,
                )  # fmt: skip
            waited = time.perf_counter() - begun
        finally:
            await replica_superuser.execute("SELECT pg_wal_replay_resume()")
        assert refused.value.details.get("reason") == "commit_unconfirmed", refused.value.details
        assert refused.value.retryable and 0.5 <= waited < 2.0, waited
        again = await impatient.counter.confirm(
            caller=caller(), credentials=digest_token(username, password), request=request
        )
        assert again.replayed, "the first attempt committed on the primary: it is answered"
        payments = await impatient.db.primary.fetchval(
            "SELECT count(*) FROM payments WHERE national_id = $1", nid
        )
        assert payments == 1
    finally:
        await stop_gateway(impatient)
