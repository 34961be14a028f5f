"""The inquiry's member reads, batched: each call its own row, fewer statements than calls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import asyncpg
import pytest

from app.counter.member_reads import MEMBER_SQL, MemberReads
from app.domain.months import Month
from app.main import Gateway
from tests.support.people import add_person
from tests.support.plans import plan_counts
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


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


async def test_the_months_are_read_from_paid_months_key_alone(
    gateway: Gateway, owner_pool: asyncpg.Pool
) -> None:
    """The key holds the payment date (migration 0019): on a vacuumed standby the inquiry
    reads a person's months (the window's, and for an active Section 39 member the latest
    paid before it, at all and on time) from the key, without a page of the table."""
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=39, coverage_start=current_month().minus(30),
            paid=[current_month().minus(n) for n in (1, 2, 20, 21)],
        )  # fmt: skip
    since = current_month().minus(13).first_day
    for _ in range(50):  # until VACUUM finds the new rows visible to every open transaction
        await owner_pool.execute("VACUUM (ANALYZE) paid_months")
        async with gateway.db.primary.acquire() as conn:
            await wait_replayed(conn, replicas(gateway))
        reads = await _paid_months_reads(replicas(gateway)[0], nid, since)
        if all(node.get("Heap Fetches") == 0 for node in reads):
            break
        await asyncio.sleep(0.1)
    assert len(reads) == 3, [node["Node Type"] for node in reads]
    for node in reads:
        assert node["Node Type"] == "Index Only Scan", node
        assert node["Heap Fetches"] == 0, node


async def _paid_months_reads(replica: asyncpg.Pool, nid: str, since: date) -> list[dict[str, Any]]:
    """The plan nodes of the inquiry's read on ``replica`` that read ``paid_months``."""
    # A handful of rows: scans of the whole table would be cheaper here, but not on a register.
    async with replica.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
        found = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {MEMBER_SQL}", nid, since)
    return [
        node for node in _nodes(json.loads(found)[0]["Plan"])
        if node.get("Relation Name") == "paid_months" and node.get("Actual Loops", 0) > 0
    ]  # fmt: skip


async def test_a_lone_read_is_not_planned_again_for_each_call(gateway: Gateway) -> None:
    """The batch read of one person at a time (an unhurried gateway's) runs on a plan the
    standby made once, not on one made for each call: PostgreSQL's own choice plans a small
    batch afresh every time, which costs more than running it."""
    ids = await _people(gateway, 2)
    reads = MemberReads(lambda: gateway.db.router, MEMBER_SQL)
    since = current_month().minus(13).first_day
    for _ in range(8):  # past the five calls after which PostgreSQL may settle on one plan
        for nid in ids:
            row, info = await reads.read(nid, since=since, min_lsn=None)
            assert (row["national_id"], info.path) == (nid, "replica")
    for _ in range(50):  # until no connection that ran them is held by the router's probe
        plans = await plan_counts(replicas(gateway), "unnest($1::text[]) WITH ORDINALITY")
        if plans["generic"] >= 16:
            break
        await asyncio.sleep(0.05)
    assert plans["generic"] >= 16 and plans["custom"] == 0, plans
