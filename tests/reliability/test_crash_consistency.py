"""SIGKILL in the middle of 2,000 confirms from 50 concurrent counters: nothing a counter saw
acknowledged is lost, nothing is paid twice or half-written, every acknowledged call has its
audit record, and counters retrying what they never heard back about end with each payment
exactly once. Then the audit trail: every payment has exactly one record that claims it, no
record claims a receipt that does not exist, and the hash chain verifies. Then SIGKILL in the
middle of cancelling those 2,000 payments: the same, for cancels."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as time_of_day

import asyncpg
import httpx
import pytest

from app.domain.calendar import BANGKOK, settlement_day
from tests.reliability.conftest import Launcher, NewPartner, NewPeople
from tests.reliability.figures import FIGURES, CancelFigures, CrashFigures
from tests.reliability.gateway_process import GatewayProcess
from tests.reliability.ledger_check import (
    AuditTally,
    LedgerState,
    all_linked,
    audit_outcomes,
    audit_tally,
    chain_verified,
    ledger_state,
)
from tests.reliability.soap_wire import Partner
from tests.reliability.workload import (
    NOT_SOAP,
    Call,
    ConfirmSpec,
    cancel,
    confirm,
    current_month,
)

pytestmark = [pytest.mark.reliability, pytest.mark.serial]

CLIENTS = 50
PER_CLIENT = 40  # 2,000 confirms, each a different person and transaction
KILL_AFTER_ACKS = 1_000  # half-way
RUN_LIMIT_S = 120.0
UNLINKED = "SELECT count(*) FROM audit_unlinked"
Send = Callable[[httpx.AsyncClient, Partner, ConfirmSpec], Awaitable[Call]]


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
def cutoff() -> time_of_day:
    """The crash gateway's settlement cut-off (a real process: the wall clock's business day),
    so that the cancels after the confirms fall within the payments' business day at whatever
    hour the suite runs: 23:59, which closes today's day at least an hour away — except from
    23:00 Bangkok, when 12:00 makes the payments tomorrow's, a day that closes at noon. (A cut-off
    is from 12:00 to 23:59: "twelve hours from now" was refused from noon to midnight.)"""
    return cutoff_for(datetime.now(BANGKOK))


def cutoff_for(now: datetime) -> time_of_day:
    return time_of_day(12, 0) if now.hour == 23 else time_of_day(23, 59)


@pytest.mark.parametrize("hour", range(24))
def test_the_cut_off_is_one_the_gateway_takes_and_the_day_stays_open_an_hour(hour: int) -> None:
    for minute in (0, 30, 59):
        now = datetime(2026, 12, 4, hour, minute, tzinfo=BANGKOK)
        chosen = cutoff_for(now)
        assert time_of_day(12, 0) <= chosen <= time_of_day(23, 59)
        day = settlement_day(now, chosen)
        still = now + timedelta(minutes=59)
        assert settlement_day(still, chosen) == day, (now, chosen)


@pytest.fixture(scope="module")
def gateway(launcher: Launcher, cutoff: time_of_day) -> Iterator[GatewayProcess]:
    process = launcher.start("crash", settlement_cutoff=cutoff.strftime("%H:%M"))
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
    send: Send = confirm,
    *,
    resend_lost: int = 0,
) -> list[Call]:
    """Each counter sends its confirms (or cancels) one after the other; all counters at once.
    With ``resend_lost``, a counter that heard nothing back (the connection dropped) sends the
    very same request again, up to that many times, as a real counter does."""
    calls: list[Call] = []

    async def counter(specs: list[ConfirmSpec]) -> None:
        for spec in specs:
            call = await send(http, partner, spec)
            for _ in range(resend_lost):
                if call.answer is not None:
                    break
                call = await send(http, partner, spec)
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


def killer(gateway: GatewayProcess) -> Callable[[], None]:
    """Counts acknowledgements and SIGKILLs the gateway at the ``KILL_AFTER_ACKS``th."""
    acks = 0

    def count_and_kill() -> None:
        nonlocal acks
        acks += 1
        if acks == KILL_AFTER_ACKS:
            gateway.signal(signal.SIGKILL)

    return count_and_kill


@pytest.fixture(scope="module")
async def crash(
    gateway: GatewayProcess,
    cutoff: time_of_day,
    new_partner: NewPartner,
    new_people: NewPeople,
    admin_pool: asyncpg.Pool,
) -> AsyncIterator[Crash]:
    partner = await new_partner()
    people = await new_people(CLIENTS * PER_CLIENT)
    spare = await new_people(2)
    month = current_month()
    specs = [ConfirmSpec.new(nid, month, cutoff=cutoff) for nid in people]
    work = [specs[i::CLIENTS] for i in range(CLIENTS)]

    async with http_client(gateway) as http:
        await warm_up(http, partner, ConfirmSpec.new(spare[0], month, cutoff=cutoff))
        started = time.monotonic()
        first = await counters(http, partner, work, killer(gateway))
    assert gateway.wait(10) == -signal.SIGKILL, "the gateway was not killed"
    seconds = time.monotonic() - started
    left_unlinked = await admin_pool.fetchval(UNLINKED)  # any instance may be linking them
    gateway.start()  # same port, same settings: a restart after the crash
    async with http_client(gateway) as http:
        await warm_up(http, partner, ConfirmSpec.new(spare[1], month, cutoff=cutoff))

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
        left_unlinked=left_unlinked,
    )
    FIGURES.crash = figures
    yield Crash(partner, people, first, state, figures)


@pytest.fixture(scope="module")
async def retried(crash: Crash, gateway: GatewayProcess) -> list[Call]:
    """Counters that never heard back send the very same request again (same transaction id)."""
    todo = [c.spec for c in crash.unacknowledged if c.spec is not None]
    work = [todo[i::CLIENTS] for i in range(CLIENTS)]
    async with http_client(gateway) as http:
        crash.retries = await counters(http, crash.partner, work, None, resend_lost=2)
    return crash.retries


@pytest.fixture(scope="module")
async def confirms_audited(
    crash: Crash, retried: list[Call], admin_pool: asyncpg.Pool
) -> AuditTally:
    """The partner's confirm records against its payments, once every record is linked."""
    await all_linked(admin_pool)
    acknowledged = [c.request_id for c in [*crash.first, *retried] if c.ok]
    tally = await audit_tally(
        admin_pool, crash.partner.name, "ConfirmPayment", acknowledged=acknowledged
    )
    crash.figures.audit = tally
    return tally


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
    crash: Crash, retried: list[Call], admin_pool: asyncpg.Pool
) -> None:
    """Those the gateway had committed are answered as replays, the others are paid now."""
    todo = [c.spec for c in crash.unacknowledged if c.spec is not None]
    committed = {spec.txn for spec in todo if crash.after_restart.by_txn[spec.txn] >= 1}
    failed = [(c.error, c.answer) for c in retried if not c.ok]
    assert not failed, failed[:3]
    replayed = {c.spec.txn for c in retried if c.answer and c.answer.fields["replayed"] == "true"}
    assert replayed == committed, "a committed confirm was paid again, or a new one replayed"
    final = await ledger_state(admin_pool, crash.partner.name, crash.people)
    crash.figures.retried = len(retried)
    crash.figures.retried_replayed = len(replayed)
    crash.figures.final_payments = sum(final.by_txn.values())
    assert final.by_txn == {c.spec.txn: 1 for c in crash.first if c.spec is not None}
    assert final.doubled == 0 and final.half_written == [] and final.unowned_months == 0
    assert set(final.by_person) == set(crash.people)
    assert sum(final.months_by_person.values()) == len(crash.people)
    audit = await audit_outcomes(admin_pool, [c.request_id for c in retried])
    assert all(audit.get(c.request_id) == ["ok"] for c in retried)


