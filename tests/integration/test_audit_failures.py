"""The audit trail under real failures: callers get AuditUnavailable, later batches succeed, and
a call whose record cannot be committed fails with it, the counter's and an admin's alike."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.audit.admin_gate import AdminGate
from app.audit.audited_call import AuditedCalls
from app.audit.call_audit import CallAudit
from app.audit.records import AuditRecord
from app.audit.writer import AuditWriter
from app.counter.ledger import PgLedger
from app.counter.records import InquiryRequest
from app.counter.rules import counter_rules
from app.counter.service import CounterService
from app.db.pools import PoolConfig, open_pool
from app.db.recent_writes import RecentWrites
from app.domain.months import Month
from app.domain.national_id import generate_national_id
from app.errors import AuditUnavailable, PersonNotFound, ServiceError, StoreUnavailable
from app.insured.service import InsuredAdmin
from app.main import Gateway
from app.observability.metrics import Metrics
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import business_clock
from tests.support.dead_primary import unreachable_pool
from tests.support.owner_rights import audit_records_refused
from tests.support.people import new_national_id
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    assert settings.primary_dsn
    opened = await open_pool(
        settings.primary_dsn, PoolConfig(1, 3, 3.0, 30.0), read_only=False, name="test-audit"
    )
    try:
        yield opened
    finally:
        await opened.close()


def record(national_id: str) -> AuditRecord:
    return AuditRecord(
        at=datetime.now(UTC),
        protocol="rest",
        operation="inquireContribution",
        outcome="ok",
        request_id=uuid.uuid4().hex,
        principal_kind="client",
        principal_name="mobile-app",
        source_ip="203.0.113.9",
        national_id=national_id,
        name_returned="นางสาว ทดสอบ ระบบ",
    )


async def count(pool: asyncpg.Pool, national_id: str) -> int:
    found: int = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE national_id = $1", national_id
    )
    return found


async def test_with_the_server_unreachable_every_caller_fails_and_then_recovers(
    pool: asyncpg.Pool,
) -> None:
    dead = await unreachable_pool()
    current = {"pool": dead}
    metrics = Metrics(CollectorRegistry())
    writer = AuditWriter(
        pool_provider=lambda: current["pool"], max_batch=100, max_wait_ms=2, metrics=metrics
    )
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    await writer.start()
    try:
        outcomes = await asyncio.gather(
            *(writer.record(record(nid)) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(o, AuditUnavailable) for o in outcomes), outcomes
        failure = outcomes[0]
        assert isinstance(failure, AuditUnavailable)
        assert failure.code == "server.audit_unavailable" and failure.retryable
        assert failure.details["cause"] == "server.store_unavailable"
        assert metrics.registry.get_sample_value("ssogw_audit_commit_failures_total") == 1.0
        assert await count(pool, nid) == 0

        current["pool"] = pool  # the server is back
        await asyncio.gather(*(writer.record(record(nid)) for _ in range(3)))
        assert await count(pool, nid) == 3
    finally:
        await writer.stop()
        await dead.close()


@pytest.mark.serial
async def test_with_the_chain_head_locked_callers_fail_in_time_and_then_recover(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    writer = AuditWriter(
        pool_provider=lambda: pool, max_batch=100, max_wait_ms=0, commit_timeout_s=0.5
    )
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    assert settings.owner_dsn  # only the owner can hold the head (the service role may not)
    holder = await asyncpg.connect(settings.owner_dsn)
    await writer.start()
    try:
        lock = holder.transaction()
        await lock.start()
        await holder.execute("SELECT 1 FROM audit_chain WHERE id FOR UPDATE")
        began = time.monotonic()
        with pytest.raises(AuditUnavailable):
            await writer.record(record(nid))
        assert time.monotonic() - began < 2.0, "a stuck commit fails within its timeout"
        await lock.rollback()

        await writer.record(record(nid))
        assert await count(pool, nid) == 1
    finally:
        await writer.stop()
        await holder.close()


async def test_a_record_before_start_or_after_stop_is_refused(pool: asyncpg.Pool) -> None:
    writer = AuditWriter(pool_provider=lambda: pool, max_batch=10, max_wait_ms=0)
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    with pytest.raises(AuditUnavailable):
        await writer.record(record(nid))
    await writer.start()
    await writer.record(record(nid))
    await writer.stop()
    with pytest.raises(AuditUnavailable):
        await writer.record(record(nid))
    assert await count(pool, nid) == 1


async def test_callers_beyond_the_queue_bound_fail_at_once(pool: asyncpg.Pool) -> None:
    writer = AuditWriter(pool_provider=lambda: pool, max_batch=2, max_wait_ms=0, max_queued=3)
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    await writer.start()
    try:
        outcomes = await asyncio.gather(
            *(writer.record(record(nid)) for _ in range(5)), return_exceptions=True
        )
    finally:
        await writer.stop()
    refused = [o for o in outcomes if isinstance(o, AuditUnavailable)]
    assert [o.details["reason"] for o in refused] == ["queue_full", "queue_full"]
    assert await count(pool, nid) == 3


# --- a call whose record cannot be committed fails, whatever it was about to answer -------------
FAILURES = [
    pytest.param(lambda: StoreUnavailable("the replica is gone", store="replica"), id="server"),
    pytest.param(PersonNotFound, id="client"),
]


class FailingReads:
    """A store whose reads raise ``failure()`` (the counter's reader, the insured store)."""

    def __init__(self, failure: Callable[[], ServiceError]) -> None:
        self._failure = failure

    def _raise(self) -> None:
        raise self._failure()

    async def read_member(self, national_id: str, *, since: Month, min_lsn: int | None) -> None:
        self._raise()

    async def read_person(
        self, national_id: str, *, min_lsn: int | None, history_limit: int, since: Month
    ) -> None:
        self._raise()


async def outcomes(gw: Gateway, request_id: str) -> list[str]:
    rows = await gw.db.primary.fetch(
        "SELECT outcome FROM audit_log WHERE request_id = $1", request_id
    )
    return [row["outcome"] for row in rows]


def counter_with(gw: Gateway, reads: FailingReads) -> CounterService:
    ledger = PgLedger(primary=lambda: gw.db.primary, router=lambda: gw.db.router)
    return CounterService(
        admission=gw.admission,
        audit=gw.audit,
        reader=reads,  # type: ignore[arg-type]
        ledger=ledger,
        rates=gw.rates,
        recent=RecentWrites(),
        rules=counter_rules(gw.settings),
        clock=business_clock(),
    )


def insured_with(gw: Gateway, reads: FailingReads) -> InsuredAdmin:
    gate = AdminGate(
        admission=gw.admission,
        audit=gw.audit,
        prefixes=gw.settings.prefixes(),
        clock=business_clock(),
    )
    return InsuredAdmin(
        gate=gate,
        store=reads,  # type: ignore[arg-type]
        recent=RecentWrites(),
        s40=counter_rules(gw.settings).s40,
        clock=business_clock(),
    )


@pytest.mark.parametrize("failure", FAILURES)
async def test_a_counter_refusal_whose_record_cannot_be_kept_fails_as_audit_unavailable(
    gateway: Gateway,
    partner: PartnerCredentials,
    owner_pool: asyncpg.Pool,
    failure: Callable[[], ServiceError],
) -> None:
    counter = counter_with(gateway, FailingReads(failure))
    expected = type(failure())

    async def inquire(request_id: str) -> None:
        await counter.inquire(
            caller=Caller(Protocol.SOAP, "127.0.0.1", request_id),
            credentials=digest_token(partner.username, partner.password),
            request=InquiryRequest(new_national_id()),
        )

    recorded = uuid.uuid4().hex
    with pytest.raises(expected) as answered:
        await inquire(recorded)
    assert await outcomes(gateway, recorded) == [answered.value.code], "refusals are audited"

    lost = uuid.uuid4().hex
    async with audit_records_refused(owner_pool, lost):
        with pytest.raises(AuditUnavailable) as failed:
            await inquire(lost)
    assert isinstance(failed.value.__cause__, expected), "the refusal it could not record"
    assert failed.value.retryable and await outcomes(gateway, lost) == []


@pytest.mark.parametrize("failure", FAILURES)
async def test_an_admin_refusal_whose_record_cannot_be_kept_fails_as_audit_unavailable(
    gateway: Gateway,
    client_token: str,
    owner_pool: asyncpg.Pool,
    failure: Callable[[], ServiceError],
) -> None:
    insured = insured_with(gateway, FailingReads(failure))
    expected = type(failure())

    async def read(request_id: str) -> None:
        await insured.read(
            caller=Caller(Protocol.REST, "127.0.0.1", request_id),
            credentials=BearerToken(client_token),
            national_id=new_national_id(),
        )

    recorded = uuid.uuid4().hex
    with pytest.raises(expected) as answered:
        await read(recorded)
    assert await outcomes(gateway, recorded) == [answered.value.code], "refusals are audited"

    lost = uuid.uuid4().hex
    async with audit_records_refused(owner_pool, lost):
        with pytest.raises(AuditUnavailable) as failed:
            await read(lost)
    assert isinstance(failed.value.__cause__, expected), "the refusal it could not record"
    assert failed.value.retryable and await outcomes(gateway, lost) == []


async def test_a_defect_in_a_use_case_is_still_on_the_trail_as_server_internal(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    """Not a refusal but a bug: the call still leaves its record before the 500 goes out."""
    calls = AuditedCalls(admission=gateway.admission, sink=gateway.audit, clock=business_clock())
    rid = uuid.uuid4().hex
    nid = new_national_id()

    async def defective(audit: CallAudit) -> None:
        audit.national_id = nid
        await audit.admit(digest_token(partner.username, partner.password), scope="counter")
        raise ZeroDivisionError("a defect")

    with pytest.raises(ZeroDivisionError):
        await calls.run(Caller(Protocol.SOAP, "127.0.0.1", rid), "InquireContribution", defective)
    row = await gateway.db.primary.fetchrow(
        "SELECT outcome, national_id FROM audit_records WHERE request_id = $1", rid
    )
    assert row is not None and (row["outcome"], row["national_id"]) == ("server.internal", nid)
