"""The counter transaction on the real primary and replica, through the service layer:
status and cancel (business time pinned on each side of the cut-off), read-your-writes, and
what happens when the audit trail cannot take a record."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta

import asyncpg
import pytest

from app.counter.ledger import PgLedger
from app.counter.records import CancelRequest, InquiryRequest, TxnState
from app.counter.rules import counter_rules
from app.counter.service import CounterService
from app.db.read_meta import ReadPath
from app.db.recent_writes import RecentWrites
from app.domain.calendar import BANGKOK
from app.errors import AuditUnavailable, CancelNotAllowed
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock, business_clock
from tests.support.counter_calls import caller, confirm_request, s40_person, today
from tests.support.owner_rights import Refusal, audit_records_refused
from tests.support.people import payment_business_day, wait_replayed
from tests.support.rest_api import replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


# --- status and cancel ---------------------------------------------------------------------------
async def test_status_and_cancel_free_the_months_and_are_idempotent(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    nid = await s40_person(gateway)
    request = confirm_request(nid, [str(today())], 7000)
    token = lambda: digest_token(partner.username, partner.password)  # noqa: E731
    confirmed = await gateway.counter.confirm(caller=caller(), credentials=token(), request=request)
    status = await gateway.counter.status(
        caller=caller(), credentials=token(), partner_txn_id=request.partner_txn_id
    )
    assert status.state is TxnState.CONFIRMED and status.receipt_no == confirmed.receipt_no
    posted = await payment_business_day(gateway.db.primary, request.partner_txn_id)
    with clock.at(time(10, 0), on=posted):  # before that day's settlement cut-off
        first = await gateway.counter.cancel(
            caller=caller(),
            credentials=token(),
            request=CancelRequest(request.partner_txn_id, "customer changed their mind"),
        )
        second = await gateway.counter.cancel(
            caller=caller(),
            credentials=token(),
            request=CancelRequest(request.partner_txn_id, "retry"),
        )
    assert first == second and first.state is TxnState.CANCELLED
    assert (
        await gateway.db.primary.fetchval(
            "SELECT count(*) FROM paid_months WHERE national_id = $1", nid
        )
        == 0
    )
    inquiry = await gateway.counter.inquire(
        caller=caller(), credentials=token(), request=InquiryRequest(nid)
    )
    assert inquiry.default_months == (str(today()),)
    unknown = await gateway.counter.status(
        caller=caller(), credentials=token(), partner_txn_id="never-sent"
    )
    assert unknown.state is TxnState.UNKNOWN


async def test_another_partner_never_sees_or_cancels_a_transaction(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    other = await gateway.registry.add_partner(
        name=f"o-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"]
    )
    nid = await s40_person(gateway)
    request = confirm_request(nid, [str(today())], 7000)
    await gateway.counter.confirm(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=request,
    )
    theirs = digest_token(other.username, other.password)
    status = await gateway.counter.status(
        caller=caller(), credentials=theirs, partner_txn_id=request.partner_txn_id
    )
    assert status.state is TxnState.UNKNOWN and status.national_id is None
    from app.errors import TransactionNotFound

    with pytest.raises(TransactionNotFound):
        await gateway.counter.cancel(
            caller=caller(),
            credentials=digest_token(other.username, other.password),
            request=CancelRequest(request.partner_txn_id, "not mine"),
        )


async def test_a_cancel_after_the_cut_off_is_refused(
    gateway: Gateway, partner: PartnerCredentials, settings: Settings
) -> None:
    nid = await s40_person(gateway)
    request = confirm_request(nid, [str(today())], 7000)
    await gateway.counter.confirm(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=request,
    )
    day = await payment_business_day(gateway.db.primary, request.partner_txn_id)
    after_cutoff = datetime.combine(day, settings.settlement_cutoff, tzinfo=BANGKOK)
    ledger = PgLedger(primary=lambda: gateway.db.primary, router=lambda: gateway.db.router)
    late = CounterService(
        admission=gateway.admission,
        audit=gateway.audit,
        reader=ledger,
        ledger=ledger,
        rates=gateway.rates,
        recent=RecentWrites(),
        rules=counter_rules(settings),
        clock=lambda: after_cutoff + timedelta(minutes=1),
    )
    with pytest.raises(CancelNotAllowed):
        await late.cancel(
            caller=caller(),
            credentials=digest_token(partner.username, partner.password),
            request=CancelRequest(request.partner_txn_id, "too late"),
        )
    assert (
        await gateway.db.primary.fetchval(
            "SELECT state FROM payments WHERE partner_txn_id = $1", request.partner_txn_id
        )
        == "confirmed"
    )


# --- read-your-writes and the audit trail ---------------------------------------------------------
async def test_an_inquiry_right_after_a_confirm_never_offers_the_paid_month(
    gateway: Gateway, partner: PartnerCredentials, replica_superuser: asyncpg.Connection
) -> None:
    nid = await s40_person(gateway)
    bystander = await s40_person(gateway)
    replica = replica_superuser  # only the superuser may pause replay
    token = lambda: digest_token(partner.username, partner.password)  # noqa: E731
    async with gateway.db.primary.acquire() as conn:
        await wait_replayed(conn, replicas(gateway))  # the replica has the new persons
    await gateway.db.router.probe()
    await replica.execute("SELECT pg_wal_replay_pause()")
    try:
        await gateway.counter.confirm(
            caller=caller(), credentials=token(), request=confirm_request(nid, [str(today())], 7000)
        )
        after = await gateway.counter.inquire(
            caller=caller(), credentials=token(), request=InquiryRequest(nid)
        )
        assert str(today()) not in [m.month for m in after.months]
        assert after.served_by is ReadPath.PRIMARY
        # Another person's reads still go to the paused replica while its lag is in bounds.
        await gateway.db.router.probe()
        other = await gateway.counter.inquire(
            caller=caller(), credentials=token(), request=InquiryRequest(bystander)
        )
        assert other.served_by in (ReadPath.REPLICA, ReadPath.PRIMARY)
    finally:
        await replica.execute("SELECT pg_wal_replay_resume()")


@pytest.mark.parametrize("how", ["check", "trigger", "privilege"])
async def test_when_the_audit_record_cannot_be_committed_no_payment_exists(
    gateway: Gateway, partner: PartnerCredentials, owner_pool: asyncpg.Pool, how: Refusal
) -> None:
    """However the database refuses the record (the payment's insert carries it, one
    statement): the call fails as audit_unavailable, not as a defect of the gateway."""
    nid = await s40_person(gateway)
    rid = f"audit-fails-{uuid.uuid4().hex}"
    # The record is written in the payment's own transaction, into audit_unlinked.
    async with audit_records_refused(owner_pool, rid, table="audit_unlinked", how=how):
        with pytest.raises(AuditUnavailable):
            await gateway.counter.confirm(
                caller=caller(rid),
                credentials=digest_token(partner.username, partner.password),
                request=confirm_request(nid, [str(today())], 7000),
            )
    records = "SELECT count(*) FROM audit_records WHERE request_id = $1"
    assert await gateway.db.primary.fetchval(records, rid) == 0
    assert (
        await gateway.db.primary.fetchval(
            "SELECT count(*) FROM payments WHERE national_id = $1", nid
        )
        == 0
    )
    assert (
        await gateway.db.primary.fetchval(
            "SELECT count(*) FROM paid_months WHERE national_id = $1", nid
        )
        == 0
    )
    # And the gateway recovers: the same payment goes through afterwards.
    ok = await gateway.counter.confirm(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=confirm_request(nid, [str(today())], 7000),
    )
    assert ok.receipt_no


async def test_months_before_an_option_change_keep_the_old_option_price(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    nid = await s40_person(gateway, option=1)
    changed_on = business_clock().today()
    await gateway.db.primary.execute(
        "INSERT INTO s40_option_changes (national_id, changed_on, previous_option,"
        " new_option, effective_month) VALUES ($1, $2, 1, 3, $3)",
        nid,
        changed_on,
        today().plus(1).first_day,
    )
    await gateway.db.primary.execute(
        "UPDATE insured_persons SET s40_option = 3, option_changed_on = $2 WHERE national_id = $1",
        nid,
        changed_on,
    )
    async with gateway.db.primary.acquire() as conn:
        await wait_replayed(conn, replicas(gateway))
    result = await gateway.counter.inquire(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=InquiryRequest(nid),
    )
    amounts = {m.month: m.amount_satang for m in result.months}
    assert amounts[str(today())] == 7000  # still option 1 this month
    assert amounts[str(today().plus(1))] == 30000  # option 3 from next month
    assert result.option == 3
