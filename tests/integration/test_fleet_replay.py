"""Replay protection for a fleet: a WS-Security nonce is taken once, by its decoded bytes,
whichever instance sees it and across restarts (the database's ledger behind each instance's
memory), in batches, and with a stated answer when the primary cannot take claims."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from app.admission.credentials import UsernameToken
from app.admission.nonce_cache import NonceCache
from app.admission.records import Caller, Protocol
from app.admission.replay_guard import ReplayGuard, ledger_key
from app.counter.records import InquiryRequest
from app.errors import ServiceError, StoreUnavailable, Unauthenticated
from app.main import Gateway
from app.principals.nonce_ledger import PgNonceLedger
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.dead_primary import unreachable_pool
from tests.support.fleet import instance
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db
KNOWN_ID = "3100600445635"
ADMITTED = ("ok", "client.person_not_found")  # admitted: the ID's existence is beside the point


@pytest.fixture(scope="module")
async def other(settings: Settings, clock: PinnedClock) -> AsyncIterator[Gateway]:
    """A second instance on the same database."""
    async with instance(settings, clock, "replay-b") as gw:
        yield gw


async def inquire(gw: Gateway, token: UsernameToken) -> str:
    """The inquiry's outcome on ``gw``: ok (or the ID's answer), or the refusal's reason."""
    try:
        await gw.counter.inquire(
            caller=Caller(Protocol.SOAP, "127.0.0.1", uuid.uuid4().hex),
            credentials=token,
            request=InquiryRequest(KNOWN_ID),
        )
    except Unauthenticated as refused:
        return refused.reason
    except ServiceError as error:  # e.g. client.person_not_found: the caller was admitted
        return error.code
    return "ok"