def test_every_payment_has_one_record_claiming_it_and_every_record_its_payment(
    crash: Crash, confirms_audited: AuditTally
) -> None:
    """Each transaction's payment is claimed by exactly one 'ok' record (its replays' records
    say they are replays), no 'ok' record names a receipt that does not exist, no call has two
    records, and no acknowledged call is without its record."""
    tally = confirms_audited
    assert tally.without_record == 0, "payments without their audit record"
    assert tally.without_payment == 0, "records claiming a receipt that does not exist"
    assert tally.doubled == 0 and tally.lost == 0
    assert tally.claims == len(crash.people) + 2  # and the two warm-up payments
    assert tally.unlinked == 0


# --- then the same payments cancelled, killed half-way ------------------------------------------
@dataclass
class CancelCrash:
    first: list[Call]
    at_restart: AuditTally
    retries: list[Call]
    after: AuditTally
    figures: CancelFigures


@pytest.fixture(scope="module")
async def cancel_crash(
    crash: Crash,
    confirms_audited: AuditTally,
    gateway: GatewayProcess,
    admin_pool: asyncpg.Pool,
) -> CancelCrash:
    specs = [c.spec for c in crash.first if c.spec is not None]  # each paid exactly once by now
    work = [specs[i::CLIENTS] for i in range(CLIENTS)]
    async with http_client(gateway) as http:
        first = await counters(http, crash.partner, work, killer(gateway), cancel)
    assert gateway.wait(10) == -signal.SIGKILL, "the gateway was not killed"
    figures = CancelFigures(
        sent=len(first),
        acknowledged=sum(1 for c in first if c.ok),
        cut_off=sum(1 for c in first if c.answer is None),
        left_unlinked=await admin_pool.fetchval(UNLINKED),
    )
    gateway.start()
    await all_linked(admin_pool)
    unacknowledged = [c for c in first if not c.ok]
    cancelled = {
        r["partner_txn_id"]
        for r in await admin_pool.fetch(
            "SELECT partner_txn_id FROM payments WHERE state = 'cancelled'"
            " AND partner_txn_id = ANY($1)",
            [c.spec.txn for c in unacknowledged if c.spec is not None],
        )
    }
    figures.committed_unacknowledged = len(cancelled)
    name = crash.partner.name
    acknowledged = [c.request_id for c in first if c.ok]
    figures.at_restart = await audit_tally(
        admin_pool, name, "CancelPayment", acknowledged=acknowledged
    )
    todo = [c.spec for c in unacknowledged if c.spec is not None]
    async with http_client(gateway) as http:
        retries = await counters(http, crash.partner, [todo[i::CLIENTS] for i in range(CLIENTS)],
                                 None, cancel, resend_lost=2)  # fmt: skip
    await all_linked(admin_pool)
    figures.retried = len(retries)
    figures.cancelled = await admin_pool.fetchval(
        "SELECT count(*) FROM payments WHERE state = 'cancelled' AND partner_txn_id = ANY($1)",
        [spec.txn for spec in specs],
    )
    acknowledged += [c.request_id for c in retries if c.ok]
    figures.audit = await audit_tally(admin_pool, name, "CancelPayment", acknowledged=acknowledged)
    FIGURES.cancels = figures
    verified = await chain_verified(admin_pool)
    crash.figures.chain_checked, crash.figures.chain_ok = verified.checked, verified.ok
    return CancelCrash(first, figures.at_restart, retries, figures.audit, figures)


