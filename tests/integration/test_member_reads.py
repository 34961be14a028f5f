"""The inquiry's member reads, batched: each call its own row, fewer statements than calls."""

from __future__ import annotations

import asyncio

import pytest

from app.counter.member_reads import MEMBER_SQL, MemberReads
from app.domain.months import Month
from app.main import Gateway
from tests.support.people import add_person
from tests.support.rest_api import replicas
from tests.support.scenarios import current_month, wait_replayed

pytestmark = pytest.mark.db

_UNKNOWN = "3100600445635"  # well-formed, never registered here


async def _people(gateway: Gateway, count: int) -> list[str]:
    async with gateway.db.primary.acquire() as conn:
        ids = [
            await add_person(
                conn,
                section=40,
                option=1 + n % 3,
                coverage_start=current_month().minus(12),
                paid=[current_month().minus(1 + n % 5)],
                first_name=f"คน{n}",
            )
            for n in range(count)
        ]
        await wait_replayed(conn, replicas(gateway))
    return ids


async def test_concurrent_reads_each_get_their_own_row(gateway: Gateway) -> None:
    ids = await _people(gateway, 12)
    reads = MemberReads(lambda: gateway.db.router, MEMBER_SQL)
    since = current_month().minus(13).first_day
    asked = [*ids, _UNKNOWN, *ids[:3]]  # an unknown person and repeats too
    answers = await asyncio.gather(*(reads.read(nid, since=since, min_lsn=None) for nid in asked))
    for nid, (row, info) in zip(asked, answers, strict=True):
        if nid == _UNKNOWN:
            assert row["national_id"] is None
        else:
            assert row["national_id"] == nid
            assert row["first_name"] == f"คน{ids.index(nid)}"
            assert [Month.of(m) for m in row["months"]] != []
        assert info.path == "replica"
    assert 1 <= reads.statements < len(asked)


async def test_a_read_that_must_see_a_write_holds_its_batch_to_it(
    gateway: Gateway,
) -> None:
    ids = await _people(gateway, 3)
    reads = MemberReads(lambda: gateway.db.router, MEMBER_SQL)
    since = current_month().minus(13).first_day
    beyond = 1 << 62  # a write no standby has replayed: only the primary may answer
    answers = await asyncio.gather(
        reads.read(ids[0], since=since, min_lsn=None),
        reads.read(ids[1], since=since, min_lsn=beyond),
        reads.read(ids[2], since=since, min_lsn=None),
    )
    assert [row["national_id"] for row, _ in answers] == ids
    # The three went together, held to the strictest floor: no standby had it.
    assert [info.path for _, info in answers] == ["primary"] * 3


async def test_a_cancelled_call_leaves_the_others_answered(gateway: Gateway) -> None:
    ids = await _people(gateway, 6)
    reads = MemberReads(lambda: gateway.db.router, MEMBER_SQL)
    since = current_month().minus(13).first_day
    calls = [asyncio.ensure_future(reads.read(nid, since=since, min_lsn=None)) for nid in ids]
    await asyncio.sleep(0)
    calls[3].cancel()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(done[3], asyncio.CancelledError)
    for n in (0, 1, 2, 4, 5):
        row, _ = done[n]  # type: ignore[misc]
        assert row["national_id"] == ids[n]