def padded_otherwise(nonce_b64: str) -> str:
    """The same bytes in other Base64: the unused low bits of the last character set."""
    body = nonce_b64.rstrip("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(body[-1])
    unused = 0b1111 if nonce_b64.endswith("==") else 0b11
    assert last & unused == 0, "a canonical encoding leaves the unused bits clear"
    return body[:-1] + alphabet[last | unused] + nonce_b64[len(body) :]


async def test_a_nonce_in_other_base64_is_the_same_nonce(
    gateway: Gateway, other: Gateway, partner: PartnerCredentials
) -> None:
    token = digest_token(partner.username, partner.password, nonce=os.urandom(16))
    assert token.nonce_b64 is not None
    variant = dataclasses.replace(token, nonce_b64=padded_otherwise(token.nonce_b64))
    assert variant.nonce_b64 != token.nonce_b64
    assert base64.b64decode(variant.nonce_b64 or "", validate=True) == base64.b64decode(
        token.nonce_b64
    )
    assert await inquire(gateway, token) in ADMITTED
    assert await inquire(gateway, variant) == "replayed_nonce"  # this instance's memory
    assert await inquire(other, variant) == "replayed_nonce"  # the database's ledger


async def test_a_nonce_replayed_on_another_instance_is_refused(
    gateway: Gateway, other: Gateway, partner: PartnerCredentials
) -> None:
    token = digest_token(partner.username, partner.password)
    assert await inquire(other, token) in ADMITTED
    assert await inquire(gateway, token) == "replayed_nonce"
    fresh = digest_token(partner.username, partner.password)
    assert await inquire(gateway, fresh) in ADMITTED  # only the replay is refused


async def test_a_nonce_replayed_after_a_restart_is_refused(
    settings: Settings, clock: PinnedClock, partner: PartnerCredentials
) -> None:
    token = digest_token(partner.username, partner.password)
    async with instance(settings, clock, "replay-restart") as before:
        assert await inquire(before, token) in ADMITTED
    async with instance(settings, clock, "replay-restart") as after:
        assert await inquire(after, token) == "replayed_nonce"


async def test_concurrent_calls_share_one_statement_and_each_nonce_is_taken_once(
    gateway: Gateway,
) -> None:
    ledger = PgNonceLedger(lambda: gateway.db.admission_pool)
    batches: list[int] = []

    class Events:
        def nonce_batch_claimed(self, size: int, seconds: float) -> None:
            batches.append(size)

        def nonce_check_degraded(self, operation: str) -> None:
            raise AssertionError("the ledger answered")

    guards = [
        ReplayGuard(cache=NonceCache(window_s=60), ledger=ledger, keep_s=60, events=Events())
        for _ in range(2)  # two instances
    ]
    for guard in guards:
        await guard.start()
    try:
        partner_id = 2_000_000_000 + int.from_bytes(os.urandom(3))
        nonces = [os.urandom(16) for _ in range(300)]
        calls = [
            guard.first_use(partner_id, nonce, operation="InquireContribution")
            for nonce in nonces
            for guard in guards  # every nonce sent to both at once
        ]
        verdicts = await asyncio.gather(*calls)
    finally:
        for guard in guards:
            await guard.stop()
    taken = [verdicts[2 * i] + verdicts[2 * i + 1] for i in range(len(nonces))]
    assert taken == [1] * len(nonces), "each nonce admitted by exactly one instance"
    assert sum(batches) == 2 * len(nonces)
    assert len(batches) < len(nonces) / 5, f"one statement per few calls, not per call: {batches}"


async def test_expired_nonces_are_pruned_by_the_service_role(gateway: Gateway) -> None:
    ledger = PgNonceLedger(lambda: gateway.db.admission_pool)
    partner_id = 2_000_000_000 + int.from_bytes(os.urandom(3))
    key = (partner_id, ledger_key(os.urandom(16)))
    assert await ledger.claim([key], keep_s=0.001) == {key}
    assert await ledger.claim([key], keep_s=0.001) == set()  # held until pruned
    await asyncio.sleep(0.01)
    assert await ledger.prune(limit=1_000_000) >= 1
    assert await ledger.claim([key], keep_s=60) == {key}
    count = "SELECT count(*) FROM wsse_nonces WHERE partner_id = $1"
    assert await gateway.db.primary.fetchval(count, partner_id) == 1


async def test_claims_commit_without_waiting_for_the_disk(gateway: Gateway) -> None:
    """The ledger's pool commits asynchronously (what that costs: replay_guard's docstring);
    every other pool keeps the synchronous commits of the system of record."""
    show = "SELECT current_setting('synchronous_commit')"
    assert await gateway.db.admission_pool.fetchval(show) == "off"
    assert await gateway.db.primary.fetchval(show) == "on"
    assert await gateway.db.audit_pool.fetchval(show) == "on"


async def test_without_the_ledger_reads_go_on_and_payments_are_refused() -> None:
    dead = await unreachable_pool()
    degraded: list[str] = []

    class Events:
        def nonce_batch_claimed(self, size: int, seconds: float) -> None:
            raise AssertionError("nothing was claimed")

        def nonce_check_degraded(self, operation: str) -> None:
            degraded.append(operation)

    guard = ReplayGuard(
        cache=NonceCache(window_s=60),
        ledger=PgNonceLedger(lambda: dead),
        keep_s=60,
        outage_admits={"InquireContribution", "GetPaymentStatus"},
        events=Events(),
    )
    await guard.start()
    try:
        with pytest.raises(StoreUnavailable):
            await guard.first_use(1, os.urandom(16), operation="ConfirmPayment")
        nonce = os.urandom(16)
        assert await guard.first_use(1, nonce, operation="InquireContribution")
        # This instance's memory still refuses a replay sent to it.
        assert not await guard.first_use(1, nonce, operation="InquireContribution")
        with pytest.raises(StoreUnavailable):
            await guard.first_use(1, os.urandom(16), operation="CancelPayment")
    finally:
        await guard.stop()
        await dead.close()
    assert degraded == ["InquireContribution"]
