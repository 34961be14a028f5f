"""Attacks on session 20's admission fixes, at unit level: each test fails on the code it was
written against because of the defect its docstring names."""

from __future__ import annotations

import contextlib
import os
import threading
from datetime import UTC, datetime
from ipaddress import ip_network

import pytest

from app.admission.credential_checks import CredentialChecks, Presented
from app.admission.credential_vault import SecretBox
from app.admission.failure_throttle import FailureThrottle
from app.admission.nonce_cache import NonceCache
from app.admission.rate_limiter import RateLimiter
from app.admission.records import Caller, Protocol
from app.admission.replay_guard import ReplayGuard
from app.admission.secret_hashing import Slot
from app.admission.service import Admission
from app.admission.source_address import SourceAddresses, network
from app.errors import Overloaded, RateLimited, Unauthenticated
from app.principals.records import PartnerRecord
from tests.support.wsse import digest_token

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
CREATED = NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def partner_record(box: SecretBox, *, rate_limit: float) -> PartnerRecord:
    return PartnerRecord(
        id=7, name="acme", display_name="Acme", status="active",
        cidrs=(ip_network("198.51.100.0/24"),), operations=frozenset({"InquireContribution"}),
        rate_limit=rate_limit, username="acme", password_hash="unused",
        secret_enc=box.seal("partner-secret"), password_text_ok=False, data_scope=(),
        created_at=NOW, rotated_at=None,
    )  # fmt: skip


class Store:
    def __init__(self, partner: PartnerRecord) -> None:
        self.partner = partner

    async def principal_names(self) -> tuple[frozenset[str], frozenset[str]]:
        return frozenset({self.partner.username}), frozenset()

    async def partner_by_username(self, username: str) -> PartnerRecord | None:
        return self.partner if username == self.partner.username else None


async def test_an_eavesdropper_replaying_one_captured_token_spends_the_partners_rate() -> None:
    """Defect: ``Admission._admit_partner`` now judges the rate (``_check_rate``, which takes a
    token from the partner's fleet-wide bucket) BEFORE the nonce is claimed
    (``_claim_nonce``). A PasswordDigest token carries no secret the replayer needs: anyone who
    captured one request (a log, a proxy, a TLS-terminating hop) can resend it for the whole
    2 x window it is accepted in. Each resend passes the digest (it is correct), the standing,
    the operation, and spends one of the partner's rate tokens, and only then is refused as
    ``replayed_nonce``. A stranger WITHOUT the secret therefore drains the partner's fleet
    rate at will, and the partner's own fresh, correctly signed calls are refused
    ``client.rate_limited``. Before the change the nonce was claimed with the digest, so a
    replay was refused before it touched the rate.

    Correct: a replay (a nonce already used, found in this instance's memory or the ledger)
    spends none of the partner's rate: e.g. look the nonce up in the local cache before the
    rate (``NonceCache`` read-only check) and claim it in the ledger after; or keep claiming
    before the rate and take the nonce back (``forget``/ledger delete) when the rate refuses.
    The one precondition is an address in the partner's allowlist (the standing is judged
    before the rate): another host on the partner's network or behind its NAT, or an on-path
    box (a compromised store router, the partner's own proxy) — exactly where tokens are
    captured. Here: the partner, at 5/s, allowed 198.51.100.0/24, makes one call; a host at
    198.51.100.66 resends it 20 times in the same instant; the partner's next fresh call must
    still be admitted. (docs/operations.md's step 7 says "a replay spends a token of the
    rate" as if harmless: it is a denial of service needing no secret.)
    """
    clock = Clock()
    box = SecretBox("k")
    gate = Admission(
        store=Store(partner_record(box, rate_limit=5)),  # type: ignore[arg-type]
        box=box,
        replay=ReplayGuard(cache=NonceCache(window_s=600, clock=clock), ledger=None, keep_s=600),
        limiter=RateLimiter(clock=clock),
        trusted_proxies=(),
        wsse_window_s=300,
        cache_ttl_s=60,
        clock=lambda: NOW,
        monotonic=clock,
    )

    async def call(token: object, source: str) -> None:
        await gate.admit(
            caller=Caller(Protocol.SOAP, source, "r"),
            credentials=token,  # type: ignore[arg-type]
            operation="InquireContribution",
            scope="counter",
        )

    captured = digest_token("acme", "partner-secret", nonce=os.urandom(16), created=CREATED)
    await call(captured, "198.51.100.7")  # the partner's own call: admitted
    reasons = []
    for _ in range(20):  # the eavesdropper, who never knew the secret
        with pytest.raises((Unauthenticated, RateLimited)) as refused:
            await call(captured, "198.51.100.66")
        reasons.append(getattr(refused.value, "reason", type(refused.value).__name__))
    fresh = digest_token("acme", "partner-secret", nonce=os.urandom(16), created=CREATED)
    try:
        await call(fresh, "198.51.100.7")
    except RateLimited:
        pytest.fail(
            "a stranger's replays of one captured token spent the partner's rate: its next "
            f"fresh call was refused client.rate_limited (replays answered {reasons[:6]}...)"
        )


