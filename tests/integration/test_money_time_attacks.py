"""Attacks on money and business-time correctness: what the counter records for a month and what
the refund listing then makes of it.

Each test here fails on the code it was written against and passes once the defect it names is
fixed; the docstring of each says what DOMAIN.md asks for.
"""

from __future__ import annotations

import uuid
from datetime import date, time

import asyncpg
import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.counter.records import ConfirmResult, InquiryRequest
from app.domain.months import Month
from app.errors import AmountMismatch, SavingsNotAllowed, ServiceError
from app.main import Gateway
from app.rates.service import RateRequest
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, confirm_request, s40_person
from tests.support.fleet import instance
from tests.support.people import add_person, wait_replayed
from tests.support.rate_changes import (
    BAHT,
    S40_RATE,
    change_option,
    confirm_months,
    offered,
    owed_to,
)
from tests.support.rest_api import replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


# --- an option change pending: the month paid keeps the option it was priced at -----------------
async def test_a_month_paid_before_an_option_change_is_recorded_at_the_option_it_was_priced_at(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """Option 3 -> 1 from next month; this month is still option 3 and costs 300 baht, which
    the counter takes. The ledger must record the month under option 3 (the option it was
    priced and paid at), so the refund listing owes nothing: no rate was cut (DOMAIN.md,
    "A retroactive cut after people paid creates an overpayment per person and month").

    Today the ledger records it under the member's *new* option 1, and the refund listing then
    owes 230.00 baht (300 paid - 70 "due" at option 1) as a ``rate_cut`` that never happened."""
    nid = await s40_person(gateway, option=3)
    effective = await change_option(gateway, nid, 1)
    current = clock.month()
    assert effective == current.plus(1)
    paid = await confirm_months(gateway, partner, nid, [current], S40_RATE[3])
    assert paid.amount_satang == S40_RATE[3]  # priced at option 3, as the inquiry offered it

    recorded = await gateway.db.primary.fetchval(
        "SELECT s40_option FROM paid_months WHERE national_id = $1 AND month = $2",
        nid, current.first_day,
    )  # fmt: skip
    owed = await owed_to(gateway, current, nid)
    assert [(r.refund_satang, [m.reason for m in r.months]) for r in owed] == []
    assert recorded == 3


async def test_additional_savings_are_refused_for_a_month_still_under_option_1(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """Option 1 -> 2 from next month. Additional savings are "for options 2 and 3", "up to
    1,000 baht per month paid" (DOMAIN.md, Section 40): this month is paid under option 1
    (70 baht, the option-1 price), so savings on it must be refused.

    Today the savings check looks at the member's new option (2) and takes 100 baht of savings
    on a month paid under option 1."""
    nid = await s40_person(gateway, option=1)
    await change_option(gateway, nid, 2)
    current = clock.month()
    inquiry = await gateway.counter.inquire(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=InquiryRequest(nid),
    )
    assert (
        inquiry.months[0].month == str(current) and inquiry.months[0].amount_satang == S40_RATE[1]
    )
    try:
        taken: ConfirmResult | ServiceError = await confirm_months(
            gateway, partner, nid, [current], S40_RATE[1] + 100 * BAHT, savings=100 * BAHT
        )
    except ServiceError as refused:
        taken = refused
    assert isinstance(taken, SavingsNotAllowed), taken


# --- Section 39 late surcharge is not an overpayment ---------------------------------------------
async def test_a_late_surcharge_is_not_listed_as_a_rate_cut_refund(
    settings: Settings, gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """With a late surcharge set (``SSOGW_S39_LATE_SURCHARGE_SATANG``, DOMAIN.md: "a late
    surcharge (default 0)" is a setting), an overdue Section 39 month costs 432 + 10 baht. No
    rate was cut, so the refund listing must owe nothing for it (app/domain/overpayment.py
    itself says a paid month's amount is "the contribution taken (late surcharge excluded)").

    Today paid_months keeps 442.00 for the month, and the refund listing owes the 10.00 baht
    surcharge back as a ``rate_cut``."""
    today = clock.today()
    on = date(today.year, today.month, 20)  # after the 15th: last month is overdue
    current = Month.of(on)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn,
            section=39,
            coverage_start=current.minus(14),
            paid=list(Month.range(current.minus(14), current.minus(2))),
            replicas=replicas(gateway),
        )
    async with instance(settings, clock, "surcharge", s39_late_surcharge_satang=10 * BAHT) as gw:
        with clock.at(time(10, 0), on=on):
            paid = await confirm_months(
                gw, partner, nid, [current.minus(1)], 442 * BAHT, section=39
            )
    assert paid.amount_satang == 442 * BAHT  # the surcharge was charged, as set
    owed = await owed_to(gateway, current.minus(1), nid)
    assert [
        (str(m.month), m.paid_satang, m.due_satang, m.refund_satang, m.reason)
        for r in owed for m in r.months
    ] == []  # fmt: skip


# --- a rate change reaches every instance of the fleet -------------------------------------------
async def test_a_new_rate_prices_payments_on_every_instance_at_once(
    settings: Settings, gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock,
    owner_pool: asyncpg.Pool,
) -> None:  # fmt: skip
    """DOMAIN.md, Money: "a payment whose amount differs from the computed amount for the months
    it covers is rejected"; DESIGN.md: "Nothing in the service assumes a single instance".

    A cut of next month's option-2 rate (100 -> 60 baht) is added through instance A. Instance
    B, which had read the rate table just before, goes on offering and taking 100 baht for that
    month: its RateBook (app/rates/book.py, ttl 60 s) is invalidated only on the instance that
    added the rate (app/rates/service.py ``self._rates.invalidate()``)."""
    current = clock.month()
    nxt = current.plus(1)
    issued = await gateway.registry.add_client(name=f"c-{uuid.uuid4().hex[:10]}", scopes=["admin"])
    token = digest_token(partner.username, partner.password)
    async with instance(settings, clock, "rates-a") as a, instance(settings, clock, "rates-b") as b:
        before_nid = await s40_person(gateway, option=2)
        seen = await b.counter.inquire(
            caller=caller(), credentials=token, request=InquiryRequest(before_nid)
        )  # B has the table now
        assert {m.month: m.amount_satang for m in seen.months}[str(nxt)] == S40_RATE[2]
        change = await a.api.rates.add_rate(
            caller=Caller(Protocol.REST, "127.0.0.1", uuid.uuid4().hex),
            credentials=BearerToken(issued.token),
            request=RateRequest(40, 2, str(nxt), str(nxt), 60 * BAHT, 50 * BAHT, "test: cut"),
            retroactive=False,
        )
        try:
            # A, which added it, prices next month at the cut at once.
            control = await s40_person(gateway, option=2)
            with pytest.raises(AmountMismatch):
                await a.counter.confirm(
                    caller=caller(),
                    credentials=digest_token(partner.username, partner.password),
                    request=confirm_request(control, [str(current), str(nxt)], 2 * S40_RATE[2]),
                )
            nid = await s40_person(gateway, option=2)
            try:
                taken: ConfirmResult | ServiceError = await b.counter.confirm(
                    caller=caller(),
                    credentials=digest_token(partner.username, partner.password),
                    request=confirm_request(nid, [str(current), str(nxt)], 2 * S40_RATE[2]),
                )
            except ServiceError as refused:
                taken = refused
            assert isinstance(taken, AmountMismatch), taken
            assert taken.details["expected_satang"] == S40_RATE[2] + 60 * BAHT
        finally:
            await owner_pool.execute("DELETE FROM paid_months WHERE month = $1 AND national_id"
                                     " = $2", nxt.first_day, nid)  # fmt: skip
            await owner_pool.execute(
                "DELETE FROM contribution_rates WHERE id = $1", change.record.id
            )


async def test_a_new_rate_is_offered_by_every_instance_once_its_standby_has_it(
    settings: Settings, gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock,
    owner_pool: asyncpg.Pool,
) -> None:  # fmt: skip
    """The inquiry's read brings, once a second, the fingerprint of the rate table its standby
    holds; an instance whose cached table differs reads it again, so it offers what its own
    confirms will take within a second or so (before, it offered the old price for up to the
    table's 60 s, and its confirms refused that amount)."""
    current, nxt = clock.month(), clock.month().plus(1)
    issued = await gateway.registry.add_client(name=f"c-{uuid.uuid4().hex[:10]}", scopes=["admin"])
    nid = await s40_person(gateway, option=2)
    async with instance(settings, clock, "rates-a") as a, instance(settings, clock, "rates-b") as b:
        seen = await b.counter.inquire(
            caller=caller(),
            credentials=digest_token(partner.username, partner.password),
            request=InquiryRequest(nid),
        )
        assert {m.month: m.amount_satang for m in seen.months}[str(nxt)] == S40_RATE[2]
        change = await a.api.rates.add_rate(
            caller=Caller(Protocol.REST, "127.0.0.1", uuid.uuid4().hex),
            credentials=BearerToken(issued.token),
            request=RateRequest(40, 2, str(nxt), str(nxt), 60 * BAHT, 50 * BAHT, "test: cut"),
            retroactive=False,
        )
        try:
            async with gateway.db.primary.acquire() as conn:
                await wait_replayed(conn, replicas(gateway))
            assert await offered(b, partner, nid, nxt, becomes=60 * BAHT) == 60 * BAHT
            paid = await b.counter.confirm(
                caller=caller(), credentials=digest_token(partner.username, partner.password),
                request=confirm_request(nid, [str(current), str(nxt)], S40_RATE[2] + 60 * BAHT),
            )  # fmt: skip
            assert paid.amount_satang == S40_RATE[2] + 60 * BAHT
        finally:
            await owner_pool.execute("DELETE FROM paid_months WHERE national_id = $1", nid)
            await owner_pool.execute(
                "DELETE FROM contribution_rates WHERE id = $1", change.record.id
            )
            for gw in (gateway, a, b):
                gw.rates.invalidate()
