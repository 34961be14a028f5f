"""Concurrent confirms must never wedge the gateway, however cold its caches are.

To make the race certain rather than likely, the test parks the confirms of a fresh gateway on
row locks it holds on their persons: each of them is then inside its transaction, holding one
of the primary pool's connections, when the locks are released together and they all reach the
rate table at once. (The rate table used to be loaded inside the confirm
transaction: a full pool of confirms then waited for ever for one more connection.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from app.db.local_pair import PairRecord
from tests.reliability.conftest import Launcher, NewPartner, NewPeople
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import GatewayProcess
from tests.reliability.observe import scrape, wait_until
from tests.reliability.workload import ConfirmSpec, confirm, current_month

pytestmark = [pytest.mark.reliability, pytest.mark.serial]

POOL_MAX = 10  # SSOGW_PRIMARY_POOL_MAX (the default)
BURST = POOL_MAX + 2
ANSWER_WITHIN_S = 8.0


@pytest.fixture
def cold_gateway(launcher: Launcher) -> Iterator[GatewayProcess]:
    process = launcher.start("cold-start", primary_pool_max=str(POOL_MAX), command_timeout_s="15")
    try:
        yield process
    finally:
        process.kill()


async def test_confirms_reaching_a_cold_rate_table_together_are_answered(
    cold_gateway: GatewayProcess,
    new_partner: NewPartner,
    new_people: NewPeople,
    rel_record: PairRecord,
) -> None:
    partner = await new_partner()
    month = current_month()
    people = await new_people(BURST)
    limits = httpx.Limits(max_connections=BURST + 2)
    async with httpx.AsyncClient(
        base_url=cold_gateway.base_url, timeout=ANSWER_WITHIN_S, limits=limits
    ) as http:
        locker = await asyncpg.connect(rel_record.primary_dsn)
        try:
            async with locker.transaction():
                await locker.execute(
                    "SELECT 1 FROM insured_persons WHERE national_id = ANY($1) FOR UPDATE",
                    people,
                )
                calls = [
                    asyncio.create_task(confirm(http, partner, ConfirmSpec.new(nid, month)))
                    for nid in people
                ]

                async def parked() -> bool:
                    samples = await scrape(http)
                    return samples.get('ssogw_requests_in_flight{protocol="soap"}', 0) >= BURST

                await wait_until(parked, timeout_s=5, what="the confirms parked on the locks")
                await asyncio.sleep(0.3)  # into their transactions, on the row locks
            released = time.monotonic()  # the locks go with the transaction
        finally:
            await locker.close()
        answers = await asyncio.gather(*calls)
    seconds = time.monotonic() - released
    answered = sum(1 for c in answers if c.ok)
    FIGURES.note(
        f"cold rate table: {answered} of {BURST} confirms released together answered "
        f"({seconds:.1f} s)"
    )
    assert answered == BURST, {c.error for c in answers if not c.ok}