class FullThenFreePool:
    """argon2 behind a pool that is full (``Overloaded``) until ``free`` is set; then every
    secret presented is the right one."""

    def __init__(self) -> None:
        self.free = False

    def reserve(self) -> Slot:
        if not self.free:
            raise Overloaded()
        return Slot(threading.BoundedSemaphore(1))

    async def verify(self, stored_hash: str | None, secret: str, *, slot: Slot) -> bool:
        return stored_hash is not None


def presented(name: str, ident: int, address: str = "198.51.100.7") -> Presented:
    return Presented(
        kind="client", name=name, address=address, secret="s3cret",
        ident=ident, stored_hash="$argon2id$stored",
    )  # fmt: skip


async def test_one_callers_overloaded_answers_lock_every_caller_of_its_nat_address_out() -> None:
    """Defect: ``CredentialChecks.holds`` counts every check refused for a full argon2 pool
    with ``FailureThrottle.overloaded``, which spends the ADDRESS budget alone — not the
    (address, name) pair's. For real failures the pair budget (``per_pair``, 5) holds the one
    failing name back first, so "callers sharing an address with it (behind one NAT) keep
    theirs: it spends at most ``per_pair`` of the address's budget" (failure_throttle's
    docstring). An overloaded check is held back by nothing but the address budget, so ONE
    caller — a stranger looping on one name while the pool is busy, or simply one legitimate
    client retrying ``server.overloaded`` as told (it is retryable) during a restart's burst of
    unremembered secrets — empties the address budget (``per_address``, 30) and every other
    client and PasswordText partner behind that NAT/proxy address is then refused
    ``client.unauthenticated`` (reason ``throttled``) with a correct secret, even once the
    pool is free. The overloaded caller itself, whose secret is right, is answered
    unauthenticated too (a non-retryable credential error for the gateway's own load).

    Correct: an overloaded check is charged as a failure is, to the pair as well (or not at
    all): after ``per_pair`` such answers the one name is held back and the address keeps
    ``per_address - per_pair`` for its other callers, whose correct secrets still hold.
    """
    pool = FullThenFreePool()
    checks = CredentialChecks(
        hashing=pool,  # type: ignore[arg-type]
        throttle=FailureThrottle(per_pair=5, per_name=20, per_address=30, window_s=60),
    )
    for _ in range(30):  # one caller, one name, while the pool is full
        with contextlib.suppress(Overloaded, Unauthenticated):
            await checks.holds(presented("busyapp", 1))
    pool.free = True
    try:
        holds = await checks.holds(presented("payroll", 2))  # another client behind the NAT
    except Unauthenticated as refused:
        pytest.fail(
            f"one caller's overloaded answers locked its NAT address out: another client "
            f"with a correct secret was refused ({refused.reason})"
        )
    assert holds


