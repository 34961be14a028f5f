"""Session 19 attacks on money and business time: a payment's id over REST, a paidAt ahead of
the gateway's clock across a month's end or a due date, an offer the ledger cannot hold, and a
source-system extract that moves a person to the other section.

Each test here fails on the code it was written against and passes once the defect it names is
fixed; the docstring of each says what DESIGN.md / DOMAIN.md ask for and what happens instead.
Business time is pinned through the session's clock (``clock.at``); nothing reads the wall clock.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, datetime, time, timedelta

import httpx
import pytest

from app.admission.credentials import Credentials
from app.cli.session import operator
from app.counter.records import ConfirmRequest, ConfirmResult, InquiryRequest
from app.domain.calendar import BANGKOK
from app.domain.months import Month
from app.errors import ServiceError
from app.insured.extract_file import ExtractHeader, PersonRecord, write_extract
from app.insured.import_repository import PersonImportRepository
from app.insured.person_import import PersonImportService
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, confirm_request
from tests.support.fleet import instance
from tests.support.people import add_person, wait_replayed
from tests.support.rest_api import bearer, replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

BAHT = 100


def _token(partner: PartnerCredentials) -> Credentials:
    return digest_token(partner.username, partner.password)


async def _s40(gateway: Gateway, since: Month) -> str:
    async with gateway.db.primary.acquire() as conn:
        return await add_person(
            conn, section=40, option=1, coverage_start=since.minus(24), replicas=replicas(gateway)
        )


async def _confirm(
    gw: Gateway, partner: PartnerCredentials, request: ConfirmRequest
) -> ConfirmResult | ServiceError:
    try:
        return await gw.counter.confirm(
            caller=caller(), credentials=_token(partner), request=request
        )
    except ServiceError as refused:
        return refused


# --- REST: a payment whose id holds a "/" can be made, but never looked up or cancelled -------
@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=live_url, headers=bearer(client_token), timeout=30
    ) as client:
        yield client


async def test_a_rest_payment_whose_id_holds_a_slash_can_be_looked_up_and_cancelled(
    api: httpx.AsyncClient, gateway: Gateway, clock: PinnedClock
) -> None:
    """DESIGN.md: REST offers "the same operations" as SOAP; DOMAIN.md: status is "how a counter
    resolves a timeout (never 'post again')" and a confirmed payment may be cancelled the same
    business day. A partnerTxnId is "1 to 64 printable characters" on both protocols, so
    ``POS/20240612/000123`` is taken by ``POST /api/v1/payments`` (201, Location
    ``/api/v1/payments/POS%2F...``), and over SOAP the same id is looked up and cancelled.

    Over REST the Location answers 404 ``client.not_found`` ("No such resource"): the server
    decodes ``%2F`` before routing, so ``/payments/{partnerTxnId}`` never matches. The payment
    can then be neither resolved after a timeout nor cancelled: the cash stays recorded."""
    current = clock.month()
    nid = await _s40(gateway, current)
    txn = f"POS/{uuid.uuid4().hex[:8]}/000123"
    now = clock()
    made = await api.post("/api/v1/payments", json={
        "partnerTxnId": txn, "nationalId": nid, "section": 40, "months": [str(current)],
        "amount": "70.00", "paidAt": now.isoformat(),
    })  # fmt: skip
    assert made.status_code == 201, made.text
    location = made.headers["location"]

    status = await api.get(location)
    cancel = await api.post(f"{location}/cancel", json={"reason": "wrong person"})
    state = await gateway.db.primary.fetchval(
        "SELECT state FROM payments WHERE national_id = $1 AND partner_txn_id = $2", nid, txn
    )
    assert (status.status_code, cancel.status_code, state) == (200, 200, "cancelled"), (
        status.text,
        cancel.text,
    )


# --- a paidAt ahead of the gateway's clock, across the end of a month -------------------------
def _month_end(clock: PinnedClock) -> tuple[Month, date]:
    month = clock.month()
    return month, month.last_day


async def test_the_month_the_inquiry_offers_is_payable_by_a_counter_a_few_seconds_fast(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """DOMAIN.md: the inquiry gives "the payable months"; the gateway decides the business day
    "never taken on trust"; ``paidAt`` may lie up to 1 minute after the gateway's clock
    (``SSOGW_PAID_AT_MAX_AHEAD_S``, for a terminal clock that runs fast).

    At 23:59:30 on the last day of month M (gateway's clock), the inquiry offers M (Section 40,
    the current month) as its default. The counter, whose clock is 40 s fast, confirms M with
    paidAt 00:00:10 on the 1st: a moment that has not happened yet, within the allowed drift.
    The gateway judges the payable months at that future paidAt, finds M a past month and
    refuses it (client.month_not_payable) though by its own clock M is still the current month.
    The months should be judged at the moment the cash was taken, which cannot be later than
    the gateway's now: min(paidAt, now)."""
    month, last = _month_end(clock)
    nid = await _s40(gateway, month)
    with clock.at(time(23, 59, 30), on=last):
        inquiry = await gateway.counter.inquire(
            caller=caller(), credentials=_token(partner), request=InquiryRequest(nid)
        )
        assert inquiry.default_months == (str(month),)
        fast = datetime.combine(last + timedelta(days=1), time(0, 0, 10), tzinfo=BANGKOK)
        request = replace(
            confirm_request(nid, [str(month)], inquiry.default_total_satang), paid_at=fast
        )
        taken = await _confirm(gateway, partner, request)
    assert isinstance(taken, ConfirmResult), taken
    assert taken.months == (str(month),)


