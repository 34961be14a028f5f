"""The counter transaction on the real primary and replica, through the service layer."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.admission.records import Caller, Protocol
from app.counter.ledger import PgLedger
from app.counter.records import CancelRequest, ConfirmRequest, CounterInfo, InquiryRequest, TxnState
from app.counter.service import CounterService
from app.db.read_meta import ReadPath
from app.db.recent_writes import RecentWrites
from app.domain.calendar import BANGKOK, business_date
from app.domain.months import Month
from app.errors import (
    AlreadyPaid,
    AmountMismatch,
    AuditUnavailable,
    CancelNotAllowed,
    DuplicateTransaction,
    InvalidNationalId,
    MemberTerminated,
    MonthNotPayable,
    MonthsNotContiguous,
    PersonNotFound,
)
from app.main import Gateway, counter_rules
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.people import add_person
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


def today() -> Month:
    return Month.of(business_date(datetime.now(UTC)))


def caller(request_id: str | None = None, ip: str = "127.0.0.1") -> Caller:
    return Caller(Protocol.SOAP, ip, request_id or uuid.uuid4().hex, terminal="T-01")


def confirm_request(
    nid: str,
    months: list[str],
    amount: int,
    *,
    section: int = 40,
    txn: str | None = None,
    savings: int = 0,
) -> ConfirmRequest:
    now = datetime.now(UTC)
    return ConfirmRequest(
        partner_txn_id=txn or uuid.uuid4().hex[:20],
        national_id=nid,
        section=section,
        months=tuple(months),
        amount_satang=amount,
        savings_satang=savings,
        business_date=business_date(now),
        paid_at=now,
        counter=CounterInfo(store_id="S-0001", terminal_id="T-01", shift="1", operator_id="op7"),
    )


async def s40_person(gw: Gateway, option: int = 1) -> str:
    async with gw.db.primary.acquire() as conn:
        return await add_person(conn, section=40, option=option, coverage_start=today().minus(24))


async def audit_rows(gw: Gateway, request_id: str) -> list[dict[str, object]]:
    rows = await gw.db.primary.fetch(
        "SELECT operation, outcome, national_id, name_returned, principal_name"
        " FROM audit_log WHERE request_id = $1",
        request_id,
    )
    return [dict(r) for r in rows]


# --- inquiry -------------------------------------------------------------------------------------
async def test_inquiry_offers_the_s40_current_month_and_twelve_ahead(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    nid = await s40_person(gateway, option=2)
    rid = uuid.uuid4().hex
    result = await gateway.counter.inquire(
        caller=caller(rid),
        credentials=digest_token(partner.username, partner.password),
        request=InquiryRequest(nid),
    )
    assert result.section == 40 and result.option == 2 and result.status == "active"
    assert [m.month for m in result.months] == [str(today().plus(i)) for i in range(13)]
    assert result.default_months == (str(today()),)
    assert result.default_total_satang == 10000
    assert result.savings_allowed and result.max_savings_per_month_satang == 100_000
    assert result.as_of <= datetime.now(UTC) + timedelta(seconds=1)
    records = await audit_rows(gateway, rid)
    assert records == [
        {
            "operation": "InquireContribution",
            "outcome": "ok",
            "national_id": nid,
            "name_returned": "นางสมหญิง ใจดี",
            "principal_name": partner.name,
        }
    ]


async def test_inquiry_of_a_section_39_member_with_a_late_month(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    current = today()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn,
            section=39,
            coverage_start=current.minus(40),
            paid=[current.minus(i) for i in range(3, 14)],
        )
    result = await gateway.counter.inquire(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=InquiryRequest(nid, section=39),
    )
    assert result.status == "active"
    months = [m.month for m in result.months]
    assert str(current) in months and all(m.amount_satang == 43200 for m in result.months)
    assert list(result.default_months) == months


async def test_a_terminated_member_is_shown_terminated_and_cannot_pay(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    current = today()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn,
            section=39,
            coverage_start=current.minus(30),
            paid=[current.minus(i) for i in range(7, 14)],
        )
    token = digest_token(partner.username, partner.password)
    result = await gateway.counter.inquire(
        caller=caller(), credentials=token, request=InquiryRequest(nid)
    )
    assert result.status == "terminated" and result.months == ()
    assert result.status_reason == "three_consecutive_unpaid"
    with pytest.raises(MemberTerminated):
        await gateway.counter.confirm(
            caller=caller(),
            credentials=digest_token(partner.username, partner.password),
            request=confirm_request(nid, [str(current)], 43200, section=39),
        )


async def test_a_bad_id_is_refused_before_any_lookup_and_audited(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    rid = uuid.uuid4().hex
    with pytest.raises(InvalidNationalId) as refused:
        await gateway.counter.inquire(
            caller=caller(rid),
            credentials=digest_token(partner.username, partner.password),
            request=InquiryRequest("3100600445636"),
        )
    assert refused.value.details["reason"] == "checksum"
    assert [r["outcome"] for r in await audit_rows(gateway, rid)] == ["client.invalid_national_id"]


async def test_an_unknown_person_is_not_found(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    with pytest.raises(PersonNotFound):
        await gateway.counter.inquire(
            caller=caller(),
            credentials=digest_token(partner.username, partner.password),
            request=InquiryRequest("1234545678781"),
        )


# --- confirm -------------------------------------------------------------------------------------
async def test_confirm_records_the_payment_and_its_months(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    nid = await s40_person(gateway)
    months = [str(today()), str(today().plus(1)), str(today().plus(2))]
    result = await gateway.counter.confirm(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=confirm_request(nid, months, 3 * 7000),
    )
    assert result.receipt_no.startswith("R") and result.months == tuple(months)
    assert not result.replayed
    paid = await gateway.db.primary.fetch(
        "SELECT month, amount_satang FROM paid_months WHERE national_id = $1 ORDER BY month", nid
    )
    assert [str(Month.of(r["month"])) for r in paid] == months
    assert {r["amount_satang"] for r in paid} == {7000}


@pytest.mark.parametrize(
    ("months", "amount", "error"),
    [
        (lambda m: [str(m)], 6999, AmountMismatch),
        (lambda m: [str(m.plus(1))], 7000, MonthsNotContiguous),
        (lambda m: [str(m.minus(1))], 7000, MonthNotPayable),
        (lambda m: [str(m.plus(13))], 7000, MonthNotPayable),
    ],
)
async def test_confirm_refusals_leave_nothing_behind(
    gateway: Gateway,
    partner: PartnerCredentials,
    months,
    amount,
    error,  # type: ignore[no-untyped-def]
) -> None:
    nid = await s40_person(gateway)
    rid = uuid.uuid4().hex
    with pytest.raises(error):
        await gateway.counter.confirm(
            caller=caller(rid),
            credentials=digest_token(partner.username, partner.password),
            request=confirm_request(nid, months(today()), amount),
        )
    assert (
        await gateway.db.primary.fetchval(
            "SELECT count(*) FROM payments WHERE national_id = $1", nid
        )
        == 0
    )
    assert [r["outcome"] for r in await audit_rows(gateway, rid)] == [error.code]


async def test_twenty_counters_paying_the_same_months_at_once_make_one_payment(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    nid = await s40_person(gateway)
    month = [str(today())]

    async def one() -> object:
        try:
            return await gateway.counter.confirm(
                caller=caller(),
                credentials=digest_token(partner.username, partner.password),
                request=confirm_request(nid, month, 7000),
            )
        except AlreadyPaid as exc:
            return exc

    results = await asyncio.gather(*(one() for _ in range(24)))
    winners = [r for r in results if not isinstance(r, AlreadyPaid)]
    assert len(winners) == 1
    assert sum(isinstance(r, AlreadyPaid) for r in results) == 23
    assert (
        await gateway.db.primary.fetchval(
            "SELECT count(*) FROM payments WHERE national_id = $1", nid
        )
        == 1
    )


async def test_the_same_confirm_replayed_100_times_is_one_payment(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    nid = await s40_person(gateway)
    request = confirm_request(nid, [str(today())], 7000)

    async def once() -> object:
        return await gateway.counter.confirm(
            caller=caller(),
            credentials=digest_token(partner.username, partner.password),
            request=request,
        )

    first = await once()
    again = await asyncio.gather(*(once() for _ in range(99)))
    assert all(replace(r, replayed=False) == first for r in again)  # type: ignore[type-var]
    assert all(r.replayed for r in again)  # type: ignore[attr-defined]
    assert (
        await gateway.db.primary.fetchval(
            "SELECT count(*) FROM payments WHERE national_id = $1", nid
        )
        == 1
    )


async def test_a_changed_request_under_the_same_transaction_id_is_refused(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    nid = await s40_person(gateway)
    request = confirm_request(nid, [str(today())], 7000)
    await gateway.counter.confirm(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=request,
    )
    changed = replace(request, months=(str(today()), str(today().plus(1))), amount_satang=14000)
    with pytest.raises(DuplicateTransaction):
        await gateway.counter.confirm(
            caller=caller(),
            credentials=digest_token(partner.username, partner.password),
            request=changed,
        )


# --- status and cancel ---------------------------------------------------------------------------
async def test_status_and_cancel_free_the_months_and_are_idempotent(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    nid = await s40_person(gateway)
    request = confirm_request(nid, [str(today())], 7000)
    token = lambda: digest_token(partner.username, partner.password)  # noqa: E731
    confirmed = await gateway.counter.confirm(caller=caller(), credentials=token(), request=request)
    status = await gateway.counter.status(
        caller=caller(), credentials=token(), partner_txn_id=request.partner_txn_id
    )
    assert status.state is TxnState.CONFIRMED and status.receipt_no == confirmed.receipt_no
    first = await gateway.counter.cancel(
        caller=caller(),
        credentials=token(),
        request=CancelRequest(request.partner_txn_id, "customer changed their mind"),
    )
    second = await gateway.counter.cancel(
        caller=caller(), credentials=token(), request=CancelRequest(request.partner_txn_id, "retry")
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
    posted = business_date(datetime.now(UTC))
    after_cutoff = datetime.combine(posted, settings.settlement_cutoff, tzinfo=BANGKOK)
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
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    nid = await s40_person(gateway)
    bystander = await s40_person(gateway)
    replica = gateway.db.router.replicas[0].pool
    token = lambda: digest_token(partner.username, partner.password)  # noqa: E731
    await asyncio.sleep(0.3)  # let the replica replay the new persons
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


async def test_when_the_audit_record_cannot_be_committed_no_payment_exists(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    nid = await s40_person(gateway)
    rid = f"audit-fails-{uuid.uuid4().hex}"
    constraint = f"refuse_{uuid.uuid4().hex[:8]}"
    await gateway.db.primary.execute(
        f"ALTER TABLE audit_log ADD CONSTRAINT {constraint} CHECK (request_id <> '{rid}') NOT VALID"
    )
    try:
        with pytest.raises(AuditUnavailable):
            await gateway.counter.confirm(
                caller=caller(rid),
                credentials=digest_token(partner.username, partner.password),
                request=confirm_request(nid, [str(today())], 7000),
            )
    finally:
        await gateway.db.primary.execute(f"ALTER TABLE audit_log DROP CONSTRAINT {constraint}")
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
    changed_on = business_date(datetime.now(UTC))
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
    result = await gateway.counter.inquire(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=InquiryRequest(nid),
    )
    amounts = {m.month: m.amount_satang for m in result.months}
    assert amounts[str(today())] == 7000  # still option 1 this month
    assert amounts[str(today().plus(1))] == 30000  # option 3 from next month
    assert result.option == 3
