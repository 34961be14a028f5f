"""Session 20 attacks on admission and the fleet: what a caller never admitted can make the
gateway spend, and whether the fleet's shared guarantees hold.

Every test here fails on the code it was written against, because of the defect its docstring
names; each docstring also says what the correct behaviour is.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import math
import os
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.counter.records import InquiryRequest
from app.errors import InvalidInput, ServiceError, Unauthenticated
from app.main import Gateway
from app.principals.nonce_ledger import PgNonceLedger
from app.settings import Settings
from app.soap.router import soap_endpoint
from app.workers.listeners import bind_listeners
from tests.reliability.soap_wire import inquire_body, security
from tests.support.asgi_calls import soap_post
from tests.support.clock import PinnedClock
from tests.support.fleet import instance, verdict
from tests.support.wsse import digest_token
from tests.unit.soap.envelopes import envelope

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
    primary, through the same writer queue (10,000 records at most, then ``queue_full``) every
    admitted call's record must pass — at a high enough rate, a stranger's flood competes with,
    and can fill, what every partner's call needs (that last step is not shown here).

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


@pytest.fixture(scope="module")
async def fleet(settings: Settings, clock: PinnedClock) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two fresh instances on the session's database (a fleet behind a load balancer)."""
    async with (
        instance(settings, clock, "s20-fleet-a") as a,
        instance(settings, clock, "s20-fleet-b") as b,
    ):
        yield a, b


async def test_one_partner_registered_with_a_huge_rate_limit_unshares_every_limit(
    gateway: Gateway, fleet: tuple[Gateway, Gateway]
) -> None:
    """Defect: the registry (and so ``ssogw partner add --rate-limit``, which takes any
    positive float) accepts a rate limit of any size, while the REST schema stops at 100,000.
    For a rate above about 2.1e10 (an operator's "unlimited", 1e12 here) the lease the
    ``RateLimiter`` asks for, ``floor(rate x lease_s)`` tokens, does not fit the statement's
    ``$5::int``: the statement fails before it reaches the database, and ``_refill`` takes
    that for "the shared buckets could not be reached" (``_fall_back``), so the whole instance
    falls back to per-instance buckets — for every principal, not only that one — and says in
    its log that the database is away. Each call of that partner does it again. Another
    partner's limit of 1/s then admits one call per instance: the fleet admits N x its rate.
    (A rate of ``inf``, also accepted, makes ``lease_size`` raise ``OverflowError`` outside
    the try: that partner's every call then fails with ``server.internal``.)

    Correct: the registry refuses a rate limit the limiter cannot lease (the REST bound,
    100,000/s, for the CLI too), or the limiter caps a lease at what fits; one principal's
    limit never turns every other principal's fleet-wide limit into a per-instance one.
    """
    a, b = fleet
    tag = uuid.uuid4().hex[:8]
    for unleasable in (1e12, math.inf):
        with pytest.raises(InvalidInput):  # the registry's bound (the CLI's path too)
            await gateway.registry.add_partner(
                name=f"s20-huge-{tag}", cidrs=["127.0.0.0/8"], rate_limit=unleasable
            )
    # A record holding such a rate all the same (stored before the bound, or by an operator's
    # UPDATE): the limiter must still lease what fits.
    huge = await gateway.registry.add_partner(
        name=f"s20-huge-{tag}", cidrs=["127.0.0.0/8"], rate_limit=1.0
    )
    await gateway.db.primary.execute(
        "UPDATE partners SET rate_limit = 1e12 WHERE id = $1", huge.partner["id"]
    )
    small = await gateway.registry.add_partner(
        name=f"s20-small-{tag}", cidrs=["127.0.0.0/8"], rate_limit=1.0
    )
    assert await verdict(a, digest_token(huge.username, huge.password)) == "ok"
    # The small partner's one token a second, spent on the other instance.
    assert await verdict(b, digest_token(small.username, small.password)) == "ok"
    second = await verdict(a, digest_token(small.username, small.password))
    assert second == "client.rate_limited", (
        f"a second call within the same second of a partner limited to 1/s for the fleet was"
        f" answered {second!r} by the instance the 1e12 partner had called"
    )


