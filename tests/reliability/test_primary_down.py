"""The primary dies under load (stopped in pg_ctl's immediate mode, as in a crash) and comes back:
confirms fail fast with a retryable SOAP Server fault (never HTML, never a hang), inquiries go on
from the replica (credentials looked up there once their cache expires) and the instance stays
ready for them, and once the primary is back the same server process serves again; retried
confirms land exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from app.db.local_pair import LocalPair, PairRecord
from tests.reliability.conftest import Launcher, NewPeople, ensure_pair_up, replica_caught_up
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import GatewayProcess
from tests.reliability.observe import readiness, wait_until
from tests.reliability.soap_wire import Partner
from tests.reliability.workload import Call, ConfirmSpec, Workload, confirm, current_month

pytestmark = [pytest.mark.reliability, pytest.mark.serial]

ANSWER_WITHIN_S = 5.0
OUTAGE_S = 2.0
UNAVAILABLE = {"server.store_unavailable", "server.audit_unavailable"}


@dataclass
class Outage:
    """What the partners saw before, during and after the primary's outage."""

    load: Workload
    pid_before: int
    pid_after: int
    down_at: float  # the primary was down from here ...
    up_at: float  # ... to here (monotonic)
    recovered_s: float  # from the primary's restart to the first successful confirm
    readiness: list[tuple[int, dict[str, object]]]  # /readyz while the primary was down

    def during(self, kind: str) -> list[Call]:
        """The calls started and answered while the primary was down (a call still waiting when
        it came back may rightly succeed)."""
        return [
            c
            for c in self.load.of(kind, since=self.down_at, until=self.up_at)
            if c.started + c.seconds < self.up_at
        ]


@pytest.fixture(scope="module")
def gateway(launcher: Launcher) -> Iterator[GatewayProcess]:
    # Credentials are looked up again during the outage: on the replica.
    process = launcher.start("primary-down", token_cache_s="0.5")
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture(scope="module")
async def outage(
    gateway: GatewayProcess,
    rel_pair: tuple[LocalPair, PairRecord],
    partner: Partner,
    new_people: NewPeople,
) -> AsyncIterator[Outage]:
    pair, record = rel_pair
    members = await new_people(8)
    payers = await new_people(1500)
    await replica_caught_up(record)
    month = current_month()
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as client:
        warm = await confirm(client, partner, ConfirmSpec.new(payers.pop(), month))
        assert warm.ok, warm  # admission and rates are cached, as in steady traffic
        pid_before = gateway.pid
        try:
            load = Workload(
                client,
                partner,
                members,
                payers,
                month=month,
                inquirers=4,
                confirmers=8,
                pause_s=0.03,
                max_seconds=60,
            )
            async with load:
                await asyncio.sleep(1.0)
                await asyncio.to_thread(pair.stop, "primary", mode="immediate")
                down_at = time.monotonic()

                seen: list[tuple[int, dict[str, object]]] = []

                async def primary_reported_down() -> bool:
                    seen.append(await readiness(client))
                    return seen[-1][1].get("primary") is False

                await wait_until(primary_reported_down, timeout_s=5, what="the primary down")
                await asyncio.sleep(OUTAGE_S / 2)
                seen.append(await readiness(client))
                await asyncio.sleep(OUTAGE_S / 2)
                up_at = time.monotonic()
                await asyncio.to_thread(pair.start, "primary")

                async def confirms_again() -> bool:
                    return any(c.ok for c in load.of("confirm", since=up_at))

                recovered = await wait_until(confirms_again, timeout_s=20, what="confirms again")
                await asyncio.sleep(0.5)
        finally:
            await ensure_pair_up(pair, record)
        yield Outage(load, pid_before, gateway.pid, down_at, up_at, recovered, seen)


def test_the_instance_stays_ready_for_inquiries(outage: Outage) -> None:
    """/readyz is about inquiries: the replica reads and the spool takes their records."""
    down = [body for _, body in outage.readiness if body.get("primary") is False]
    assert down, outage.readiness
    assert {status for status, _ in outage.readiness} == {200}, outage.readiness
    assert all(body["auditPath"] == "spool" and body["readPath"] for body in down), down


