"""A session with the service role's credentials cannot hold the audit trail off for long.

It may no longer lock the chain head at all; its one way to hold it — calling the owner's
append function inside a transaction it leaves open — costs the audited calls of about
``SSOGW_AUDIT_HEAD_HOLD_S``: each fails with ``server.audit_unavailable`` within
``SSOGW_AUDIT_HEAD_WAIT_S`` meanwhile, then the writer ends that session and calls proceed. A
session holding the sealer's lock (or an uncommitted row of ``audit_seals``) makes every seal
round ``blocked``: counted, logged as an error, alertable. Each test runs on a database of its
own (app/audit/chain_head.py, app/audit/seals/sealer.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.audit.queries import SEAL_LOCK
from app.audit.seals.sealer import SealBlocked
from app.counter.records import InquiryRequest
from app.db.local_pair import PairRecord
from app.errors import AuditUnavailable
from app.main import Gateway
from tests.integration.test_audit_service_role_attacks import append_one
from tests.integration.test_audit_tampering import (  # noqa: F401 (fixtures)
    gateway_on,
    inquiry,
    scratch,
    template,
)
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, s40_person
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

WAIT_S, HOLD_S = 0.5, 2.0  # SSOGW_AUDIT_HEAD_WAIT_S, SSOGW_AUDIT_HEAD_HOLD_S for these tests


@pytest.fixture
async def gw(scratch: PairRecord, tmp_path: Path, clock: PinnedClock) -> AsyncIterator[Gateway]:  # noqa: F811
    async with gateway_on(
        scratch, tmp_path, clock, audit_head_wait_s=WAIT_S, audit_head_hold_s=HOLD_S,
        audit_seal_interval_s=0.5,  # also the seal round's wait for the seal lock
    ) as gateway:  # fmt: skip
        yield gateway


async def pod(gateway: Gateway) -> asyncpg.Connection:
    """A session with the gateway's own credentials, as a compromised pod would open."""
    dsn = gateway.settings.primary_dsn
    assert dsn
    return await asyncpg.connect(dsn)


def seal_rounds(gateway: Gateway, outcome: str) -> float:
    return gateway.metrics.registry.get_sample_value(
        "ssogw_audit_seals_total", {"outcome": outcome}
    ) or 0.0  # fmt: skip


async def test_the_service_role_can_take_no_lock_on_the_chain_head(gw: Gateway) -> None:
    attacker = await pod(gw)
    try:
        for sql in (
            "SELECT 1 FROM audit_chain WHERE id FOR UPDATE",
            "SELECT 1 FROM audit_chain WHERE id FOR NO KEY UPDATE",
            "SELECT 1 FROM audit_chain WHERE id FOR SHARE",
            "SELECT 1 FROM audit_chain WHERE id FOR KEY SHARE",
            "UPDATE audit_chain SET last_seq = last_seq",
        ):
            async with attacker.transaction():
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await attacker.execute(sql)
    finally:
        await attacker.close()


