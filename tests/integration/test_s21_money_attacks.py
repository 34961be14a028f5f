"""Session 21 attacks on money and business time.

Each test here fails on the code it was written against and passes once the defect it names is
fixed; the docstring of each says what is wrong and what is right. Business time is pinned
through the session's clock (``clock.at`` / ``clock.set``); nothing reads the wall clock.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, time

import pytest

from app.access_report.service import parse_bound
from app.admission.credentials import BearerToken, Credentials
from app.admission.records import Caller, Protocol
from app.counter.records import InquiryRequest
from app.domain.calendar import BANGKOK
from app.errors import InvalidInput
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, person_locked, s40_person, waiting_on_person_lock
from tests.support.people import wait_replayed
from tests.support.rest_api import replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

BAHT = 100


def _token(partner: PartnerCredentials) -> Credentials:
    return digest_token(partner.username, partner.password)


# --- an option change queued for the person's lock past midnight -------------------------------
async def test_an_option_change_queued_past_the_months_end_takes_effect_the_month_after(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """DOMAIN.md, Section 40: an option change takes effect "the next month"; docs/domain.md
    §5: a call reads the clock "once it holds the person's lock ... never before a wait for
    them". app/insured/service.py ``change_option`` reads today before it waits for the
    person's lock (held by any confirm of the person): a change asked at 23:59:59 on the last
    day of month M that is recorded at 00:00:01 on the 1st of M+1 is dated M's last day and
    takes effect in M+1, the month it was recorded in, so the member's current month is
    priced at the new option from its first day (300.00 instead of 70.00 for option 1 -> 3).
    Right: read the day once the person is locked; recorded on the 1st of M+1, the change
    takes effect in M+2."""
    nid = await s40_person(gateway, option=1)
    current = clock.month()
    last_day = current.last_day
    first_next = current.plus(1).first_day
    issued = await gateway.registry.add_client(name=f"c-{uuid.uuid4().hex[:10]}", scopes=["admin"])
    with clock.at(time(23, 59, 59), on=last_day):
        async with person_locked(gateway.db.primary, nid) as let_go:
            change = asyncio.ensure_future(
                gateway.api.insured.change_option(
                    caller=Caller(Protocol.REST, "127.0.0.1", uuid.uuid4().hex),
                    credentials=BearerToken(issued.token),
                    national_id=nid,
                    option=3,
                )
            )
            await waiting_on_person_lock(gateway)
            clock.set(datetime.combine(first_next, time(0, 0, 1), tzinfo=BANGKOK))
            await let_go()
            result = await change
    assert result.effective_month == current.plus(2), (
        f"a change recorded on {first_next} takes effect in {result.effective_month},"
        f" the month it was recorded in, not the next one ({current.plus(2)})"
    )
    async with gateway.db.primary.acquire() as conn:
        await wait_replayed(conn, replicas(gateway))
    with clock.at(time(9, 0), on=first_next):
        inquiry = await gateway.counter.inquire(
            caller=caller(), credentials=_token(partner), request=InquiryRequest(nid)
        )
    assert inquiry.amount_due_satang == 70 * BAHT  # option 1 is still in force on the 1st


# --- an access report's day written in ISO 8601's basic format ------------------------------
def test_an_access_report_day_written_in_the_basic_format_is_that_day_or_refused() -> None:
    """app/access_report/routes.py: a bound is "a date (YYYY-MM-DD, a Bangkok day) or an ISO
    8601 date-time", and for ``to`` "a date includes that day". ``parse_bound`` tells a day by
    its length (10 characters) and hands anything else to ``datetime.fromisoformat``, which
    reads ISO 8601's basic format too: ``to=20260301`` (1 March 2026) becomes the instant
    1 March 00:00, so a report ``from=20260201&to=20260301`` leaves 1 March out, though the
    person's data may have been read that day. A person asking who read their data
    on a day must get that day or a refusal naming the field, never a shorter period without
    a word. Right: a day is YYYY-MM-DD, and a date-time is written with its date so too."""
    day_end = parse_bound("2026-03-01", end=True, field="to")
    try:
        read = parse_bound("20260301", end=True, field="to")
    except InvalidInput as refused:
        assert refused.details["field"] == "to"
        return
    assert read == day_end, f"to=20260301 ends the period at {read}, not {day_end}"
