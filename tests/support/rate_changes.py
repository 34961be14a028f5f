"""Money scenarios of the integration tests: rates added as SSO's officers add them, payments
confirmed as a counter confirms them, and what the two refund lists then owe."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.cli.session import operator
from app.counter.member_reads import DIGEST_EVERY_S
from app.counter.records import ConfirmResult, InquiryRequest
from app.domain.months import Month
from app.main import Gateway
from app.rates.service import RateChange, RateRequest
from app.refunds.service import PersonRefund
from tests.conftest import PartnerCredentials
from tests.support.counter_calls import caller, confirm_request
from tests.support.people import wait_replayed
from tests.support.rest_api import replicas
from tests.support.wsse import digest_token

BAHT = 100
#: Section 40's monthly amounts by option, as the default rate table has them now.
S40_RATE = {1: 70 * BAHT, 2: 100 * BAHT, 3: 300 * BAHT}

Owed = tuple[str, int, str]  # (month, refund in satang, reason)


async def until(check: Callable[[], Awaitable[bool]], what: str, limit_s: float = 10.0) -> None:
    """Return once ``check()`` holds (asked every 20 ms); fail naming ``what`` past ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while not await check():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


def confirm_in_background(
    gw: Gateway, partner: PartnerCredentials, nid: str, month: Month, amount: int
) -> asyncio.Task[ConfirmResult]:
    """A counter's confirm of ``month`` for ``nid`` on ``gw``, started and left running."""
    return asyncio.create_task(
        gw.counter.confirm(
            caller=caller(),
            credentials=digest_token(partner.username, partner.password),
            request=confirm_request(nid, [str(month)], amount),
        )
    )


def sessions_where(conn: asyncpg.Connection, condition: str) -> Callable[[], Awaitable[bool]]:
    """A check for ``until``: some session of ``pg_stat_activity`` matches ``condition``."""

    async def check() -> bool:
        return bool(await conn.fetchval(f"SELECT count(*) FROM pg_stat_activity WHERE {condition}"))

    return check


async def add_rate(
    gw: Gateway, option: int, first: Month, amount: int, *,
    last: Month | None = None, retroactive: bool, note: str = "test: rate change",
) -> RateChange:  # fmt: skip
    """A Section 40 rate line for ``first`` (to ``last``, else that month alone), added through
    ``gw``'s rate administration by a new admin client."""
    issued = await gw.registry.add_client(name=f"c-{uuid.uuid4().hex[:10]}", scopes=["admin"])
    return await gw.api.rates.add_rate(
        caller=Caller(Protocol.REST, "127.0.0.1", uuid.uuid4().hex),
        credentials=BearerToken(issued.token),
        request=RateRequest(40, option, str(first), str(last or first), amount, 0, note),
        retroactive=retroactive,
    )


async def confirm_months(
    gw: Gateway, partner: PartnerCredentials, nid: str, months: list[Month], amount: int,
    *, section: int = 40, savings: int = 0,
) -> ConfirmResult:  # fmt: skip
    """A counter's confirm of ``months`` for ``amount`` (savings included), with a fresh token."""
    return await gw.counter.confirm(
        caller=caller(),
        credentials=digest_token(partner.username, partner.password),
        request=confirm_request(
            nid, [str(m) for m in months], amount, section=section, savings=savings
        ),
    )


async def owed_to(gw: Gateway, month: Month, nid: str) -> list[PersonRefund]:
    """What the refund listing (``ssogw refunds list``) owes ``nid`` for ``month``."""
    owed = gw.refunds.refunds(month, month, requester=operator())
    return [p async for p in owed if p.national_id == nid]


async def refund_list(gw: Gateway, month: Month, nid: str) -> list[Owed]:
    """(month, refund, reason) the refund listing owes ``nid`` for ``month``."""
    return [(str(m.month), m.refund_satang, m.reason) for p in await owed_to(gw, month, nid)
            for m in p.months]  # fmt: skip


async def rate_change_list(change: RateChange, nid: str) -> list[Owed]:
    """(month, refund, reason) the answer to adding a rate lists for ``nid``."""
    return [
        (str(o.month), o.refund_satang, o.reason)
        async for o in change.overpayments
        if o.national_id == nid
    ]


async def offered(
    gw: Gateway, partner: PartnerCredentials, nid: str, month: Month, *, becomes: int
) -> int:
    """What ``gw``'s inquiry offers for ``nid``'s ``month``, asked again until it is ``becomes``
    for a few seconds: an inquiry learns of another instance's rate from the fingerprint a
    statement brings once a second (``app.counter.member_reads``)."""
    deadline = time.monotonic() + 3 * DIGEST_EVERY_S + 2.0
    while True:
        answer = await gw.counter.inquire(
            caller=caller(),
            credentials=digest_token(partner.username, partner.password),
            request=InquiryRequest(nid),
        )
        amount = {m.month: m.amount_satang for m in answer.months}[str(month)]
        if amount == becomes or time.monotonic() > deadline:
            return amount
        await asyncio.sleep(0.1)


async def change_option(gw: Gateway, nid: str, option: int) -> Month:
    """Change ``nid``'s Section 40 option through the insured-person service, as an SSO client
    does (effective next month), and wait for the standbys; the month it takes effect."""
    issued = await gw.registry.add_client(name=f"c-{uuid.uuid4().hex[:10]}", scopes=["admin"])
    result = await gw.api.insured.change_option(
        caller=Caller(Protocol.REST, "127.0.0.1", uuid.uuid4().hex),
        credentials=BearerToken(issued.token),
        national_id=nid,
        option=option,
    )
    async with gw.db.primary.acquire() as conn:
        await wait_replayed(conn, replicas(gw))
    return result.effective_month
