"""A write and its audit record commit together: a confirm's, a cancel's and an option change's
record is written in the call's own transaction, so no record claims a payment that does not
exist and no payment is without its record. The chain link follows: any instance's linker puts
such records on the one hash chain, after a crash too, and lookups see them before it does."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day

import asyncpg
import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.audit.queries import AuditQueries
from app.audit.records import AuditRecord
from app.audit.seals.checkpoint_dir import CheckpointDir
from app.audit.seals.seal_key import configured_keys
from app.audit.service import AuditService
from app.audit.unlinked import add_unlinked
from app.audit.writer import AuditWriter
from app.counter.records import CancelRequest
from app.db.pools import PoolConfig, open_pool
from app.domain.national_id import generate_national_id
from app.errors import StoreUnavailable
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, confirm_request, s40_person, today
from tests.support.people import payment_business_day
from tests.support.rest_api import new_token
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

RECORDS = """
SELECT operation, outcome, seq, detail FROM audit_records WHERE request_id = $1 ORDER BY at
"""


@asynccontextmanager
async def lost_at_commit(owner: asyncpg.Pool, table: str, when: str) -> AsyncIterator[None]:
    """The commit of a transaction that wrote a row of ``table`` matching ``when`` fails, as
    if the connection were lost while committing (a deferred trigger raising 57P01, added and
    removed by the schema's owner: the gateway's service role may not)."""
    name = f"lose_{uuid.uuid4().hex[:8]}"
    await owner.execute(
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF {when} THEN RAISE EXCEPTION 'lost at commit' USING ERRCODE = '57P01'; END IF;"
        " RETURN NULL; END $$;"
        f" CREATE CONSTRAINT TRIGGER {name} AFTER INSERT OR UPDATE ON {table}"
        f" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {name}()"
    )
    try:
        yield
    finally:
        await owner.execute(f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}()")


async def records(gw: Gateway, request_id: str) -> list[asyncpg.Record]:
    return list(await gw.db.primary.fetch(RECORDS, request_id))


async def linked(
    pool: asyncpg.Pool, request_ids: list[str], *, within_s: float = 10, every: bool = False
) -> None:
    """Wait until every record of these requests (``every``: every record) is on the chain."""
    deadline = time.monotonic() + within_s
    while await pool.fetchval(
        "SELECT count(*) FROM audit_unlinked WHERE $2 OR request_id = ANY($1)", request_ids, every
    ):
        assert time.monotonic() < deadline, "records were not linked in time"
        await asyncio.sleep(0.02)


# --- a write and its record commit together ------------------------------------------------------
async def test_a_confirm_is_recorded_with_its_payment_and_linked_after(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    nid = await s40_person(gateway)
    rid = uuid.uuid4().hex
    began = datetime.now(UTC) - timedelta(days=1)
    paid = await gateway.counter.confirm(
        caller=caller(rid),
        credentials=digest_token(partner.username, partner.password),
        request=confirm_request(nid, [str(today())], 7000),
    )
    # Committed with the payment: there before the call answered, linked or not.
    [record] = await records(gateway, rid)
    assert (record["operation"], record["outcome"]) == ("ConfirmPayment", "ok")
    assert record["detail"]["receiptNo"] == paid.receipt_no
    await linked(gateway.db.primary, [rid])
    [record] = await records(gateway, rid)
    assert record["seq"] is not None
    await gateway.sealer.seal()  # verify holds the chain to a checkpoint
    result = await gateway.audit_trail.verify(began, datetime.now(UTC) + timedelta(days=1))
    assert result.ok, result.first_broken


async def test_a_confirm_whose_commit_is_lost_leaves_no_record_claiming_its_receipt(
    gateway: Gateway, partner: PartnerCredentials, owner_pool: asyncpg.Pool
) -> None:
    """The record was written before the commit failed: it goes with the payment, and the
    call is recorded as what it was, a failure."""
    nid = await s40_person(gateway)
    rid = uuid.uuid4().hex
    request = confirm_request(nid, [str(today())], 7000)
    async with lost_at_commit(
        owner_pool, "payments", f"NEW.partner_txn_id = '{request.partner_txn_id}'"
    ):
        with pytest.raises(StoreUnavailable):
            await gateway.counter.confirm(
                caller=caller(rid),
                credentials=digest_token(partner.username, partner.password),
                request=request,
            )
    payments = "SELECT count(*) FROM payments WHERE national_id = $1"
    assert await gateway.db.primary.fetchval(payments, nid) == 0
    found = await records(gateway, rid)
    assert [(r["operation"], r["outcome"]) for r in found] == [
        ("ConfirmPayment", "server.store_unavailable")
    ]
    assert "receiptNo" not in found[0]["detail"]


async def test_a_cancel_whose_commit_is_lost_leaves_the_payment_and_no_cancel_record(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock, owner_pool: asyncpg.Pool
) -> None:
    nid = await s40_person(gateway)
    request = confirm_request(nid, [str(today())], 7000)
    token = lambda: digest_token(partner.username, partner.password)  # noqa: E731
    await gateway.counter.confirm(caller=caller(), credentials=token(), request=request)
    txn = request.partner_txn_id
    posted = await payment_business_day(gateway.db.primary, txn)
    lost, done = uuid.uuid4().hex, uuid.uuid4().hex
    with clock.at(time_of_day(10, 0), on=posted):  # before that day's cut-off
        when = f"NEW.partner_txn_id = '{txn}' AND NEW.state = 'cancelled'"
        async with lost_at_commit(owner_pool, "payments", when):
            with pytest.raises(StoreUnavailable):
                await gateway.counter.cancel(
                    caller=caller(lost), credentials=token(), request=CancelRequest(txn, "mistake")
                )
        state = "SELECT state FROM payments WHERE partner_txn_id = $1"
        assert await gateway.db.primary.fetchval(state, txn) == "confirmed"
        assert [(r["operation"], r["outcome"]) for r in await records(gateway, lost)] == [
            ("CancelPayment", "server.store_unavailable")
        ]
        # Retried, the cancel goes through with exactly one record saying so.
        await gateway.counter.cancel(
            caller=caller(done), credentials=token(), request=CancelRequest(txn, "mistake")
        )
    assert await gateway.db.primary.fetchval(state, txn) == "cancelled"
    [record] = await records(gateway, done)
    assert record["outcome"] == "ok" and record["detail"]["alreadyCancelled"] is False


async def test_an_option_change_whose_commit_is_lost_is_not_recorded_as_made(
    gateway: Gateway,
    owner_pool: asyncpg.Pool,
) -> None:
    nid = await s40_person(gateway, option=1)
    token = await new_token(gateway, ["admin"])
    rid = uuid.uuid4().hex

    async def change(request_id: str) -> None:
        await gateway.api.insured.change_option(
            caller=Caller(Protocol.REST, "127.0.0.1", request_id),
            credentials=BearerToken(token),
            national_id=nid,
            option=2,
        )

    async with lost_at_commit(owner_pool, "s40_option_changes", f"NEW.national_id = '{nid}'"):
        with pytest.raises(StoreUnavailable):
            await change(rid)
    option = "SELECT s40_option FROM insured_persons WHERE national_id = $1"
    assert await gateway.db.primary.fetchval(option, nid) == 1
    assert [r["outcome"] for r in await records(gateway, rid)] == ["server.store_unavailable"]
    done = uuid.uuid4().hex
    await change(done)
    assert await gateway.db.primary.fetchval(option, nid) == 2
    assert [r["outcome"] for r in await records(gateway, done)] == ["ok"]


# --- linking: lookups first, then the chain; across instances and after a crash ------------------
def record(national_id: str, at: datetime, **fields: str) -> AuditRecord:
    values = {"operation": "ConfirmPayment", "request_id": uuid.uuid4().hex} | fields
    return AuditRecord(
        at=at, protocol="soap", outcome="ok", principal_kind="partner", principal_id=7,
        principal_name="counter-service", source_ip="10.1.2.3", national_id=national_id,
        name_returned="นาย สมชาย ใจดี", detail={"receiptNo": "R-1", "amount": 70.5},
        **values,
    )  # fmt: skip


def past_window() -> datetime:
    """The start of an hour in 1970-1999 that no other test writes into."""
    rng = random.Random(uuid.uuid4().int)
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(24 * 365 * 30))


async def committed_by_a_business_transaction(pool: asyncpg.Pool, *records: AuditRecord) -> None:
    """Records committed in a transaction of their own, no linker told: as an instance leaves
    them when it is killed right after its confirms commit."""
    async with pool.acquire() as conn, conn.transaction():
        for each in records:
            await add_unlinked(conn, each)


@asynccontextmanager
async def chain_head_held(settings: Settings) -> AsyncIterator[None]:
    """Every writer and linker waits at the chain head meanwhile (held by the owner: the
    service role may not)."""
    assert settings.owner_dsn
    holder = await asyncpg.connect(settings.owner_dsn)
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM audit_chain WHERE id FOR UPDATE")
            yield
    finally:
        await holder.close()


async def test_lookups_see_a_record_before_its_chain_link_and_page_across_it(
    gateway: Gateway, settings: Settings
) -> None:
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    start = past_window()
    # Earlier tests' records linked first: a linker that read one of them and then waited for
    # the head held below would put it between this test's two records, inside its window.
    gateway.audit.link_soon()
    await linked(gateway.db.primary, [], every=True)
    older = record(nid, start, operation="InquireContribution")
    await gateway.audit.record(older)  # on the chain at once
    newer = record(nid, start + timedelta(minutes=1))
    service = AuditService(
        queries=AuditQueries(pool_provider=lambda: gateway.db.primary),
        checkpoints=CheckpointDir(settings.seal_dir()),  # the session's, as its gateways'
        keys=lambda: configured_keys(settings.seal_key_file(), []),
        clock=lambda: start,
    )
    window = {"from_": start, "to": start + timedelta(hours=1)}
    await gateway.sealer.seal()  # as every instance does at its cadence: verify needs a seal
    async with chain_head_held(settings):
        await committed_by_a_business_transaction(gateway.db.primary, newer)
        page = await service.lookups(nid, limit=1, **window)
        assert [(r.request_id, r.seq) for r in page.records] == [(newer.request_id, None)]
        assert page.next_cursor is not None
        rest = await service.lookups(nid, limit=1, cursor=page.next_cursor, **window)
        assert [r.request_id for r in rest.records] == [older.request_id]
        assert rest.records[0].seq is not None and rest.next_cursor is None
        waiting = await service.verify(**window)
        assert waiting.ok and waiting.checked == 1 and waiting.unlinked == 1
    gateway.audit.link_soon()
    await linked(gateway.db.primary, [newer.request_id])
    page = await service.lookups(nid, **window)
    assert [r.request_id for r in page.records] == [newer.request_id, older.request_id]
    assert all(r.seq is not None for r in page.records)
    result = await service.verify(**window)
    assert result.ok and result.checked == 2 and result.unlinked == 0


async def test_records_a_crashed_instance_left_are_linked_by_another_and_verify(
    gateway: Gateway, settings: Settings
) -> None:
    """The dead instance's records wait, committed; the running instance's linker finds them
    (at its cadence, told by nobody) and puts each on the chain once."""
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    start = past_window()
    left = [record(nid, start + timedelta(seconds=i)) for i in range(30)]
    await committed_by_a_business_transaction(gateway.db.primary, *left)
    ids = [r.request_id for r in left]
    await linked(gateway.db.primary, ids, within_s=3 * settings.audit_link_interval_s + 5)
    rows = await gateway.db.primary.fetch(
        "SELECT request_id, count(*) AS n FROM audit_log WHERE request_id = ANY($1)"
        " GROUP BY request_id",
        ids,
    )
    assert sorted(r["request_id"] for r in rows) == sorted(ids) and {r["n"] for r in rows} == {1}
    await gateway.sealer.seal()  # verify holds the chain to a checkpoint
    result = await gateway.audit_trail.verify(start, start + timedelta(hours=1))
    assert result.ok and result.checked == 30, result


async def test_two_instances_link_into_one_chain_each_record_once(
    settings: Settings, gateway: Gateway
) -> None:
    """Two more instances (writers with linkers, pools of their own) and the session's, while
    transactions commit records and inquiries' records go through both group commits."""
    assert settings.primary_dsn
    pools = [
        await open_pool(settings.primary_dsn, PoolConfig(1, 4, 3.0, 30.0), read_only=False,
                        name=f"instance-{i}")
        for i in range(2)
    ]  # fmt: skip
    writers = [
        AuditWriter(pool_provider=lambda p=p: p, max_batch=16, max_wait_ms=1, link_interval_s=0.2)
        for p in pools
    ]
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    start = past_window()
    made: list[AuditRecord] = []

    async def business(i: int) -> None:
        each = record(nid, start + timedelta(seconds=i))
        made.append(each)
        await committed_by_a_business_transaction(pools[i % 2], each)
        writers[i % 2].link_soon()

    async def inquiry(i: int) -> None:
        each = record(nid, start + timedelta(seconds=i, microseconds=1), operation="Inquire")
        made.append(each)
        await writers[i % 2].record(each)

    try:
        for writer in writers:
            await writer.start()
        await asyncio.gather(*(business(i) for i in range(150)), *(inquiry(i) for i in range(150)))
        await linked(pools[0], [r.request_id for r in made])
    finally:
        for writer in writers:
            await writer.stop()
        for pool in pools:
            await pool.close()
    rows = await gateway.db.primary.fetch(
        "SELECT request_id, seq FROM audit_log WHERE national_id = $1 ORDER BY seq", nid
    )
    assert sorted(r["request_id"] for r in rows) == sorted(r.request_id for r in made)
    await gateway.sealer.seal()  # verify holds the chain to a checkpoint
    result = await gateway.audit_trail.verify(start, start + timedelta(hours=1))
    assert result.ok and result.checked == 300, result
