"""The replica goes away, falls behind, and comes back, under partner traffic: inquiries keep
succeeding (the primary serves them meanwhile and says so in ``servedBy``), /readyz and /metrics
tell the SRE, no error reaches a partner, and reads return to the replica when it is back."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from app.db.local_pair import SUPERUSER, LocalPair, PairRecord
from tests.reliability.conftest import Launcher, NewPeople, ensure_pair_up, replica_caught_up
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import GatewayProcess
from tests.reliability.observe import (
    READS_PRIMARY,
    REPLICA_LAG,
    REPLICA_UP,
    readiness,
    scrape,
    wait_until,
)
from tests.reliability.soap_wire import Partner, inquire_body
from tests.reliability.workload import Workload, send

pytestmark = [pytest.mark.reliability, pytest.mark.serial]
MAX_LAG_S = 2.0  # SSOGW_REPLICA_MAX_LAG_S of the test gateways


@pytest.fixture(scope="module")
def gateway(launcher: Launcher) -> Iterator[GatewayProcess]:
    process = launcher.start("replica-faults")
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture(scope="module")
async def client(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as http:
        yield http


@pytest.fixture
async def members(new_people: NewPeople, rel_record: PairRecord) -> list[str]:
    """Members already on the replica."""
    ids = await new_people(8)
    await replica_caught_up(rel_record)
    return ids


@pytest.fixture
async def pair_restored(rel_pair: tuple[LocalPair, PairRecord]) -> AsyncIterator[LocalPair]:
    """The pair, started and streaming again after the test whatever happened."""
    pair, record = rel_pair
    try:
        yield pair
    finally:
        await ensure_pair_up(pair, record)


async def served_by(client: httpx.AsyncClient, partner: Partner, nid: str) -> str:
    call = await send(client, partner, inquire_body(nid), kind="inquire")
    assert call.ok and call.answer is not None, call
    return call.answer.fields["servedBy"]


def assert_no_error_reached_a_partner(load: Workload) -> Counter[str]:
    inquiries = load.of("inquire")
    assert inquiries, "no traffic was sent"
    failed = [c for c in inquiries if not c.ok]
    assert not failed, failed[:5]
    return Counter(c.answer.fields["servedBy"] for c in inquiries if c.answer is not None)


async def test_replica_down_then_back(
    client: httpx.AsyncClient,
    partner: Partner,
    members: list[str],
    pair_restored: LocalPair,
) -> None:
    assert await served_by(client, partner, members[0]) == "replica"
    before = await scrape(client)
    assert before[REPLICA_UP] == 1
    async with Workload(client, partner, members, inquirers=4, max_seconds=60) as load:
        await asyncio.to_thread(pair_restored.stop, "replica")
        stopped = time.monotonic()

        async def replica_reported_down() -> bool:
            return (await scrape(client))[REPLICA_UP] == 0

        await wait_until(replica_reported_down, timeout_s=5, what="ssogw_replica_up = 0")
        await asyncio.sleep(1.0)  # traffic on the fallback path
        assert await served_by(client, partner, members[1]) == "primary"
        status, body = await readiness(client)
        # Ready (the primary serves reads), and /readyz says the replica is gone.
        assert status == 200, body
        assert body["replicas"][0]["up"] is False and body["replicas"][0]["fresh"] is False, body
        during = await scrape(client)
        assert during[READS_PRIMARY] > before.get(READS_PRIMARY, 0)
        assert during[REPLICA_LAG] == -1

        await asyncio.to_thread(pair_restored.start, "replica")

        async def back_on_replica() -> bool:
            return await served_by(client, partner, members[2]) == "replica"

        back = await wait_until(back_on_replica, timeout_s=15, what="reads back on the replica")
    paths = assert_no_error_reached_a_partner(load)
    assert paths["primary"] > 0 and paths["replica"] > 0, paths
    assert (await scrape(client))[REPLICA_UP] == 1
    FIGURES.note(
        f"replica down: {len(load.calls)} inquiries, none failed ({dict(paths)}); reads back on "
        f"the replica {back:.1f} s after it restarted ({time.monotonic() - stopped:.1f} s outage)"
    )


async def test_replica_lagging_then_caught_up(
    client: httpx.AsyncClient,
    partner: Partner,
    members: list[str],
    new_people: NewPeople,
    rel_record: PairRecord,
    pair_restored: LocalPair,
) -> None:
    assert await served_by(client, partner, members[0]) == "replica"
    # Only the superuser may pause and resume replay.
    replica = await asyncpg.connect(rel_record.dsn(rel_record.replica_port, role=SUPERUSER))
    try:
        async with Workload(client, partner, members, inquirers=4, max_seconds=60) as load:
            await replica.execute("SELECT pg_wal_replay_pause()")
            paused = time.monotonic()

            async def lag_past_the_bound() -> bool:
                await new_people(1)  # the primary keeps writing; the replica replays nothing
                return (await scrape(client))[REPLICA_LAG] > MAX_LAG_S

            await wait_until(
                lag_past_the_bound, timeout_s=15, what="lag past the bound", every_s=0.2
            )
            before = await scrape(client)
            await asyncio.sleep(0.5)
            # Someone registered after the replica stopped replaying is found all the same.
            (newcomer,) = await new_people(1)
            assert await served_by(client, partner, newcomer) == "primary"
            status, body = await readiness(client)
            assert status == 200, body
            entry = body["replicas"][0]
            assert entry["up"] is True and entry["fresh"] is False, entry
            assert entry["lagSeconds"] > MAX_LAG_S and entry["lagBytes"] > 0, entry
            after = await scrape(client)
            assert after[READS_PRIMARY] > before.get(READS_PRIMARY, 0)
            lag_seen = after[REPLICA_LAG]

            await replica.execute("SELECT pg_wal_replay_resume()")

            async def back_on_replica() -> bool:
                return await served_by(client, partner, newcomer) == "replica"

            back = await wait_until(back_on_replica, timeout_s=15, what="reads back on the replica")
            assert (await scrape(client))[REPLICA_LAG] <= MAX_LAG_S
    finally:
        await replica.close()
    paths = assert_no_error_reached_a_partner(load)
    assert paths["primary"] > 0 and paths["replica"] > 0, paths
    FIGURES.note(
        f"replica lagging ({lag_seen:.1f} s at its worst, bound {MAX_LAG_S:g} s): "
        f"{len(load.calls)} inquiries, none failed ({dict(paths)}); back on the replica "
        f"{back:.1f} s after replay resumed ({time.monotonic() - paused:.1f} s paused)"
    )