async def test_no_payment_covers_more_than_twelve_months_after_the_gateways_current_month(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """DOMAIN.md, Section 40: "One payment may cover the current month plus up to 12 months
    ahead (13 at most)". At 23:59:30 on the last day of month M the gateway's current month is
    M, so M+13 may not be paid (the inquiry offers M..M+12).

    A counter 40 s fast sends paidAt 00:00:10 on the 1st (within the 1-minute drift) and pays
    M+1..M+13: taken, 13 months after the gateway's current month, on the strength of a
    future time the partner claims."""
    month, last = _month_end(clock)
    nid = await _s40(gateway, month)
    months = [str(m) for m in Month.range(month.plus(1), month.plus(13))]
    with clock.at(time(23, 59, 30), on=last):
        inquiry = await gateway.counter.inquire(
            caller=caller(), credentials=_token(partner), request=InquiryRequest(nid)
        )
        assert str(month.plus(13)) not in {m.month for m in inquiry.months}
        fast = datetime.combine(last + timedelta(days=1), time(0, 0, 10), tzinfo=BANGKOK)
        request = replace(confirm_request(nid, months, 13 * 70 * BAHT), paid_at=fast)
        taken = await _confirm(gateway, partner, request)
    assert isinstance(taken, ServiceError), taken.months
    assert taken.code == "client.month_not_payable", taken


async def test_a_section_39_month_paid_on_its_due_date_is_not_surcharged(
    settings: Settings, gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """DOMAIN.md, Section 39: month M is due "by the 15th of month M+1"; a late surcharge
    (a setting) is added to overdue months only. With a 10-baht surcharge, at 23:59:30 on the
    15th (gateway's clock) the inquiry offers M-1 at 432.00, not overdue.

    A counter 40 s fast confirms it at 432.00 with paidAt 00:00:10 on the 16th (within the
    1-minute drift): refused, client.amount_mismatch, "the amount due is 442.00" -- the
    gateway charges the surcharge for a month paid, by its own clock, on its due date."""
    current = clock.month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn,
            section=39,
            coverage_start=current.minus(14),
            paid=list(Month.range(current.minus(14), current.minus(2))),
            replicas=replicas(gateway),
        )
    fifteenth = date(current.year, current.month, 15)
    async with instance(
        settings, clock, "s19-surcharge", s39_late_surcharge_satang=10 * BAHT
    ) as gw:
        with clock.at(time(23, 59, 30), on=fifteenth):
            inquiry = await gw.counter.inquire(
                caller=caller(), credentials=_token(partner), request=InquiryRequest(nid)
            )
            offered = {m.month: (m.amount_satang, m.overdue) for m in inquiry.months}
            assert offered[str(current.minus(1))] == (432 * BAHT, False)
            fast = datetime.combine(fifteenth + timedelta(days=1), time(0, 0, 10), tzinfo=BANGKOK)
            request = replace(
                confirm_request(nid, [str(current.minus(1))], 432 * BAHT, section=39),
                paid_at=fast,
            )
            taken = await _confirm(gw, partner, request)
    assert isinstance(taken, ConfirmResult), taken
    assert taken.amount_satang == 432 * BAHT


# --- a setting the gateway takes, and a ledger that cannot hold what it then offers -----------
async def test_every_month_an_inquiry_offers_can_be_paid_or_is_refused_as_a_client_error(
    settings: Settings, gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """DOMAIN.md marks the months ahead a setting (``SSOGW_S40_MAX_MONTHS_AHEAD``); the gateway
    starts with 13, and its inquiry then offers 14 months. A confirm of all of them passes every
    rule of ``validate_payment`` and reaches the ledger, whose CHECK (0001_core.sql,
    ``cardinality(months) BETWEEN 1 AND 13``) refuses it: the confirm fails with asyncpg's
    CheckViolationError, an unmapped server error (500 / soap:Server), for a payment the
    gateway itself offered. Either the setting is refused at start-up or the payment is refused
    as a client error naming the limit; an offer should never be unpayable."""
    current = clock.month()
    nid = await _s40(gateway, current)
    async with instance(settings, clock, "s19-ahead", s40_max_months_ahead=13) as gw:
        inquiry = await gw.counter.inquire(
            caller=caller(), credentials=_token(partner), request=InquiryRequest(nid)
        )
        offered = [m.month for m in inquiry.months]
        assert len(offered) == 14
        total = sum(m.amount_satang for m in inquiry.months)
        try:
            taken: object = await gw.counter.confirm(
                caller=caller(),
                credentials=_token(partner),
                request=confirm_request(nid, offered, total),
            )
        except Exception as failed:  # what escapes is the finding
            taken = failed
    assert isinstance(taken, ConfirmResult | ServiceError), repr(taken)
    if isinstance(taken, ServiceError):
        assert taken.code.startswith("client."), taken


# --- a source-system extract that moves a person to the other section --------------------------
async def test_a_month_is_not_kept_paid_under_two_sections_after_an_extract_moves_a_person(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """DOMAIN.md: "One ID can ... hold closed memberships beside an open one"; a month paid
    under a membership that has ended is refunded in full (``cover_ended``, never carried over to
    the next membership: app/domain/overpayment.py); the refund listing must "compute and list
    those". The registration path keeps that: it closes the old membership
    (``closed_memberships``) before the new one opens.

    The source system's Section 40 extract (``ssogw import persons --format s40``) names a
    Section 39 member, now Section 40 option 2 from this month M. The member had paid M under
    Section 39 at the counter (432.00). The import's upsert overwrites ``section`` (and
    ``effective_date``) in place: no membership is closed. The inquiry then offers M under
    Section 40 (100.00), the counter takes it, and M is paid under both sections -- 532.00 for
    one month -- while the refund listing owes nothing (no Section 39 membership has an end)
    and the inquiry shows no previous membership."""
    current = clock.month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn,
            section=39,
            coverage_start=current.minus(14),
            paid=list(Month.range(current.minus(14), current.minus(1))),
            replicas=replicas(gateway),
        )
    s39 = await _confirm(
        gateway, partner, confirm_request(nid, [str(current)], 432 * BAHT, section=39)
    )
    assert isinstance(s39, ConfirmResult), s39

    moved = PersonRecord(0, nid, "นาง", "สมหญิง", "ใจดี", 40, "active", current.first_day,
                         s40_option=2, payment_method="counter")  # fmt: skip
    extract = b"".join(write_extract(ExtractHeader(40, clock.today(), "SSO-MF"), [moved]))
    imports = PersonImportService(store=PersonImportRepository(lambda: gateway.db.primary))
    await imports.import_extract(io.BytesIO(extract), section=40)
    async with gateway.db.primary.acquire() as conn:
        await wait_replayed(conn, replicas(gateway))

    await _confirm(gateway, partner, confirm_request(nid, [str(current)], 100 * BAHT, section=40))
    sections = await gateway.db.primary.fetch(
        "SELECT section, amount_satang FROM paid_months WHERE national_id = $1 AND month = $2",
        nid, current.first_day,
    )  # fmt: skip
    owed = [
        (m.month, m.paid_satang, m.reason)
        async for person in gateway.refunds.refunds(current, current, requester=operator())
        if person.national_id == nid
        for m in person.months
    ]
    paid = sorted((r["section"], r["amount_satang"]) for r in sections)
    # Paid under at most one membership, or the other one's payment is owed back in full.
    assert len(paid) - len([o for o in owed if o[2] == "cover_ended"]) <= 1, (paid, owed)
