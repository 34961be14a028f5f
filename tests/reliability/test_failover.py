"""A failover under load, on a pair of its own: the standby is promoted while partners send
inquiries and confirms, then the old primary is stopped (a failover in which the old primary
kept running for a moment, the hard case). The gateway knows both nodes: the primary as one
multi-host DSN with ``target_session_attrs=read-write``, each node as a replica DSN, and
payments commit with ``remote_apply`` against the synchronous standby.

What callers saw is counted: inquiries answered throughout (none failed), /readyz 200 all along,
confirms refused only with the retryable ``server.store_unavailable`` and for at most 10 s,
every acknowledged payment on the new primary exactly once, retried ones too, and every answered
inquiry's audit record on the new primary's chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from app.admission.credential_vault import SecretBox
from app.db.local_failover import fleet_dsns, promote_standby, synchronous
from app.db.local_pair import LocalPair, PairRecord
from app.domain.calendar import bangkok_date
from app.domain.months import Month
from app.principals.registry import Registry
from app.principals.repository import PrincipalRepository
from tests.reliability.conftest import LOOPBACK, SECRET_KEY, replica_caught_up
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import GatewayProcess, gateway_env
from tests.reliability.observe import wait_until
from tests.reliability.soap_wire import Partner, inquire_body
from tests.reliability.workload import ConfirmSpec, Workload, confirm, current_month, send
from tests.support.pair import session_pair
from tests.support.people import add_person

pytestmark = [pytest.mark.reliability, pytest.mark.serial]

RETRYABLE = "server.store_unavailable"
MAX_REFUSING_S = 10.0


@dataclass
class Failover:
    """What the partners and the load balancer saw."""

    load: Workload
    promoted_at: float
    stopped_at: float
    recovered_s: float  # from the old primary's stop to the first confirm acknowledged after it
    readiness: list[tuple[float, int]] = field(default_factory=list)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[LocalPair, PairRecord]]:
    """This module's own pair (it is promoted and broken here), its standby synchronous."""
    with session_pair() as (pair, record):
        synchronous(pair)
        yield pair, record


@pytest.fixture(scope="module")
async def rw_pool(cluster: tuple[LocalPair, PairRecord]) -> AsyncIterator[asyncpg.Pool]:
    """The service role on whichever node is read-write (the same multi-host DSN)."""
    primary, _ = fleet_dsns(cluster[1])
    pool = await asyncpg.create_pool(primary, min_size=0, max_size=4)
    try:
        yield pool
    finally:
        pool.terminate()


async def _people(pool: asyncpg.Pool, count: int) -> list[str]:
    start = Month.of(bangkok_date(datetime.now(UTC))).minus(5)
    async with pool.acquire() as conn, conn.transaction():
        return [await add_person(conn, section=40, coverage_start=start) for _ in range(count)]