async def test_an_ipv4_partner_is_refused_by_a_gateway_listening_on_both_families(
    gateway: Gateway,
) -> None:
    """Defect: ``ssogw serve --host ::`` (to serve IPv6 partners too) makes its listeners with
    ``app.workers.listeners.bind_listeners``, an AF_INET6 socket without ``IPV6_V6ONLY``, so
    on Linux (``net.ipv6.bindv6only=0``, the default) it takes IPv4 connections as well and
    reports their peer as an IPv4-mapped IPv6 address, ``::ffff:127.0.0.1``. Admission
    (``app.admission.source_address.parse_address`` and ``Admission._check_standing``) compares
    that IPv6 address with the partner's IPv4 allowlist as is: no IPv4 block ever holds it, so
    every IPv4 partner is refused as ``ip_not_allowed`` (and no IPv4 trusted proxy is believed).

    Correct: an IPv4-mapped address is the IPv4 address it maps (``ipv4_mapped``) for the
    allowlist, the trusted proxies and the failure budgets alike: the partner allowed
    127.0.0.0/8 is admitted from 127.0.0.1 whichever family the listener has.
    """
    [listener] = bind_listeners("::", 0, 1)
    listener.setblocking(False)
    try:
        port = listener.getsockname()[1]
        client = await asyncio.open_connection("127.0.0.1", port)
        conn, peer = await asyncio.get_running_loop().sock_accept(listener)
        conn.close()
        client[1].close()
    finally:
        listener.close()
    source = peer[0]
    assert source == "::ffff:127.0.0.1", f"the listener reports {source!r}"

    issued = await gateway.registry.add_partner(
        name=f"s20-v4-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"], rate_limit=10_000
    )
    try:
        await gateway.admission.admit(
            caller=Caller(Protocol.SOAP, source, uuid.uuid4().hex),
            credentials=digest_token(issued.username, issued.password),
            operation="InquireContribution",
            scope="counter",
        )
    except Unauthenticated as refused:
        pytest.fail(
            f"the partner allowed 127.0.0.0/8, calling from 127.0.0.1 through a listener on"
            f" '::', was refused: {refused.reason}"
        )


async def test_calls_over_the_rate_limit_or_of_a_disabled_partner_each_write_a_ledger_row(
    gateway: Gateway,
) -> None:
    """Defect: ``Admission._admit_partner`` claims the nonce in the fleet's ledger
    (``_check_digest`` -> ``ReplayGuard.first_use``: a row in ``wsse_nonces`` on the primary,
    kept 2 x the window) before it judges the standing, the operation and the rate. So a
    partner calling far beyond its limit writes one primary row per call, not per admitted
    call — the rate limit does not bound what it costs the system of record (the ledger is
    sized as "calls/s x 2 x the window" of admitted calls) — and a partner that was disabled
    (revoked: refused by every instance) keeps writing one row per call for as long as it
    likes, unthrottled (no rate limit or failure budget applies to a refused digest caller).

    Correct: the nonce is claimed only for a call that is otherwise admitted (standing,
    operation and rate judged first, all from memory; only the claim needs the database): 30
    calls in a second of a partner limited to 1/s leave about one row, and 30 calls of a
    disabled partner leave none.
    """
    issued = await gateway.registry.add_partner(
        name=f"s20-ledger-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"], rate_limit=1.0
    )
    partner_id = issued.partner["id"]

    async def rows() -> int:
        count = "SELECT count(*) FROM wsse_nonces WHERE partner_id = $1"
        return int(await gateway.db.admission_pool.fetchval(count, partner_id))

    answers = [
        await verdict(gateway, digest_token(issued.username, issued.password)) for _ in range(30)
    ]
    assert answers.count("ok") <= 3 and "client.rate_limited" in answers, answers
    over_limit = await rows()
    await gateway.registry.set_partner_status(issued.partner["name"], active=False)
    gateway.admission.forget()  # this instance at once (the notice would do it within a moment)
    disabled = [
        await verdict(gateway, digest_token(issued.username, issued.password)) for _ in range(30)
    ]
    assert set(disabled) == {"partner_disabled"}, disabled
    after_disabled = await rows() - over_limit
    assert (over_limit, after_disabled) == (answers.count("ok"), 0), (
        f"{answers.count('ok')} calls admitted, yet {over_limit} ledger rows written by 30 calls"
        f" of a partner limited to 1/s, and {after_disabled} more by 30 calls after it was"
        " disabled"
    )