def test_the_cancels_were_killed_in_the_middle(cancel_crash: CancelCrash) -> None:
    figures = cancel_crash.figures
    assert KILL_AFTER_ACKS <= figures.acknowledged < figures.sent == CLIENTS * PER_CLIENT
    refused = [c for c in cancel_crash.first if c.answer is not None and not c.ok]
    assert not refused, f"cancels refused before the kill: {refused[:3]}"


def test_at_the_restart_every_cancel_has_its_record_and_every_record_its_cancel(
    cancel_crash: CancelCrash,
) -> None:
    """Whatever the kill cut short: a payment is cancelled exactly when one record says so."""
    tally = cancel_crash.at_restart
    assert tally.without_record == 0 and tally.without_payment == 0
    assert tally.doubled == 0 and tally.lost == 0


def test_retried_cancels_end_with_every_payment_cancelled_once_on_a_whole_chain(
    crash: Crash, cancel_crash: CancelCrash
) -> None:
    failed = [(c.error, c.answer) for c in cancel_crash.retries if not c.ok]
    assert not failed, failed[:3]
    assert cancel_crash.figures.cancelled == len(crash.people)
    tally = cancel_crash.after
    assert tally.clean and tally.claims == len(crash.people) and tally.unlinked == 0
    assert crash.figures.chain_ok, "the hash chain does not verify"
