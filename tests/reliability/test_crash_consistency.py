"""SIGKILL in the middle of 2,000 confirms from 50 concurrent counters: nothing a counter saw
acknowledged is lost, nothing is paid twice or half-written, every acknowledged call has its
audit record, and counters retrying what they never heard back about end with each payment
exactly once."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest

from tests.reliability.conftest import Launcher, NewPartner, NewPeople
from tests.reliability.figures import FIGURES, CrashFigures
from tests.reliability.gateway_process import GatewayProcess
from tests.reliability.ledger_check import LedgerState, audit_outcomes, ledger_state
from tests.reliability.soap_wire import Partner
from tests.reliability.workload import NOT_SOAP, Call, ConfirmSpec, confirm, current_month

pytestmark = pytest.mark.reliability

CLIENTS = 50
PER_CLIENT = 40  # 2,000 confirms, each a different person and transaction
KILL_AFTER_ACKS = 1_000  # half-way
RUN_LIMIT_S = 120.0


@dataclass
class Crash:
    """The first attempts, the ledger found after the restart, and the figures."""

    partner: Partner
    people: list[str]
    first: list[Call]
    after_restart: LedgerState
    figures: CrashFigures
    retries: list[Call] = field(default_factory=list)

    @property
    def acknowledged(self) -> list[Call]:
        return [c for c in self.first if c.ok]

    @property
    def unacknowledged(self) -> list[Call]:
        return [c for c in self.first if not c.ok]


@pytest.fixture(scope="module")
def gateway(launcher: Launcher) -> Iterator[GatewayProcess]:
    process = launcher.start("crash")
    try:
        yield process
    finally:
        process.kill()


def http_client(gateway: GatewayProcess) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    return httpx.AsyncClient(base_url=gateway.base_url, timeout=10, limits=limits)


async def counters(
    http: httpx.AsyncClient,
    partner: Partner,
    work: list[list[ConfirmSpec]],
    on_ack: Callable[[], None] | None,
) -> list[Call]:
    """Each counter sends its confirms one after the other; all counters at once."""
    calls: list[Call] = []

    async def counter(specs: list[ConfirmSpec]) -> None:
        for spec in specs:
            call = await confirm(http, partner, spec)
            calls.append(call)
            if call.ok and on_ack is not None:
                on_ack()

    async with asyncio.timeout(RUN_LIMIT_S):
        await asyncio.gather(*(counter(specs) for specs in work))
    return calls


async def warm_up(http: httpx.AsyncClient, partner: Partner, spec: ConfirmSpec) -> None:
    """One confirm first, so that the rate table is cached before the burst (see
    test_pool_starvation.py: a cold gateway wedges under a burst of confirms)."""
    call = await confirm(http, partner, spec)
    assert call.ok, call


@pytest.fixture(scope="module")
async def crash(
    gateway: GatewayProcess,
    new_partner: NewPartner,
    new_people: NewPeople,
    admin_pool: asyncpg.Pool,
) -> AsyncIterator[Crash]:
    partner = await new_partner()
    people = await new_people(CLIENTS * PER_CLIENT)
    spare = await new_people(2)
    month = current_month()
    specs = [ConfirmSpec.new(nid, month) for nid in people]
    work = [specs[i::CLIENTS] for i in range(CLIENTS)]
    acks = 0

    def count_and_kill() -> None:
        nonlocal acks
        acks += 1
        if acks == KILL_AFTER_ACKS:
            gateway.signal(signal.SIGKILL)

    async with http_client(gateway) as http:
        await warm_up(http, partner, ConfirmSpec.new(spare[0], month))
        started = time.monotonic()
        first = await counters(http, partner, work, count_and_kill)
    assert gateway.wait(10) == -signal.SIGKILL, "the gateway was not killed"
    seconds = time.monotonic() - started
    gateway.start()  # same port, same settings: a restart after the crash
    async with http_client(gateway) as http:
        await warm_up(http, partner, ConfirmSpec.new(spare[1], month))

    state = await ledger_state(admin_pool, partner.name, people)
    acked = {c.spec.txn for c in first if c.ok and c.spec is not None}
    unacked_txns = {c.spec.txn for c in first if not c.ok and c.spec is not None}
    audit = await audit_outcomes(admin_pool, [c.request_id for c in first])
    ok_audit_txns = {
        c.spec.txn for c in first if c.spec is not None and "ok" in audit.get(c.request_id, [])
    }
    figures = CrashFigures(
        clients=CLIENTS,
        sent=len(first),
        acknowledged=len(acked),
        cut_off=sum(1 for c in first if c.answer is None and c.error != "ConnectError"),
        refused=sum(1 for c in first if c.error == "ConnectError"),
        found=sum(1 for txn in acked if state.by_txn[txn] >= 1),
        lost=sum(1 for txn in acked if state.by_txn[txn] == 0),
        doubled=state.doubled,
        half_written=len(state.half_written) + state.unowned_months,
        committed_unacknowledged=sum(1 for txn in unacked_txns if state.by_txn[txn] >= 1),
        audit_missing=sum(1 for c in first if c.ok and audit.get(c.request_id) != ["ok"]),
        audit_without_payment=sum(1 for txn in ok_audit_txns if state.by_txn[txn] == 0),
        seconds=seconds,
    )
    FIGURES.crash = figures
    yield Crash(partner, people, first, state, figures)


def test_the_kill_came_in_the_middle(crash: Crash) -> None:
    figures = crash.figures
    assert figures.sent == CLIENTS * PER_CLIENT
    assert KILL_AFTER_ACKS <= figures.acknowledged < figures.sent
    refused = [c for c in crash.unacknowledged if c.answer is not None]
    assert not refused, f"confirms refused before the kill: {refused[:3]}"
    not_soap = [c for c in crash.first if c.error and c.error.startswith(NOT_SOAP)]
    assert not not_soap, not_soap[:3]


def test_every_acknowledged_confirm_is_in_the_ledger_exactly_once(crash: Crash) -> None:
    assert crash.figures.found == crash.figures.acknowledged
    assert crash.figures.lost == 0
    assert crash.figures.doubled == 0


def test_no_payment_is_half_written(crash: Crash) -> None:
    assert crash.after_restart.half_written == []
    assert crash.after_restart.unowned_months == 0
    # A paid month exists exactly for the persons with a payment.
    assert set(crash.after_restart.months_by_person) == set(crash.after_restart.by_person)


def test_every_acknowledged_confirm_has_its_audit_record(crash: Crash) -> None:
    assert crash.figures.audit_missing == 0


async def test_retrying_the_unacknowledged_pays_each_exactly_once(
    crash: Crash, gateway: GatewayProcess, admin_pool: asyncpg.Pool
) -> None:
    """Counters that never heard back send the very same request again (same transaction id):
    those the gateway had committed are answered as replays, the others are paid now."""
    todo = [c.spec for c in crash.unacknowledged if c.spec is not None]
    committed = {spec.txn for spec in todo if crash.after_restart.by_txn[spec.txn] >= 1}
    work = [todo[i::CLIENTS] for i in range(CLIENTS)]
    async with http_client(gateway) as http:
        retries = await counters(http, crash.partner, work, None)
    failed = [(c.error, c.answer) for c in retries if not c.ok]
    assert not failed, failed[:3]
    replayed = {c.spec.txn for c in retries if c.answer and c.answer.fields["replayed"] == "true"}
    assert replayed == committed, "a committed confirm was paid again, or a new one replayed"
    final = await ledger_state(admin_pool, crash.partner.name, crash.people)
    crash.figures.retried = len(retries)
    crash.figures.retried_replayed = len(replayed)
    crash.figures.final_payments = sum(final.by_txn.values())
    assert final.by_txn == {c.spec.txn: 1 for c in crash.first if c.spec is not None}
    assert final.doubled == 0 and final.half_written == [] and final.unowned_months == 0
    assert set(final.by_person) == set(crash.people)
    assert sum(final.months_by_person.values()) == len(crash.people)
    audit = await audit_outcomes(admin_pool, [c.request_id for c in retries])
    assert all(audit.get(c.request_id) == ["ok"] for c in retries)