@pytest.mark.serial
async def test_a_session_holding_the_head_through_the_append_function_is_ended_in_time(
    gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    partner = await gw.registry.add_partner(name=f"p-{uuid.uuid4().hex[:8]}",
                                            cidrs=["127.0.0.0/8"], rate_limit=10_000)  # fmt: skip
    person = await s40_person(gw)

    async def inquire() -> tuple[str, float]:
        began = time.monotonic()
        try:
            await gw.counter.inquire(
                caller=caller(), request=InquiryRequest(person),
                credentials=digest_token(partner.username, partner.password),
            )  # fmt: skip
        except AuditUnavailable as exc:
            return exc.code, time.monotonic() - began
        return "ok", time.monotonic() - began

    assert (await inquire())[0] == "ok"
    attacker = await pod(gw)
    held = attacker.transaction()
    await held.start()
    appended = await append_one(attacker)  # a record of its own, and the head's lock, kept
    assert appended["advanced"]
    began = time.monotonic()
    outcomes, slowest = [], 0.0
    with caplog.at_level(logging.ERROR, logger="app.audit.chain_head"):
        while time.monotonic() - began < HOLD_S + 5 * WAIT_S + 5:
            outcome, took = await inquire()
            outcomes.append(outcome)
            slowest = max(slowest, took)
            assert took < WAIT_S + 1.0, f"an audited call waited {took:.2f} s"
            if outcome == "ok":
                break
    print(f"\nhead held: {len(outcomes) - 1} call(s) failed, the slowest {slowest:.2f} s, then ok"
          f" after {time.monotonic() - began:.2f} s (hold limit {HOLD_S} s)")  # fmt: skip
    assert outcomes[0] == "server.audit_unavailable", "the head was held"
    assert outcomes[-1] == "ok", f"still held after {time.monotonic() - began:.1f} s: {outcomes}"
    assert time.monotonic() - began < HOLD_S + 3 * WAIT_S + 2
    assert await _ended(gw, attacker), "the holding session was ended"
    assert any("held the audit chain head" in r.getMessage() for r in caplog.records)
    # Its record went with its transaction; the chain is whole and sealed.
    assert await gw.sealer.seal() is not None
    result = await gw.audit_trail.verify()
    assert result.ok, result


async def _ended(gateway: Gateway, conn: asyncpg.Connection) -> bool:
    """Whether the server has ended ``conn``'s session: asked of the server, by its backend's
    pid (the client may not have read the termination yet, and a query sent on it then can
    fail with asyncpg's own "another operation is in progress" rather than a connection error)."""
    if conn.is_closed():
        return True
    pid = conn.get_server_pid()
    for _ in range(50):
        if not await gateway.db.primary.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
        ):
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.serial
async def test_a_session_holding_the_seal_lock_makes_the_round_blocked(
    gw: Gateway, clock: PinnedClock, caplog: pytest.LogCaptureFixture
) -> None:
    await gw.audit.record(inquiry(clock(), 0))
    attacker = await pod(gw)
    try:
        await attacker.execute("SELECT pg_advisory_lock($1)", SEAL_LOCK)  # a session lock
        holder = await attacker.fetchval("SELECT pg_backend_pid()")
        began = time.monotonic()
        with caplog.at_level(logging.ERROR), pytest.raises(SealBlocked, match=str(holder)):
            await gw.sealer.seal()
        assert time.monotonic() - began < gw.settings.audit_seal_interval_s + 1.0
        assert seal_rounds(gw, "blocked") == 1
        # The cadence of a serving instance reports it too, round after round, as an error.
        await gw.sealer.start()
        await asyncio.sleep(3 * gw.settings.audit_seal_interval_s)
        assert seal_rounds(gw, "blocked") >= 2
        assert any("not sealed: blocked" in r.getMessage() and r.levelno == logging.ERROR
                   for r in caplog.records)  # fmt: skip
        assert not (gw.settings.seal_dir()).exists(), "nothing sealed while blocked"
    finally:
        await attacker.close()
    await asyncio.sleep(2 * gw.settings.audit_seal_interval_s)  # the next round gets through
    assert seal_rounds(gw, "sealed") >= 1
    result = await gw.audit_trail.verify()
    assert result.ok and result.sealed_seq == 1, result


async def test_an_uncommitted_copy_under_the_next_number_makes_the_round_blocked(
    gw: Gateway, clock: PinnedClock
) -> None:
    await gw.audit.record(inquiry(clock(), 0))
    attacker = await pod(gw)
    try:
        async with attacker.transaction():
            await attacker.execute(
                "INSERT INTO audit_seals VALUES (1, 1, '\\x00', now(), '\\x00', 'k', '\\x00')"
            )
            with pytest.raises(SealBlocked, match="uncommitted row of audit_seals"):
                await gw.sealer.seal()
            assert seal_rounds(gw, "blocked") == 1
            raise _RollBack
    except _RollBack:
        pass
    finally:
        await attacker.close()
    assert await gw.sealer.seal() is None, "checkpoint 1 was kept: copied back, nothing new"
    result = await gw.audit_trail.verify()
    assert result.ok and result.sealed_seq == 1, result


class _RollBack(Exception):
    pass