def test_every_call_is_answered_in_time_with_soap(outage: Outage) -> None:
    calls = outage.load.calls
    assert not [c for c in calls if c.answer is None], "a call got no answer at all"
    slow = [c for c in calls if c.seconds >= ANSWER_WITHIN_S]
    assert not slow, slow[:3]


def test_confirms_fail_with_a_retryable_server_fault(outage: Outage) -> None:
    during = outage.during("confirm")
    assert len(during) >= 20, f"only {len(during)} confirms during the outage"
    codes = Counter(c.answer.code for c in during if c.answer is not None)
    for call in during:
        assert call.answer is not None and not call.answer.ok, call
        assert call.answer.fault == "soap:Server" and call.answer.status == 500, call
        assert call.answer.retryable is True and call.answer.code in UNAVAILABLE, call
    worst = max(c.seconds for c in during)
    FIGURES.note(
        f"primary down {outage.up_at - outage.down_at:.1f} s: {len(during)} confirms refused "
        f"({dict(codes)}), slowest answer {worst * 1000:.0f} ms; confirms again "
        f"{outage.recovered_s:.1f} s after the primary restarted, same server process"
    )


def test_confirm_faults_name_the_store(outage: Outage) -> None:
    codes = {c.answer.code for c in outage.during("confirm") if c.answer is not None}
    assert codes == {"server.store_unavailable"}, codes


def test_inquiries_go_on_from_the_replica(outage: Outage) -> None:
    during = outage.during("inquire")
    assert during
    failed = Counter(c.answer.code for c in during if c.answer is not None and not c.answer.ok)
    FIGURES.note(f"inquiries while the primary was down: {len(during)}, failed {dict(failed)}")
    assert not failed
    assert {c.answer.fields["servedBy"] for c in during if c.answer is not None} == {"replica"}


async def test_service_resumes_without_a_restart_and_retries_land_once(
    outage: Outage, gateway: GatewayProcess, partner: Partner, admin_pool: asyncpg.Pool
) -> None:
    assert outage.pid_after == outage.pid_before and gateway.running()
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as client:
        status, body = await readiness(client)
        assert status == 200, body
        confirms = outage.load.of("confirm")
        failed = [c for c in confirms if not c.ok]
        assert failed, "the outage refused no confirm"
        retried = [await confirm(client, partner, c.spec) for c in failed if c.spec is not None]
    assert all(c.ok for c in retried), [c for c in retried if not c.ok][:3]
    txns = [c.spec.txn for c in confirms if c.spec is not None]
    rows = await admin_pool.fetch(
        "SELECT partner_txn_id, count(*) AS n FROM payments WHERE partner_txn_id = ANY($1)"
        " GROUP BY partner_txn_id",
        txns,
    )
    counts = {row["partner_txn_id"]: row["n"] for row in rows}
    assert set(counts) == set(txns), "a confirm is missing from the ledger"
    assert set(counts.values()) == {1}, "a confirm is in the ledger twice"


async def test_inquiries_answered_without_the_primary_reach_the_audit_trail(
    outage: Outage, admin_pool: asyncpg.Pool
) -> None:
    """Their records were committed to the local spool, and move onto the chain once the
    primary is back: every answered inquiry has exactly one record."""
    answered = [c.request_id for c in outage.during("inquire") if c.answer and c.answer.ok]
    assert answered

    async def all_recorded() -> bool:
        rows = await admin_pool.fetch(
            "SELECT request_id, count(*) AS n FROM audit_log WHERE request_id = ANY($1)"
            " GROUP BY request_id",
            answered,
        )
        return len(rows) == len(answered) and all(r["n"] == 1 for r in rows)

    deadline = time.monotonic() + 20
    while not await all_recorded():
        assert time.monotonic() < deadline, "spooled audit records did not reach the primary"
        await asyncio.sleep(0.2)
    FIGURES.note(f"inquiries answered without the primary, all audited: {len(answered)}")
