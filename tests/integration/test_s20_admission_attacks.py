"""Session 20 attacks on admission and the fleet: what a caller never admitted can make the
gateway spend, and whether the fleet's shared guarantees hold.

Every test here fails on the code it was written against, because of the defect its docstring
names; each docstring also says what the correct behaviour is.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.counter.records import InquiryRequest
from app.errors import ServiceError
from app.main import Gateway
from app.settings import Settings
from tests.support.clock import PinnedClock
from tests.support.fleet import instance

pytestmark = pytest.mark.db
KNOWN_ID = "3100600445635"


def documentation_address() -> str:
    """An address of 2001:db8::/32 (documentation) no principal allows, new for each call."""
    return str(ipaddress.IPv6Address((0x2001_0DB8 << 96) | int.from_bytes(os.urandom(12))))


def bogus_token() -> BearerToken:
    """A bearer token of the right shape that no client holds (a stranger's guess)."""
    return BearerToken(f"ssogw_{uuid.uuid4().hex[:8]}_{uuid.uuid4().hex}")


@pytest.fixture(scope="module")
async def narrow(settings: Settings, clock: PinnedClock) -> AsyncIterator[Gateway]:
    """An instance whose argon2 pool is one thread and no queue (the production defaults are
    two and four: the same shape, only easier to fill in a test)."""
    async with instance(
        settings, clock, "s20-narrow", credential_check_workers=1, credential_check_queue=0
    ) as gw:
        yield gw


async def _outcome(gw: Gateway, caller: Caller, credentials: BearerToken) -> str:
    try:
        await gw.counter.inquire(
            caller=caller, credentials=credentials, request=InquiryRequest(KNOWN_ID)
        )
    except ServiceError as error:
        return error.code
    return "ok"


async def test_a_flood_that_fills_the_argon2_pool_writes_one_audit_record_per_call(
    narrow: Gateway,
) -> None:
    """Defect: a caller never admitted whose bearer-token check finds the argon2 pool full is
    answered ``server.overloaded``, and that refusal is not an ``AccessRefused``, so the
    ``RefusalTally`` (``app.audit.refusals.tally.aggregated``) passes it to the audit writer as
    a record of its own, one per call, each naming the national ID the call named. Nor does it
    count as a failure for the ``FailureThrottle`` (``CredentialChecks.holds`` counts only a
    check that ran), so neither bound on strangers applies: a flood of made-up tokens, all
    arriving while one check runs, writes one hash-chained audit record per call into the
    primary, and fills the writer's queue (``queue_full``) that every admitted call's record
    must pass through — a stranger can make every partner's call fail.

    Correct: a call whose caller was never admitted is counted like every other such refusal
    (per source and window, bounded), whatever stopped its admission — here, 60 calls from one
    address in well under a window are a handful of records, not 60.
    """
    flooder = documentation_address()
    calls = 60
    outcomes = await asyncio.gather(
        *(
            _outcome(narrow, Caller(Protocol.REST, flooder, uuid.uuid4().hex), bogus_token())
            for _ in range(calls)
        )
    )
    overloaded = outcomes.count("server.overloaded")
    assert overloaded >= 10, f"the pool was not filled; the attack did not happen: {outcomes}"
    await narrow.refusals.flush(everything=True)
    rows = await narrow.db.primary.fetch(
        "SELECT outcome, detail FROM audit_log WHERE source_ip = $1::inet", flooder
    )
    per_call = [r for r in rows if not (r["detail"] or {}).get("aggregated")]
    assert len(rows) <= 5, (
        f"{calls} refused calls of a stranger left {len(rows)} audit records"
        f" ({len(per_call)} of them one per call, outcomes"
        f" {sorted({r['outcome'] for r in per_call})})"
    )
