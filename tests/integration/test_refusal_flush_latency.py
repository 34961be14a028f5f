"""Writing a window of 10,000 counted refusals (200 sources × 50 counts, the default bounds) does
not stall admitted calls: the tally hands them to the writer a chunk at a time, so an admitted
inquiry's record queues behind one chunk at most, never behind the whole flush, and never meets
the writer's queue bound (app/audit/refusals/tally.py)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import pytest

from app.audit.records import AuditRecord
from app.audit.refusals.tally import RefusalTally
from app.counter.records import InquiryRequest
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, s40_person
from tests.support.people import new_national_id
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db
SOURCES, PER_SOURCE = 200, 50


def refusal(clock: PinnedClock, source: int, nid: str) -> AuditRecord:
    return AuditRecord(
        at=clock(), protocol="soap", operation="InquireContribution",
        outcome="client.unauthenticated", request_id=uuid.uuid4().hex,
        principal_kind="anonymous", source_ip=f"2001:db8:f1::{source:x}", national_id=nid,
        detail={"reason": "ip_not_allowed"},
    )  # fmt: skip


async def test_admitted_inquiries_are_answered_in_time_while_ten_thousand_counts_are_written(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    person = await s40_person(gateway)

    async def inquiry() -> float:
        began = time.perf_counter()
        await gateway.counter.inquire(
            caller=caller(), credentials=digest_token(partner.username, partner.password),
            request=InquiryRequest(person),
        )  # fmt: skip
        return time.perf_counter() - began

    quiet = [await inquiry() for _ in range(30)]
    tally = RefusalTally(sink=gateway.audit, clock=clock, window_s=60, per_source=PER_SOURCE,
                         sources=SOURCES)  # fmt: skip
    ids = [new_national_id() for _ in range(PER_SOURCE)]
    for source in range(SOURCES):
        for nid in ids:
            tally.count(refusal(clock, source, nid))
    began = time.perf_counter()
    flushing = asyncio.create_task(tally.flush(everything=True))
    during: list[float] = []
    while not flushing.done():
        during.append(await inquiry())  # every one admitted and audited, none refused
    written = await flushing
    took = time.perf_counter() - began
    assert written == SOURCES * PER_SOURCE
    ms = sorted(1000 * t for t in during)
    print(
        f"\nflush of {written} counts: {took:.2f} s; {len(during)} admitted inquiries meanwhile:"
        f" p50 {statistics.median(ms):.1f} ms, p99 {ms[int(0.99 * (len(ms) - 1))]:.1f} ms,"
        f" max {ms[-1]:.1f} ms; quiet p50 {1000 * statistics.median(quiet):.1f} ms"
    )
    assert len(during) >= 5, "the flush left room for admitted calls"
    assert ms[-1] < 500, f"an admitted inquiry waited {ms[-1]:.0f} ms during the flush"
