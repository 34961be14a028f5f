"""The counter transaction on the real primary and replica, through the service layer:
inquiry and confirm (status, cancel and the audit trail: test_counter_cancel_and_audit.py)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.counter.records import InquiryRequest
from app.domain.months import Month
from app.errors import (
    AlreadyPaid,
    AmountMismatch,
    DuplicateTransaction,
    InvalidNationalId,
    MemberTerminated,
    MonthNotPayable,
    MonthsNotContiguous,
    PersonNotFound,
)
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.support.counter_calls import audit_rows, caller, confirm_request, s40_person, today
from tests.support.people import add_person
from tests.support.rest_api import replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


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
    assert result.as_of <= datetime.now(UTC) + timedelta(seconds=1)  # freshness: wall clock
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
            replicas=replicas(gateway),
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
            replicas=replicas(gateway),
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
