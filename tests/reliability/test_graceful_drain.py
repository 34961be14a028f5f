"""SIGTERM while requests are in flight: /readyz turns 503 at once, requests arriving during the
drain are still served, then the listener closes, and every request in flight completes with a
proper answer (and its audit record) before the process exits cleanly.

The in-flight confirms are held inside their transactions by row locks the test takes on their
persons, so they are certainly still running when the signal arrives; slow clients trickling
their bodies across the signal are in flight as well."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from app.db.local_pair import PairRecord
from tests.reliability.conftest import Launcher, NewPeople, replica_caught_up
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import GatewayProcess
from tests.reliability.ledger_check import audit_outcomes
from tests.reliability.observe import readiness, scrape, wait_until
from tests.reliability.raw_http import build_request, trickle
from tests.reliability.soap_wire import CT11, Partner, inquire_body, signed
from tests.reliability.workload import ConfirmSpec, confirm, current_month

pytestmark = [pytest.mark.reliability, pytest.mark.serial]

HELD = 6  # confirms held in flight by row locks (each holds one of the 10 primary connections)
SLOW = 4  # inquiries whose bodies trickle in across the signal
DRAIN_S = 1.0  # SSOGW_SHUTDOWN_DRAIN_S


@pytest.fixture
def gateway(launcher: Launcher) -> Iterator[GatewayProcess]:
    # A command timeout well above the time the test holds its locks.
    process = launcher.start("drain", command_timeout_s="15", shutdown_drain_s=str(DRAIN_S))
    try:
        yield process
    finally:
        process.kill()


async def test_sigterm_drains_in_flight_requests(
    gateway: GatewayProcess,
    partner: Partner,
    new_people: NewPeople,
    rel_record: PairRecord,
    admin_pool: asyncpg.Pool,
) -> None:
    month = current_month()
    held_people = await new_people(HELD)
    late_people = await new_people(5)
    (spare, reader) = await new_people(2)
    await replica_caught_up(rel_record)
    limits = httpx.Limits(max_connections=HELD + 10)
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30, limits=limits) as http:
        assert (await confirm(http, partner, ConfirmSpec.new(spare, month))).ok  # warm
        locker = await asyncpg.connect(rel_record.primary_dsn)
        try:
            lock = locker.transaction()
            await lock.start()
            await locker.execute(
                "SELECT 1 FROM insured_persons WHERE national_id = ANY($1) FOR UPDATE",
                held_people,
            )
            held = [
                asyncio.create_task(confirm(http, partner, ConfirmSpec.new(nid, month)))
                for nid in held_people
            ]
            slow = [
                asyncio.create_task(
                    trickle(
                        gateway.port,
                        request := build_request(
                            "POST",
                            "/soap/v1",
                            [("Content-Type", CT11)],
                            signed(partner, inquire_body(reader)),
                        ),
                        fast_bytes=request.index(b"\r\n\r\n") + 4,
                        slow_bytes=30,
                        interval_s=0.1,  # 3 s of body: across the signal and the drain
                    )
                )
                for _ in range(SLOW)
            ]

            async def all_in_flight() -> bool:
                samples = await scrape(http)
                return samples.get('ssogw_requests_in_flight{protocol="soap"}', 0) >= HELD + SLOW

            await wait_until(all_in_flight, timeout_s=5, what="requests in flight")
            gateway.signal(signal.SIGTERM)
            signalled = time.monotonic()

            async def draining() -> bool:
                status, body = await readiness(http)
                return (status, body.get("reason")) == (503, "draining")

            turned = await wait_until(draining, timeout_s=0.5, what="/readyz 503", every_s=0.02)
            # A load balancer has not noticed yet: what still arrives during the drain is served.
            late = await asyncio.gather(
                *(confirm(http, partner, ConfirmSpec.new(nid, month)) for nid in late_people)
            )
            assert all(c.ok for c in late), late

            async def listener_closed() -> bool:
                try:
                    async with httpx.AsyncClient(timeout=1) as fresh:
                        await fresh.get(f"{gateway.base_url}/livez")
                except httpx.ConnectError:
                    return True
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    # Accepted into the backlog just before the listener closed, then dropped
                    # unanswered (closed, or reset: both seen under load): as closed to a client
                    # as a refused connection.
                    return True
                return False

            closed_after = await wait_until(listener_closed, timeout_s=5, what="listener closed")
            assert closed_after >= DRAIN_S * 0.8, "the listener closed before the drain ended"
            assert not any(task.done() for task in held), "a held confirm ended early"
            await lock.commit()  # let the held confirms finish
        finally:
            await locker.close()
        answered = await asyncio.wait_for(asyncio.gather(*held), timeout=15)
        slow_answers = await asyncio.wait_for(asyncio.gather(*slow), timeout=15)
    exit_status = gateway.wait(15)
    finished_after = time.monotonic() - signalled

    cut = [c for c in answered if not c.ok]
    assert not cut, cut[:3]
    for answer in slow_answers:
        assert answer.status == 200 and b"InquireContributionResponse" in answer.body, answer
    # uvicorn ends by re-raising the SIGTERM it caught, once its shutdown is complete.
    assert exit_status in (0, -signal.SIGTERM), gateway.log_tail()
    paid = await admin_pool.fetchval(
        "SELECT count(*) FROM payments WHERE national_id = ANY($1)", held_people
    )
    assert paid == HELD
    audit = await audit_outcomes(admin_pool, [c.request_id for c in answered])
    assert all(audit.get(c.request_id) == ["ok"] for c in answered), audit
    FIGURES.note(
        f"SIGTERM: /readyz 503 within {turned * 1000:.0f} ms; {len(late)} late requests served "
        "during the drain; "
        f"listener closed {closed_after:.1f} s after the signal; {HELD} held confirms and "
        f"{SLOW} trickling inquiries all answered; exited ({exit_status}) "
        f"{finished_after:.1f} s after the signal"
    )


@pytest.fixture
def impatient_gateway(launcher: Launcher) -> Iterator[GatewayProcess]:
    process = launcher.start(
        "impatient", command_timeout_s="15", shutdown_drain_s="0.3", shutdown_grace_s="1"
    )
    try:
        yield process
    finally:
        process.kill()


@pytest.mark.xfail(
    strict=True,
    reason="nothing turns the cancellation at the end of SSOGW_SHUTDOWN_GRACE_S into a SOAP"
    " Fault: uvicorn cancels the request task and sends its own text/plain 500 (the vocabulary's"
    " server.shutting_down is never used)",
)
async def test_a_request_outlasting_the_grace_time_gets_a_soap_fault(
    impatient_gateway: GatewayProcess,
    partner: Partner,
    new_people: NewPeople,
    rel_record: PairRecord,
    admin_pool: asyncpg.Pool,
) -> None:
    month = current_month()
    (spare, stuck) = await new_people(2)
    async with httpx.AsyncClient(base_url=impatient_gateway.base_url, timeout=30) as http:
        assert (await confirm(http, partner, ConfirmSpec.new(spare, month))).ok  # warm
        locker = await asyncpg.connect(rel_record.primary_dsn)
        try:
            async with locker.transaction():
                await locker.execute(
                    "SELECT 1 FROM insured_persons WHERE national_id = $1 FOR UPDATE", stuck
                )
                call = asyncio.create_task(confirm(http, partner, ConfirmSpec.new(stuck, month)))

                async def in_flight() -> bool:
                    samples = await scrape(http)
                    return samples.get('ssogw_requests_in_flight{protocol="soap"}', 0) >= 1

                await wait_until(in_flight, timeout_s=5, what="the confirm in flight")
                impatient_gateway.signal(signal.SIGTERM)
                assert impatient_gateway.wait(15) is not None, "the gateway did not stop"
        finally:
            await locker.close()
        outcome = await asyncio.wait_for(call, timeout=5)
    paid = await admin_pool.fetchval("SELECT count(*) FROM payments WHERE national_id = $1", stuck)
    assert paid == 0, "a confirm cut off at shutdown must leave nothing behind"
    answer = outcome.answer
    assert answer is not None, outcome.error
    assert (answer.fault, answer.code, answer.retryable) == (
        "soap:Server",
        "server.shutting_down",
        True,
    ), answer
