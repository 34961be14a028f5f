"""Attacks on the session 19 money-path fixes (b87c29b): the extract that moved a person to the
other section (now refused: a change of section goes through registration), the REST payment
routes taking ``{partnerTxnId:path}``, and a bound on the rule settings.

Each test fails on the code it was written against, for the reason its docstring names.
Business time is pinned through the session's clock (``clock``); nothing reads the wall clock.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import httpx
import pytest

from app.admission.credentials import Credentials
from app.cli.session import operator
from app.counter.records import ConfirmResult
from app.counter.rules import counter_rules
from app.domain.months import Month
from app.insured.extract_file import ExtractHeader, PersonRecord, write_extract
from app.insured.import_repository import PersonImportRepository
from app.insured.person_import import PersonImportService
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, confirm_request
from tests.support.people import add_person, wait_replayed
from tests.support.rest_api import bearer, replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

BAHT = 100


def _token(partner: PartnerCredentials) -> Credentials:
    return digest_token(partner.username, partner.password)


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=live_url, headers=bearer(client_token), timeout=30
    ) as client:
        yield client


def _extract(clock: PinnedClock, section: int, record: PersonRecord) -> bytes:
    return b"".join(write_extract(ExtractHeader(section, clock.today(), "SSO-MF"), [record]))


def _imports(gateway: Gateway) -> PersonImportService:
    return PersonImportService(store=PersonImportRepository(lambda: gateway.db.primary))


async def _owed(gateway: Gateway, nid: str, first: Month, last: Month) -> list[tuple[str, str]]:
    return [
        (str(m.month), m.reason)
        async for person in gateway.refunds.refunds(first, last, requester=operator())
        if person.national_id == nid
        for m in person.months
    ]


# --- an extract moving a person whose membership had already ended ----------------------------
async def test_a_move_keeps_the_end_of_a_membership_that_had_already_ended(
    api: httpx.AsyncClient, gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """DOMAIN.md: "Employment under Section 33 ends Section 39 and Section 40 membership"; a
    month paid under a membership that has ended is owed back ("the system must be able to
    compute and list those"). The registration path closes a membership at the month it
    really ended, with its reason (``ensure_may_register_again``/``closing_of``).

    A Section 40 member pays M..M+3 ahead, then returns to Section 33 employment from this
    month M (recorded: terminated, section33_employment, ended M): the refund listing owes
    M..M+3 back (cover_ended). Later the source system's Section 39 extract lists the person
    under Section 39 from M+2. Closing the Section 40 membership at M+2 (as b87c29b did) made
    M and M+1 "covered" again and dropped them from the refunds (140.00 no longer owed). The
    line is refused now (a change of section goes through registration): the person keeps the
    end they had, and everything stays owed."""
    current = clock.month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=40, option=1, coverage_start=current.minus(24),
            replicas=replicas(gateway),
        )  # fmt: skip
    months = [str(m) for m in Month.range(current, current.plus(3))]
    paid = await gateway.counter.confirm(
        caller=caller(), credentials=_token(partner),
        request=confirm_request(nid, months, 4 * 70 * BAHT),
    )  # fmt: skip
    assert isinstance(paid, ConfirmResult)
    back = await api.post(
        f"/api/v1/insured/{nid}/section33-employment",
        json={"employedFrom": current.first_day.isoformat()},
    )
    assert back.status_code == 200, back.text
    assert back.json()["endedMonth"] == str(current)
    before = await _owed(gateway, nid, current, current.plus(3))
    assert before == [(str(m), "cover_ended") for m in Month.range(current, current.plus(3))]

    moved = PersonRecord(0, nid, "นาง", "สมหญิง", "ใจดี", 39, "active", current.plus(2).first_day)
    result = await _imports(gateway).import_extract(
        io.BytesIO(_extract(clock, 39, moved)), section=39
    )
    assert [(r.field, "Section 40" in r.reason) for r in result.rejections] == [("section", True)]

    after = await _owed(gateway, nid, current, current.plus(3))
    record = (await api.get(f"/api/v1/insured/{nid}")).json()
    person = record["person"]
    held = (person["section"], person["status"], person["endedMonth"], person["statusReason"])
    assert (after, held) == (before, (40, "terminated", str(current), "section33_employment"))


# --- two instances importing the same extract -------------------------------------------------
async def test_two_imports_of_a_move_both_refuse_it_and_close_nothing(
    gateway: Gateway, clock: PinnedClock
) -> None:
    """DESIGN.md: "Nothing in the service assumes a single instance". Two operators (or two
    instances' jobs) load the same Section 40 extract at once; it lists a Section 39 member
    under Section 40. b87c29b closed the membership from a read without a lock, so both imports
    closed it (two closed memberships). Both refuse the line now, and the person's row is
    never given the other section: the upsert takes no change of section, even one another
    import or a registration made after its lines were checked."""
    current = clock.month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=39, coverage_start=current.minus(14),
            paid=list(Month.range(current.minus(14), current.minus(1))),
            replicas=replicas(gateway),
        )  # fmt: skip
    moved = PersonRecord(0, nid, "นาง", "สมหญิง", "ใจดี", 40, "active", current.first_day,
                         s40_option=2, payment_method="counter")  # fmt: skip
    data = _extract(clock, 40, moved)
    results = await asyncio.gather(
        *(_imports(gateway).import_extract(io.BytesIO(data), section=40) for _ in range(2))
    )
    assert [(r.rejected, r.updated) for r in results] == [(1, 0), (1, 0)]
    closed = await gateway.db.primary.fetchval(
        "SELECT count(*) FROM closed_memberships WHERE national_id = $1", nid
    )
    held = await gateway.db.primary.fetchval(
        "SELECT section FROM insured_persons WHERE national_id = $1", nid
    )
    assert (closed, held) == (0, 39)


# --- REST: a payment id the Location names cannot be followed ----------------------------------
@pytest.mark.parametrize("txn", [".", ".."])
async def test_an_id_no_location_can_address_is_refused_at_confirm(
    api: httpx.AsyncClient, gateway: Gateway, clock: PinnedClock, txn: str
) -> None:
    """The fix makes "an id may hold '/'" work through the Location the confirm answers with
    (``quote(id, safe='')``). A partnerTxnId is "1 to 64 printable characters", so ``.`` and
    ``..`` are taken (201). Their Location is ``/api/v1/payments/.`` / ``/api/v1/payments/..``:
    dot segments, which every RFC 3986 client (httpx here) removes before sending, so the
    status call lands on ``/api/v1/payments/`` or ``/api/v1/`` instead of the payment, and
    ``{Location}/cancel`` cancels nothing. The server itself would find the payment at
    ``%2E`` / ``%2E%2E`` (it decodes the path before routing): the Location should encode the
    dots too (the ``client_token`` fixture is a fresh client, so the id is new each run).

    Also what a status after a timeout needs: GET on the Location answers 405 (".") or a 307
    redirect to ``/api/v1`` (".."), never the payment."""
    current = clock.month()
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=40, option=1, coverage_start=current.minus(24),
            replicas=replicas(gateway),
        )  # fmt: skip
    made = await api.post("/api/v1/payments", json={
        "partnerTxnId": txn, "nationalId": nid, "section": 40, "months": [str(current)],
        "amount": "70.00", "paidAt": clock().isoformat(),
    })  # fmt: skip
    # No client can follow a Location of dot segments: an RFC 3986 client removes "." and "..",
    # and a WHATWG one (browsers, Node's fetch) "%2E" and "%2E%2E" too ("single-dot path
    # segment: '.' or '%2e'"). Such an id is refused before any payment is made.
    assert made.status_code == 422, made.text
    assert (made.json()["code"], made.json()["field"]) == ("client.invalid_input", "partnerTxnId")


# --- a rule setting the bounds refuse though the rules support it ------------------------------
def test_option_changes_may_still_be_switched_off_by_setting() -> None:
    """DOMAIN.md, Section 40: "Option change: at most once a year (setting; ?)" -- an
    unconfirmed rule, so a setting, and SSO may well allow none (the domain's policy takes 0:
    ``S40Policy(option_changes_per_year=0)`` refuses every change, tests/unit/domain/
    test_section40.py "never"). b87c29b bounded the rule settings "so every offer fits one
    payment" and on the way gave ``s40_option_changes_per_year`` ``ge=1``, which has nothing to
    do with one payment's months: ``SSOGW_S40_OPTION_CHANGES_PER_YEAR=0`` now stops the
    gateway at start-up (pydantic ValidationError) instead of switching option changes off."""
    rules = counter_rules(Settings(s40_option_changes_per_year=0))
    assert rules.s40.option_changes_per_year == 0


# --- the next day's extract of the section the person left ------------------------------------
async def test_the_left_sections_extract_listing_the_person_terminated_does_not_move_them_back(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """docs/formats.md: each section's extract lists its persons with a status, ``A`` active,
    ``I`` inactive, ``T`` terminated; DOMAIN.md: "One ID can ... hold closed memberships beside
    an open one". A former Section 39 member now holds Section 40 (option 2, from month M; the
    Section 39 membership closed) and pays M under Section 40 (100.00). The next Section 39
    extract still lists the person, as the source keeps them: Section 39, status ``T``, the
    old effective date.

    b87c29b read any line of the other section as a move: it closed the open Section 40
    membership and turned the person back into a terminated Section 39 member, the Section 40
    payment for M owed back in full, and each day's pair of extracts moved them again. The line
    is refused now and changes nothing."""
    current = clock.month()
    start = current.minus(14)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=40, option=2, coverage_start=current)
        await conn.execute(
            "INSERT INTO closed_memberships (national_id, section, coverage_start, ended_month,"
            " end_reason, closed_on, closed_by) VALUES ($1, 39, $2, $3,"
            " 'three_consecutive_unpaid', $4, 'test')",
            nid, start.first_day, current.first_day, clock.today(),
        )  # fmt: skip
        await wait_replayed(conn, replicas(gateway))
    paid = await gateway.counter.confirm(
        caller=caller(), credentials=_token(partner),
        request=confirm_request(nid, [str(current)], 100 * BAHT, section=40),
    )  # fmt: skip
    assert isinstance(paid, ConfirmResult), paid

    left = PersonRecord(0, nid, "นาง", "สมหญิง", "ใจดี", 39, "terminated", start.first_day)
    result = await _imports(gateway).import_extract(
        io.BytesIO(_extract(clock, 39, left)), section=39
    )
    assert [r.field for r in result.rejections] == ["section"]

    person = await gateway.db.primary.fetchrow(
        "SELECT section, status FROM insured_persons WHERE national_id = $1", nid
    )
    closed = await gateway.db.primary.fetch(
        "SELECT section FROM closed_memberships WHERE national_id = $1 ORDER BY id", nid
    )
    owed = await _owed(gateway, nid, current, current)
    seen = ((person["section"], person["status"]), [r["section"] for r in closed], owed)
    assert seen == ((40, "active"), [39], []), seen