@pytest.fixture(scope="module")
def gateway(
    cluster: tuple[LocalPair, PairRecord], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    _, record = cluster
    primary, replicas = fleet_dsns(record)
    root = tmp_path_factory.mktemp("failover")
    env = gateway_env(
        record, secret_key=SECRET_KEY, data_dir=root / "data", instance_id="failover",
        primary_dsn=primary, replica_dsns=",".join(replicas),
        token_cache_s="0.5",  # credentials are looked up again during the failover
    )  # fmt: skip
    process = GatewayProcess(env=env, logs=root / "logs", name="failover")
    process.start()
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture(scope="module")
async def partner(rw_pool: asyncpg.Pool) -> Partner:
    registry = Registry(store=PrincipalRepository(lambda: rw_pool), box=SecretBox(SECRET_KEY))
    issued = await registry.add_partner(name="failover", cidrs=LOOPBACK, rate_limit=100_000)
    return Partner("failover", issued.username, issued.password)


async def _poll_readiness(client: httpx.AsyncClient, seen: list[tuple[float, int]]) -> None:
    while True:
        try:
            status = (await client.get("/readyz")).status_code
        except httpx.TransportError:
            status = 0
        seen.append((time.monotonic(), status))
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def failover(
    cluster: tuple[LocalPair, PairRecord],
    rw_pool: asyncpg.Pool,
    gateway: GatewayProcess,
    partner: Partner,
) -> Failover:
    pair, record = cluster
    members = await _people(rw_pool, 8)
    payers = await _people(rw_pool, 2000)
    await replica_caught_up(record)
    month = current_month()
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as client:
        assert (await send(client, partner, inquire_body(members[0]), kind="inquire")).ok
        warm = await confirm(client, partner, ConfirmSpec.new(payers.pop(), month))
        assert warm.ok, warm
        readiness: list[tuple[float, int]] = []
        poller = asyncio.create_task(_poll_readiness(client, readiness))
        load = Workload(
            client, partner, members, payers, month=month, inquirers=4, confirmers=4,
            pause_s=0.05, max_seconds=90,
        )  # fmt: skip
        try:
            async with load:
                await asyncio.sleep(1.5)
                promoted_at = time.monotonic()
                await asyncio.to_thread(promote_standby, pair)
                await asyncio.sleep(1.0)  # both nodes read-write for a moment
                stopped_at = time.monotonic()
                await asyncio.to_thread(pair.stop, "primary", mode="fast")

                async def confirms_again() -> bool:
                    return any(c.ok for c in load.of("confirm", since=stopped_at))

                deadline = time.monotonic() + 30
                while not await confirms_again():
                    assert time.monotonic() < deadline, "no confirm acknowledged after failover"
                    await asyncio.sleep(0.1)
                recovered = time.monotonic() - stopped_at
                await asyncio.sleep(2.0)
        finally:
            poller.cancel()
    return Failover(load, promoted_at, stopped_at, recovered, readiness)


def test_inquiries_are_answered_throughout(failover: Failover) -> None:
    inquiries = failover.load.of("inquire")
    during = [c for c in inquiries if c.started >= failover.promoted_at]
    assert len(during) >= 20, len(during)
    failed = [c for c in inquiries if not c.ok]
    paths = Counter(c.answer.fields["servedBy"] for c in inquiries if c.ok and c.answer)
    slowest = max(c.seconds for c in inquiries)
    FIGURES.note(
        f"failover: {len(inquiries)} inquiries ({len(during)} from the promotion on), "
        f"{len(failed)} failed, served by {dict(paths)}, slowest {slowest * 1000:.0f} ms"
    )
    assert not failed, failed[:3]


def test_the_instance_stays_ready(failover: Failover) -> None:
    during = [status for at, status in failover.readiness if at >= failover.promoted_at]
    assert during and set(during) == {200}, Counter(during)


def test_confirms_fail_only_retryably_and_briefly(failover: Failover) -> None:
    confirms = failover.load.of("confirm")
    failed = [c for c in confirms if not c.ok]
    assert all(c.answer is not None for c in failed), [c for c in failed if c.answer is None][:3]
    codes = Counter(c.answer.code for c in failed if c.answer is not None)
    window = (
        max(c.started + c.seconds for c in failed) - min(c.started for c in failed)
        if failed
        else 0.0
    )
    FIGURES.note(
        f"failover: {len(confirms)} confirms, {len(failed)} refused {dict(codes)} within "
        f"{window:.1f} s; acknowledged again {failover.recovered_s:.1f} s after the old primary "
        "stopped"
    )
    for call in failed:
        assert call.answer is not None and call.answer.code == RETRYABLE, call
        assert call.answer.retryable is True and call.answer.fault == "soap:Server", call
    assert window <= MAX_REFUSING_S


async def test_every_acknowledged_payment_is_on_the_new_primary_once(
    failover: Failover, gateway: GatewayProcess, partner: Partner, rw_pool: asyncpg.Pool
) -> None:
    confirms = failover.load.of("confirm")
    acknowledged = [c.spec for c in confirms if c.ok and c.spec is not None]
    refused = [c.spec for c in confirms if not c.ok and c.spec is not None]
    assert await rw_pool.fetchval("SELECT NOT pg_is_in_recovery()")
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as client:
        retried = [await confirm(client, partner, spec) for spec in refused]
    assert all(c.ok for c in retried), [c for c in retried if not c.ok][:3]
    specs = acknowledged + refused
    rows = await rw_pool.fetch(
        "SELECT p.partner_txn_id, count(DISTINCT p.id) AS payments, count(m.*) AS months"
        "  FROM payments p LEFT JOIN paid_months m ON m.payment_id = p.id"
        " WHERE p.partner_txn_id = ANY($1) GROUP BY p.partner_txn_id",
        [s.txn for s in specs],
    )
    found = {r["partner_txn_id"]: (r["payments"], r["months"]) for r in rows}
    lost = [s.txn for s in acknowledged if s.txn not in found]
    FIGURES.note(
        f"failover: {len(acknowledged)} acknowledged payments, {len(lost)} missing on the new "
        f"primary; {len(refused)} refused ones retried, all acknowledged"
    )
    assert not lost, lost[:5]
    assert set(found) == {s.txn for s in specs}
    assert set(found.values()) == {(1, 1)}, Counter(found.values())


async def test_every_answered_inquiry_is_on_the_new_primarys_audit_trail(
    failover: Failover, rw_pool: asyncpg.Pool
) -> None:
    answered = [c.request_id for c in failover.load.of("inquire") if c.ok]

    counts: dict[str, int] = {}

    async def all_recorded() -> bool:
        rows = await rw_pool.fetch(
            "SELECT request_id, count(*) AS n FROM audit_records WHERE request_id = ANY($1)"
            " GROUP BY request_id",
            answered,
        )
        counts.update({r["request_id"]: r["n"] for r in rows})
        return len(counts) == len(answered)

    # Spooled records reach the new primary within a second or so of its answering.
    with contextlib.suppress(TimeoutError):
        await wait_until(all_recorded, timeout_s=30, what="records on the chain", every_s=0.5)
    missing = set(answered) - set(counts)
    assert not missing, f"{len(missing)} of {len(answered)} answered inquiries have no record"
    assert set(counts.values()) == {1}, Counter(counts.values())
