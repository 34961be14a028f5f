"""A partner's and a client's rate limit hold for the fleet: three `ssogw serve` processes on one
database, callers spread over all three asking ten times the limit, and the calls admitted
each second stay within the limit (+10 %), not three times it.

Calls are counted once every caller has been refused once: a bucket starts full, and its
burst of one second's worth is allowed. At most the instances' leases (two tokens each) may
have been held when counting began. Refused calls say when to come back (``Retry-After``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from app.db.local_pair import PairRecord
from app.principals.registry import Registry
from tests.reliability.conftest import LOOPBACK, Launcher, NewPartner, NewPeople, replica_caught_up
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import GatewayProcess
from tests.reliability.soap_wire import CT11, inquire_body, read_answer, signed

pytestmark = [pytest.mark.reliability, pytest.mark.serial]

RATE = 20.0
MEASURE_S = 4.0
DRAIN_WITHIN_S = 15.0
CALLERS_PER_INSTANCE = 4
PAUSE_S = 0.01  # between one caller's answer and its next call: ~10 × RATE in all

Call = Callable[[httpx.AsyncClient], Awaitable[tuple[str, float | None]]]


@pytest.fixture(scope="module")
def fleet(launcher: Launcher) -> Iterator[list[GatewayProcess]]:
    started = [launcher.start(f"fleet-{n}") for n in range(3)]
    try:
        yield started
    finally:
        for process in started:
            process.kill()


@pytest.fixture(scope="module")
async def nid(new_people: NewPeople, rel_record: PairRecord) -> str:
    (person,) = await new_people(1)
    await replica_caught_up(rel_record)
    return person


async def drive(fleet: list[GatewayProcess], call: Call) -> tuple[Counter[str], list[float]]:
    """Call through every instance as fast as answered: until the bucket is drained (every
    caller has been refused), then for MEASURE_S more; the outcomes of that window (admitted
    ones also by instance) and the Retry-After values seen in it."""
    for process in fleet:  # one call each first: a bearer secret is verified (argon2) once
        async with httpx.AsyncClient(base_url=process.base_url, timeout=30) as http:
            await call(http)
    outcomes: Counter[str] = Counter()
    retry_after: list[float] = []
    callers = len(fleet) * CALLERS_PER_INSTANCE
    refused_once: set[int] = set()
    drained = asyncio.Event()
    window: list[float] = []

    async def caller(n: int, process: GatewayProcess) -> None:
        async with httpx.AsyncClient(base_url=process.base_url, timeout=10) as http:
            while not window or time.monotonic() < window[1]:
                outcome, wait = await call(http)
                now = time.monotonic()
                if outcome != "ok" and not drained.is_set():
                    refused_once.add(n)
                    if len(refused_once) == callers:  # the burst is spent: measure from now
                        window[:] = [now, now + MEASURE_S]
                        drained.set()
                elif window and window[0] <= now < window[1]:
                    outcomes[outcome] += 1
                    if outcome == "ok":
                        outcomes[f"ok via {process.name}"] += 1
                    if wait is not None:
                        retry_after.append(wait)
                await asyncio.sleep(PAUSE_S)

    tasks = [caller(n, p) for n, p in enumerate(fleet * CALLERS_PER_INSTANCE)]
    await asyncio.wait_for(asyncio.gather(*tasks), DRAIN_WITHIN_S + MEASURE_S + 5)
    return outcomes, retry_after


def check(kind: str, outcomes: Counter[str], refused: str, fleet: list[GatewayProcess]) -> None:
    admitted = outcomes["ok"]
    FIGURES.note(
        f"fleet rate limit, {kind} at {RATE:g}/s over 3 instances: {admitted / MEASURE_S:.1f}"
        f" admitted/s ({outcomes[refused] / MEASURE_S:.0f} refused/s), by instance "
        + ", ".join(str(outcomes[f"ok via {p.name}"]) for p in fleet)
    )
    assert set(outcomes) <= {"ok", refused} | {f"ok via {p.name}" for p in fleet}, outcomes
    assert outcomes[refused] > admitted / 4, "the callers asked beyond the limit throughout"
    assert RATE * MEASURE_S * 0.7 <= admitted <= RATE * MEASURE_S * 1.1, admitted
    assert all(outcomes[f"ok via {p.name}"] > 0 for p in fleet), outcomes


async def test_a_partners_limit_holds_across_three_instances(
    fleet: list[GatewayProcess], new_partner: NewPartner, nid: str
) -> None:
    partner = await new_partner(rate_limit=RATE)

    async def inquire(http: httpx.AsyncClient) -> tuple[str, float | None]:
        response = await http.post(
            "/soap/v1", content=signed(partner, inquire_body(nid)), headers={"content-type": CT11}
        )
        answer = read_answer(response)
        if answer.code == "client.rate_limited":
            assert answer.retryable, answer
        return answer.code, None

    outcomes, _ = await drive(fleet, inquire)
    check("a partner (SOAP)", outcomes, "client.rate_limited", fleet)


async def test_a_clients_limit_holds_across_three_instances(
    fleet: list[GatewayProcess], registry: Registry, nid: str
) -> None:
    issued = await registry.add_client(
        name=f"fleet-{uuid.uuid4().hex[:8]}", scopes=["counter"], cidrs=LOOPBACK, rate_limit=RATE
    )
    headers = {"authorization": f"Bearer {issued.token}"}

    async def inquire(http: httpx.AsyncClient) -> tuple[str, float | None]:
        response = await http.get(f"/api/v1/insured/{nid}/contributions", headers=headers)
        if response.status_code == 429:
            body = response.json()
            assert int(response.headers["retry-after"]) >= 1
            return body["code"], float(body["retryAfterS"])
        assert response.status_code == 200, response.text[:300]
        return "ok", None

    outcomes, retry_after = await drive(fleet, inquire)
    check("a client (REST)", outcomes, "client.rate_limited", fleet)
    # When the instance's next lease is due: within a lease's time (two tokens, 0.1 s), not a
    # made-up second.
    assert retry_after and all(0 < wait <= 2 / RATE + 0.01 for wait in retry_after), max(
        retry_after
    )
