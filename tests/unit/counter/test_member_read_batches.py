"""How member reads are batched when statements stall or fail (the statements themselves are
run on the real pair in tests/integration/test_member_reads.py; here a stand-in router says
when each statement comes back)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import pytest

from app.counter.member_reads import IN_FLIGHT, MAX_IN_FLIGHT, MEMBER_SQL, STALL_S, MemberReads
from app.db.replica_router import ReadInfo
from app.errors import StoreUnavailable

SINCE = date(2026, 1, 1)


class _Conn:
    async def fetch(self, _sql: str, ids: list[str], _since: date) -> list[dict[str, Any]]:
        return [{"national_id": nid, "replay_lsn": None} for nid in ids]


class _Router:
    """Runs each statement on a stand-in connection; a statement for a held ID hangs until
    released, one for a failing ID fails."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.held: set[str] = set()
        self.failing: set[str] = set()
        self.statements: list[list[str]] = []

    async def run_read(self, fn: Any, **_: Any) -> tuple[Any, ReadInfo]:
        rows = await fn(_Conn())
        ids = [row["national_id"] for row in rows]
        self.statements.append(ids)
        if self.held & set(ids):
            await self.release.wait()
        if self.failing & set(ids):
            raise StoreUnavailable("the standby went away", reason="test")
        return rows, ReadInfo("replica", "r0", datetime.now(UTC))


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_stalled_statement_holds_up_only_its_own_calls() -> None:
    router, clock = _Router(), _Clock()
    reads = MemberReads(lambda: router, MEMBER_SQL, monotonic=clock)  # type: ignore[arg-type,return-value]
    router.held = {f"stuck-{n}" for n in range(IN_FLIGHT)}
    stuck = []
    for n in range(IN_FLIGHT):  # one statement each: each goes out before the next arrives
        stuck.append(asyncio.ensure_future(reads.read(f"stuck-{n}", since=SINCE, min_lsn=None)))
        await _settle()
    assert len(router.statements) == IN_FLIGHT  # out, and none back
    waiting = asyncio.ensure_future(reads.read("later", since=SINCE, min_lsn=None))
    await _settle()
    assert not waiting.done()  # within STALL_S a read waits for the next statement
    clock.now += STALL_S * 1.5
    fresh = asyncio.ensure_future(reads.read("fresh", since=SINCE, min_lsn=None))
    await _settle()
    assert waiting.done() and fresh.done()  # one more statement went out and came back
    assert (await fresh)[0]["national_id"] == "fresh"
    assert not any(call.done() for call in stuck)
    router.release.set()
    assert [(await call)[0]["national_id"] for call in stuck] == ["stuck-0", "stuck-1"]


async def test_never_more_than_the_cap_of_statements_out() -> None:
    router, clock = _Router(), _Clock()
    reads = MemberReads(lambda: router, MEMBER_SQL, monotonic=clock)  # type: ignore[arg-type,return-value]
    router.held = {f"n{n}" for n in range(50)}
    calls = []
    for n in range(50):
        calls.append(asyncio.ensure_future(reads.read(f"n{n}", since=SINCE, min_lsn=None)))
        clock.now += STALL_S * 2
        await _settle()
    assert len(router.statements) == MAX_IN_FLIGHT
    router.release.set()
    assert [(await c)[0]["national_id"] for c in calls] == [f"n{n}" for n in range(50)]


async def test_a_failed_batch_fails_each_call_with_an_error_of_its_own() -> None:
    router, clock = _Router(), _Clock()
    reads = MemberReads(lambda: router, MEMBER_SQL, monotonic=clock)  # type: ignore[arg-type,return-value]
    router.failing = {"a"}
    router.held = {"first"}
    first = asyncio.ensure_future(reads.read("first", since=SINCE, min_lsn=None))
    second = asyncio.ensure_future(reads.read("first", since=SINCE, min_lsn=None))
    await _settle()
    calls = [asyncio.ensure_future(reads.read(nid, since=SINCE, min_lsn=None)) for nid in "abc"]
    router.release.set()
    errors = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(e, StoreUnavailable) for e in errors)
    assert len({id(e) for e in errors}) == 3
    assert errors[0].details == {"reason": "test"}  # type: ignore[union-attr]
    await asyncio.gather(first, second)


@pytest.mark.parametrize("cancelled", [0, 1])
async def test_a_cancelled_call_is_not_answered_and_the_rest_are(cancelled: int) -> None:
    router, clock = _Router(), _Clock()
    reads = MemberReads(lambda: router, MEMBER_SQL, monotonic=clock)  # type: ignore[arg-type,return-value]
    calls = [asyncio.ensure_future(reads.read(nid, since=SINCE, min_lsn=None)) for nid in "xy"]
    calls[cancelled].cancel()
    await _settle()
    other = calls[1 - cancelled]
    assert (await other)[0]["national_id"] == "xy"[1 - cancelled]
