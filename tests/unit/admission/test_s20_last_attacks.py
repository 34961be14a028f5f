"""Last attacks on 7c9ff72 (a replay's rate token given back; IPv4-mapped allowlists): each
test fails on that code because of the defect its docstring names."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address, ip_network

from app.admission.rate_limiter import RateLimiter
from app.admission.records import Caller, Protocol
from app.admission.source_address import SourceAddresses, network


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyBuckets:
    """Shared buckets that are away until ``up`` is set; records every statement answered."""

    def __init__(self) -> None:
        self.up = False
        self.statements: list[tuple[str, int, int, int]] = []

    async def take(
        self, kind: str, ident: int, *, rate: float, capacity: float, want: int, returned: int
    ) -> tuple[int, float]:
        if not self.up:
            raise ConnectionError("primary away")
        self.statements.append((kind, ident, want, returned))
        return want, 0.0


async def test_a_token_taken_from_the_local_fallback_is_given_back_to_the_shared_bucket() -> None:
    """Defect: ``RateLimiter.give_back`` decides where the token goes from the limiter's state
    at give-back time (``self._fallen_back``), not from where the call took it. A call admitted
    on the local fallback bucket while the shared buckets were away, whose nonce claim then
    fails (the ledger, on the same primary, answers late: ``StoreUnavailable``, or a replay),
    gives its token back AFTER the shared buckets answered again (any other principal's
    background refill clears ``_fallen_back``). The token then goes into the fleet's shared
    bucket (``returned=1``), which never gave it: each such call mints one token for the whole
    fleet, above what the bucket's refill allows, and the local bucket keeps its spend.
    Right: a token goes back where it was taken from (the local bucket, or nowhere once the
    fallback is over), e.g. ``take`` returns/records its source and ``give_back`` uses it."""
    clock = Clock()
    buckets = FlakyBuckets()
    limiter = RateLimiter(buckets=buckets, clock=clock, fallback_s=1.0)
    acme, other = ("partner", 7), ("partner", 8)

    # The primary is away: acme's call is admitted on the local fallback bucket.
    wait, shared = await limiter.take_token(acme, 10.0)
    assert (wait, shared) == (0.0, False)
    assert buckets.statements == []
    # The primary answers again; another principal's call triggers the background refill.
    buckets.up = True
    clock.now += 2.0
    await limiter.take(other, 10.0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert buckets.statements and buckets.statements[-1][:2] == other  # shared again
    before = list(buckets.statements)

    # acme's nonce claim failed meanwhile: its token is given back.
    await limiter.give_back(acme, 10.0, shared=shared)

    returned_to_shared = [s for s in buckets.statements[len(before) :] if s[:2] == acme and s[3]]
    assert returned_to_shared == [], (
        "a token taken from the local fallback bucket was put into the shared bucket, which"
        " never gave it"
    )


def test_an_ipv6_only_allowlist_now_admits_every_ipv4_caller() -> None:
    """Defect: ``within`` (now used for allowlists and trusted proxies) looks an IPv4 address
    up in its IPv4-mapped form in EVERY IPv6 block, not only in blocks of mapped addresses.
    Any IPv6 block that contains ``::ffff:0:0/96`` without being inside it (``::/0``,
    ``::/64``, ``::/80``: written for IPv6 peers, and left IPv6 by ``network``) now admits
    every IPv4 address on the Internet: an allowlist ``::/0`` ("any IPv6 peer") lets in all
    IPv4 callers, and trusted proxies ``::/0`` make every IPv4 peer a proxy whose
    X-Forwarded-For is believed (any source address claimed, allowlists bypassed). Before
    7c9ff72 (``address in net``) such a block admitted no IPv4 address. Right: the mapped
    form only matters for blocks ``network`` did not read, i.e. those inside
    ``::ffff:0:0/96``; test ``net.subnet_of(_MAPPED)`` (or map only such blocks) before
    looking the mapped address up."""
    stranger = IPv4Address("203.0.113.66")
    # Blocks are read by ``network`` wherever they come from (the registry, the stored records,
    # the proxies); a membership test is then plain ``in``.
    assert stranger not in network("::/0"), "::/0 admits an IPv4 caller"
    assert stranger not in network("::/64"), "::/64 admits an IPv4 caller"
    proxies = SourceAddresses(["::/0"])
    assert not proxies._is_proxy(stranger), "every IPv4 peer is now a trusted proxy"


class CountingBuckets:
    """Shared buckets that always answer, a second's worth at most: counts the statements."""

    def __init__(self) -> None:
        self.statements = 0
        self.tokens = 5.0

    async def take(
        self, kind: str, ident: int, *, rate: float, capacity: float, want: int, returned: int
    ) -> tuple[int, float]:
        self.statements += 1
        self.tokens = min(capacity, self.tokens + returned)
        taken = min(want, int(self.tokens))
        self.tokens -= taken
        return taken, self.tokens