async def test_made_up_usernames_of_60_kb_are_kept_in_memory_without_bound(
    settings: Settings, clock: PinnedClock
) -> None:
    """Defect: a stranger's PasswordDigest token needs no secret to reach the username look-up
    (a fresh Created and any Nonce do), and the SOAP reader bounds the body (64 KiB) but not a
    Username's length. ``Admission._partner`` remembers every username it looked up, an
    unknown one too, as the key of ``_partners`` — the whole text the stranger sent — until
    the dict passes 10,000 names (expiry never removes an entry; only a principal's change or
    that clear does). 10,000 usernames of 60 KB are about 600 MB held by each instance (and by
    each worker process), more than the pod's whole memory limit (512 MiB in
    deploy/k8s/deployment.yaml): a stranger can have every instance killed for lack of
    memory, at whatever pace it likes.

    Correct: what is remembered of a name no principal has is bounded in size (a username
    longer than any principal's is refused as malformed before the look-up, or names are
    remembered by a fixed-size digest): 200 such calls leave well under a megabyte behind.
    """

    async with instance(settings, clock, f"s20-names-{uuid.uuid4().hex[:6]}") as gw:
        endpoint = soap_endpoint(counter=gw.counter)
        calls, size = 200, 60_000

        async def stranger() -> bytes:
            name = uuid.uuid4().hex + "x" * size
            body = envelope(inquire_body(KNOWN_ID), header=security(name, "guessed"))
            answer = await endpoint.answer(*soap_post(body))
            return bytes(answer.body)

        first = await stranger()  # warm up: the code paths' own allocations happen once
        assert b"client.unauthenticated" in first, first[:600]
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(calls):
                await stranger()
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert held < 1_000_000, (
        f"{calls} refused calls with made-up usernames of {size // 1000} KB left"
        f" {held / 1e6:.1f} MB held: 10,000 such calls would hold"
        f" {held / calls * 10_000 / 1e6:.0f} MB per instance"
    )


async def test_a_tiny_positive_rate_limit_is_answered_as_a_server_failure(
    live_url: str, client_token: str
) -> None:
    """Defect: ``POST /api/v1/partners`` (and ``/clients``) accept any ``rateLimit`` above 0
    (``PartnerIn.rate_limit``: ``gt=0``; ``Registry._rate_limit``: ``> 0``), but the column is
    ``real`` (float4, migration 0001) with ``CHECK (rate_limit > 0)``: a rate below float4's
    smallest positive value (about 1.4e-45) is stored as 0, the CHECK fails, and
    ``PrincipalRepository.insert_partner`` lets ``CheckViolationError`` through (only a
    unique violation is translated). The admin is answered 500 ``server.internal`` — "retry
    later, the gateway failed" — and a traceback is logged, for a value the gateway simply
    does not accept.

    Correct: a client error naming the field (``client.invalid_input``, 4xx, ``rateLimit``),
    as for any other rate limit out of bounds (the schema's ``le=100000``): the bounds the
    column can hold are checked at the edge.
    """
    body = {
        "name": f"s20-tiny-{uuid.uuid4().hex[:8]}",
        "cidrs": ["203.0.113.0/24"],
        "rateLimit": 1e-50,
    }
    async with httpx.AsyncClient(base_url=live_url, timeout=10) as http:
        response = await http.post(
            "/api/v1/partners", json=body, headers={"authorization": f"Bearer {client_token}"}
        )
    problem = response.json()
    assert 400 <= response.status_code < 500, (response.status_code, problem)
    assert problem.get("code") == "client.invalid_input", problem


async def test_a_token_is_replayed_on_an_instance_whose_clock_is_a_little_behind(
    settings: Settings, clock: PinnedClock, gateway: Gateway
) -> None:
    """Defect: a nonce's ledger row is kept 2 x the window from its first use, by the
    database's clock (``ReplayGuard``, ``PgNonceLedger.CLAIM``), and pruned then; but whether
    a token is still fresh is judged by each instance's own clock (``Admission._digest_parts``).
    A token whose Created is near the window's far edge (a terminal a little ahead) is first
    used about one window before its Created; its row expires one window after its Created by
    the database's clock; an instance whose clock is d seconds behind still accepts the token
    for d seconds more, with the row pruned and nothing in its own memory: the replay is
    admitted. ("Expiry is the database's clock, so instances whose clocks differ agree":
    they do not.) Here the window is 2 s and the second instance 3 s behind; in production
    (300 s) the replay window is as long as the instances' clock difference.

    Correct: a nonce is kept for as long as any instance could accept a token carrying it —
    until its Created plus the window plus a stated bound on clock difference (or 2 x the
    window plus that bound) — so no instance admits the same token twice.
    """

    issued = await gateway.registry.add_partner(
        name=f"s20-skew-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"], rate_limit=10_000
    )
    short = {"wsse_window_s": 2, "wsse_nonce_prune_s": 3600.0}
    async with (
        instance(settings, clock, f"s20-skew-a-{uuid.uuid4().hex[:4]}", **short) as a,
        instance(settings, clock, f"s20-skew-b-{uuid.uuid4().hex[:4]}", **short) as b,
    ):
        behind = timedelta(seconds=3)
        b.admission._clock = lambda: datetime.now(UTC) - behind  # B's clock, 3 s behind
        token = digest_token(issued.username, issued.password, skew=timedelta(seconds=1.9))
        assert await verdict(a, token) == "ok"
        await asyncio.sleep(4.3)  # the row's 2 x 2 s are over: any instance prunes it
        await PgNonceLedger(lambda: a.db.admission_pool).prune(limit=100_000)
        replay = await verdict(b, token)
    assert replay == "replayed_nonce", f"the same token was answered {replay!r} the second time"