async def test_a_partner_allowed_by_its_ipv4_mapped_cidr_is_now_refused() -> None:
    """Defect: ``source_address.parse_address`` now reads an IPv4-mapped peer
    (``::ffff:198.51.100.7``) as the IPv4 address it maps, but the allowlists are not read the
    same way: ``Registry._networks`` accepts and stores ``::ffff:198.51.100.0/120`` as an IPv6
    network, and ``Admission._check_standing`` tests ``IPv4Address in IPv6Network``, which is
    always False. Before the change this CIDR was exactly how a partner calling an instance
    listening on ``::`` (``ssogw serve --host ::``) was admitted — its audit records showed
    ``::ffff:198.51.100.7`` — so every partner registered that way is now refused
    ``client.unauthenticated`` (``ip_not_allowed``) with a correct digest from the same host,
    and a new registration of such a CIDR is accepted but can never match anything.
    (``SSOGW_TRUSTED_PROXIES`` given as ``::ffff:10.0.0.0/104`` breaks the same way: see the
    next test.)

    Correct: an IPv4-mapped network is the IPv4 network it maps (prefix − 96) wherever
    networks are read — the registry's ``_networks``, the records loaded from the database,
    ``SourceAddresses``' proxies — so the mapped peer and the mapped allowlist still meet.
    """
    clock = Clock()
    box = SecretBox("k")
    record = partner_record(box, rate_limit=50)
    record = PartnerRecord(**{
        **{f: getattr(record, f) for f in PartnerRecord.__slots__},
        "cidrs": (network("::ffff:198.51.100.0/120"),),  # as the registry and store read it
    })  # fmt: skip
    gate = Admission(
        store=Store(record),  # type: ignore[arg-type]
        box=box,
        replay=ReplayGuard(cache=NonceCache(window_s=600, clock=clock), ledger=None, keep_s=600),
        limiter=RateLimiter(clock=clock),
        trusted_proxies=(),
        wsse_window_s=300,
        cache_ttl_s=60,
        clock=lambda: NOW,
        monotonic=clock,
    )
    token = digest_token("acme", "partner-secret", nonce=os.urandom(16), created=CREATED)
    try:
        principal = await gate.admit(
            caller=Caller(Protocol.SOAP, "::ffff:198.51.100.7", "r"),
            credentials=token,
            operation="InquireContribution",
            scope="counter",
        )
    except Unauthenticated as refused:
        pytest.fail(
            f"a partner allowed ::ffff:198.51.100.0/120 calling from ::ffff:198.51.100.7"
            f" is refused ({refused.reason})"
        )
    assert principal.name == "acme"


def test_a_trusted_proxy_given_ipv4_mapped_is_no_longer_trusted() -> None:
    """Defect: ``SourceAddresses.of`` now reads the IPv4-mapped peer ``::ffff:10.0.0.5`` as
    ``10.0.0.5`` but keeps a configured proxy network ``::ffff:10.0.0.0/104`` (what an operator
    of a ``::`` listener had to write before, the peer being reported mapped) as an IPv6
    network, so ``_is_proxy`` is False: the ingress is no longer a trusted proxy, its
    X-Forwarded-For is ignored and every partner behind it is seen as ``10.0.0.5`` — refused
    ``ip_not_allowed`` by every allowlist, and sharing one failure budget.

    Correct: a mapped proxy network is read as the IPv4 network it maps (or the mapped peer is
    also tested in its mapped form): the forwarded client ``198.51.100.1`` is the caller.
    """
    addresses = SourceAddresses(["::ffff:10.0.0.0/104"])
    caller = Caller(Protocol.SOAP, "::ffff:10.0.0.5", "r", forwarded_for="198.51.100.1")
    assert addresses.of(caller) == "198.51.100.1"


async def test_a_client_retrying_overloaded_is_then_refused_with_its_right_secret() -> None:
    """Defect: ``server.overloaded`` is retryable ("retry later"), and a busy client's
    processes behind one address do retry it: during a restart, when no secret is remembered
    yet and every first call needs argon2, the pool is full for a while. Each of those
    answers now spends the address's failure budget (``CredentialChecks.holds`` →
    ``FailureThrottle.overloaded``), though the secret presented was never judged — and is
    right. After ``per_address`` (30) such answers in a window, the pool free again, the same
    client with its correct token is refused ``client.unauthenticated`` (``throttled``, not
    retryable: the caller is told its credential is bad) for the rest of the window, and so is
    every caller at its address. The gateway's own load is turned into a credential refusal of
    a legitimate principal.

    Correct: a check refused for a full pool never makes a later correct secret unauthenticated:
    either it spends nothing of the credential budgets (the pool's own bound already refuses
    at once), or an address over a separate "overloaded" budget is answered
    ``server.overloaded`` (retryable), never ``throttled``.
    """
    pool = FullThenFreePool()
    checks = CredentialChecks(
        hashing=pool,  # type: ignore[arg-type]
        throttle=FailureThrottle(per_pair=5, per_name=20, per_address=30, window_s=60),
    )
    for _ in range(30):  # the client's processes, retrying server.overloaded as told
        with pytest.raises(Overloaded):
            await checks.holds(presented("reportsapp", 3))
    pool.free = True
    try:
        holds = await checks.holds(presented("reportsapp", 3))
    except Unauthenticated as refused:
        pytest.fail(
            "a client whose token is right was refused client.unauthenticated "
            f"({refused.reason}) because the gateway had been overloaded"
        )
    assert holds