async def test_replays_while_the_ledger_is_away_cost_one_shared_bucket_write_each() -> None:
    """Defect: while this instance's ledger cannot answer (``ReplayGuard`` down or not
    running) a claim is refused ``StoreUnavailable`` and its nonce FORGOTTEN (``_unanswered``),
    so ``seen`` never stops a resend of it; ``_admit_partner`` then hands every such call's
    token back with ``RateLimiter.give_back``: one UPDATE of the shared ``rate_buckets`` row
    per call. A token resent in a loop (the partner's own retries, or a captured token,
    which needs no secret) is thus never ``rate_limited`` and costs the primary one write per
    call, contending on the partner's bucket row, exactly while the database is degraded;
    before 7c9ff72 the rate held and cost one statement per lease (the module's promise:
    "a principal calling far beyond its limit costs each instance one statement per lease
    period"). Right: a give-back that costs no statement per call (return the token to this
    instance's lease, which goes back with the next lease request), or none when the refusal
    is the gateway's own failure. Here: partner at 5/s, 200 resends at one instant."""
    import os
    from datetime import UTC, datetime

    from app.admission.credential_vault import SecretBox
    from app.admission.nonce_cache import NonceCache
    from app.admission.replay_guard import ReplayGuard
    from app.admission.service import Admission
    from app.errors import RateLimited, StoreUnavailable
    from app.principals.records import PartnerRecord
    from tests.support.wsse import digest_token

    now = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
    clock = Clock()
    box = SecretBox("k")
    partner = PartnerRecord(
        id=7, name="acme", display_name="Acme", status="active",
        cidrs=(ip_network("198.51.100.0/24"),), operations=frozenset({"InquireContribution"}),
        rate_limit=5, username="acme", password_hash="unused",
        secret_enc=box.seal("partner-secret"), password_text_ok=False, data_scope=(),
        created_at=now, rotated_at=None,
    )  # fmt: skip

    class Store:
        async def principal_names(self) -> tuple[frozenset[str], frozenset[str]]:
            return frozenset({"acme"}), frozenset()

        async def partner_by_username(self, username: str) -> PartnerRecord | None:
            return partner if username == "acme" else None

    buckets = CountingBuckets()
    gate = Admission(
        store=Store(),  # type: ignore[arg-type]
        box=box,
        replay=ReplayGuard(
            cache=NonceCache(window_s=600, clock=clock),
            ledger=object(),  # type: ignore[arg-type]
            keep_s=600,
            monotonic=clock,
        ),  # not started: the ledger cannot answer
        limiter=RateLimiter(buckets=buckets, clock=clock),
        trusted_proxies=(),
        wsse_window_s=300,
        cache_ttl_s=60,
        clock=lambda: now,
        monotonic=clock,
    )
    token = digest_token(
        "acme",
        "partner-secret",
        nonce=os.urandom(16),
        created=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )
    limited = 0
    for _ in range(200):
        try:
            await gate.admit(
                caller=Caller(Protocol.SOAP, "198.51.100.66", "r"),
                credentials=token,  # type: ignore[arg-type]
                operation="InquireContribution",
                scope="counter",
            )
        except StoreUnavailable:
            pass
        except RateLimited:
            limited += 1
    assert buckets.statements <= 10, (
        f"200 resends at 5/s cost {buckets.statements} statements on the shared bucket"
        f" ({limited} refused rate_limited)"
    )
