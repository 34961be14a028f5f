"""The refusal tally without a database: invented usernames make no new counts, and a window's
counts are written a chunk at a time (app/audit/refusals/tally.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from app.audit.records import AuditRecord
from app.audit.refusals.tally import OVERFLOW_OPERATION, UNKNOWN_CLAIM, RefusalTally, claimed

AT = datetime(2024, 5, 1, 3, 0, 1, tzinfo=UTC)
NID = "1101700230703"


class Sink:
    """An audit sink that takes its time, and counts how many records it holds at once."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self.in_flight = self.most_in_flight = 0

    async def record(self, record: AuditRecord) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)
        self.records.append(record)
        self.in_flight -= 1

    def link_soon(self) -> None:
        pass


def refusal(
    name: str | None, reason: str, *, nid: str = NID, source: str = "2001:db8::7"
) -> AuditRecord:
    return AuditRecord(
        at=AT, protocol="soap", operation="InquireContribution",
        outcome="client.unauthenticated", request_id=uuid.uuid4().hex,
        principal_kind="anonymous", principal_name=name, source_ip=source, national_id=nid,
        detail={"reason": reason},
    )  # fmt: skip


def tally(sink: Sink, **bounds: int) -> RefusalTally:
    return RefusalTally(sink=sink, clock=lambda: AT + timedelta(hours=1), window_s=60, **bounds)


def test_only_a_refusal_that_proves_the_name_keeps_it() -> None:
    assert claimed(refusal("counter-service", "bad_password")) == "counter-service"
    assert claimed(refusal("counter-service", "ip_not_allowed")) == "counter-service"
    for unproven in ("unknown_user", "clock_skew", "throttled", "bad_nonce", "whatever_new"):
        assert claimed(refusal("anyone", unproven)) == UNKNOWN_CLAIM
    assert claimed(refusal(None, "missing")) is None


async def test_invented_usernames_from_one_source_are_one_count() -> None:
    sink = Sink()
    counts = tally(sink, per_source=5, sources=3)
    for i in range(10_000):
        counts.count(refusal(f"invented-{i}", "unknown_user"))
    counts.count(refusal("counter-service", "bad_password"))  # a real partner's name: its own
    assert await counts.flush(everything=True) == 2
    unknown, named = sorted(sink.records, key=lambda r: r.principal_name or "")
    assert (unknown.principal_name, unknown.national_id) == (None, NID)
    assert unknown.detail == unknown.detail | {"calls": 10_000, "claimed": UNKNOWN_CLAIM}
    assert (named.principal_name, named.detail["calls"]) == ("counter-service", 1)
    assert "claimed" not in named.detail


async def test_the_key_space_of_a_source_is_bounded_whatever_it_varies() -> None:
    sink = Sink()
    counts = tally(sink, per_source=50, sources=200)
    for i in range(20_000):  # names and IDs both vary: at most 50 counts, then one overflow
        counts.count(refusal(f"invented-{i}", "unknown_user", nid=f"{1101700230703 + i}"))
    assert await counts.flush(everything=True) == 51
    assert sum(r.detail["calls"] for r in sink.records) == 20_000
    [overflow] = [r for r in sink.records if r.operation == OVERFLOW_OPERATION]
    assert overflow.detail["calls"] == 20_000 - 50


async def test_a_flush_of_ten_thousand_counts_goes_a_chunk_at_a_time() -> None:
    sink = Sink()
    counts = tally(sink, per_source=50, sources=200, flush_chunk=100)
    for source in range(200):
        for i in range(50):
            counts.count(refusal(None, "ip_not_allowed", nid=f"{1101700230703 + i}",
                                 source=f"2001:db8::{source:x}"))  # fmt: skip
    assert await counts.flush(everything=True) == 10_000
    assert len(sink.records) == 10_000 and sink.most_in_flight == 100
