"""Admission building blocks that need no database: addresses, buckets, nonces, digests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from ipaddress import ip_network

import pytest

from app.admission.credential_vault import SecretBox, password_digest
from app.admission.credentials import BearerToken, UsernameToken
from app.admission.nonce_cache import NonceCache
from app.admission.rate_limiter import LocalBuckets, RateLimiter
from app.admission.records import Caller, Protocol
from app.admission.replay_guard import ReplayGuard
from app.admission.service import Admission, split_token
from app.admission.source_address import forwarded_for
from app.db.recent_writes import RecentWrites
from app.errors import Unauthenticated
from tests.support.wsse import digest_token


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admission(proxies: list[str]) -> Admission:
    return Admission(
        store=None,  # type: ignore[arg-type]  (address logic never touches the store)
        box=SecretBox("k"),
        replay=ReplayGuard(cache=NonceCache(window_s=1), ledger=None, keep_s=1),
        limiter=RateLimiter(),
        trusted_proxies=tuple(ip_network(p) for p in proxies),
        wsse_window_s=300,
        cache_ttl_s=1,
    )


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "expected"),
    [
        ("203.0.113.9", None, [], "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", [], "203.0.113.9"),  # untrusted peer: ignored
        ("10.0.0.5", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.5", "1.2.3.4, 198.51.100.1, 10.0.0.7", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.5", "garbage", ["10.0.0.0/8"], "10.0.0.5"),
        ("10.0.0.5", "10.0.0.6", ["10.0.0.0/8"], "10.0.0.5"),
        # A listener on "::" reports IPv4 peers IPv4-mapped: the same addresses to every rule.
        ("::ffff:203.0.113.9", None, [], "203.0.113.9"),
        ("::ffff:10.0.0.5", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
        ("::ffff:10.0.0.5", "garbage", ["10.0.0.0/8"], "10.0.0.5"),
    ],
)
def test_the_source_address_believes_forwarded_for_only_from_a_trusted_proxy(
    peer: str, forwarded: str | None, proxies: list[str], expected: str
) -> None:
    caller = Caller(Protocol.SOAP, peer, "r", forwarded_for=forwarded)
    assert admission(proxies).source_address(caller) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([], "10.0.0.5"),
        (["198.51.100.1"], "198.51.100.1"),
        # A proxy that writes a line of its own after the client's: the client's first line
        # is whatever the client wrote; the proxy's line is what it saw.
        (["192.0.2.66", "198.51.100.1"], "198.51.100.1"),
        (["192.0.2.66, 10.0.0.9", "198.51.100.1, 10.0.0.7"], "198.51.100.1"),
        (["198.51.100.1", ""], "198.51.100.1"),  # an empty line adds no hop
        (["198.51.100.1", "not-an-address"], "10.0.0.5"),
    ],
)
def test_every_forwarded_for_line_is_read_in_order(lines: list[str], expected: str) -> None:
    caller = Caller(Protocol.REST, "10.0.0.5", "r", forwarded_for=forwarded_for(lines))
    assert admission(["10.0.0.0/8"]).source_address(caller) == expected


def test_the_token_bucket_allows_a_burst_then_refills() -> None:
    clock = Clock()
    limiter = LocalBuckets(clock=clock)
    assert [limiter.take(("p", 1), 2.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.take(("p", 1), 2.0) > 0
    clock.now += 0.5
    assert limiter.take(("p", 1), 2.0) == 0.0
    assert limiter.take(("p", 2), 2.0) == 0.0  # buckets are per principal


def test_a_nonce_is_accepted_once_within_the_window() -> None:
    clock = Clock()
    cache = NonceCache(window_s=10, clock=clock)
    assert cache.first_use("u", b"n1")
    assert not cache.first_use("u", b"n1")
    assert cache.first_use("v", b"n1")
    clock.now += 11
    assert cache.first_use("w", b"n2")  # expiry runs as new nonces arrive
    assert cache.first_use("u", b"n1")


def test_password_digest_matches_the_oasis_definition() -> None:
    nonce, created, password = b"0123456789abcdef", "2026-11-26T01:02:03Z", "secret"
    expected = base64.b64encode(
        hashlib.sha1(nonce + created.encode() + password.encode()).digest()
    ).decode()
    assert password_digest(nonce=nonce, created=created, password=password) == expected


def test_the_secret_box_round_trips_and_detects_tampering() -> None:
    box = SecretBox("key material")
    sealed = box.seal("pässwörd")
    assert box.open(sealed) == "pässwörd"
    with pytest.raises(Exception):
        box.open(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(Exception):
        SecretBox("another key").open(sealed)


def test_bearer_tokens_split_into_id_and_secret() -> None:
    assert split_token("ssogw_abc_def_ghi") == ("abc", "def_ghi")
    assert split_token("Bearer x") is None
    assert split_token("ssogw__x") is None


def test_recent_writes_expire() -> None:
    clock = Clock()
    recent = RecentWrites(ttl_s=5, max_entries=2, monotonic=clock)
    recent.note("a", 10)
    recent.note("b", 20)
    recent.note("c", 30)
    assert recent.min_lsn("a") is None  # evicted by size
    assert recent.min_lsn("c") == 30
    clock.now += 6
    assert recent.min_lsn("c") is None


async def test_a_record_read_while_a_change_is_announced_is_not_remembered() -> None:
    """A change announced while a partner was being read may not be in what was read: that
    read answers its own call but is not remembered for the next."""
    reads: list[str] = []
    reading = asyncio.Event()
    release = asyncio.Event()

    class Store:
        async def principal_names(self) -> tuple[frozenset[str], frozenset[str]]:
            return frozenset({"p"}), frozenset()

        async def partner_by_username(self, username: str) -> None:
            reads.append(username)
            reading.set()
            await release.wait()

    gate = Admission(
        store=Store(),  # type: ignore[arg-type]  (only partners are read)
        box=SecretBox("k"),
        replay=ReplayGuard(cache=NonceCache(window_s=1), ledger=None, keep_s=1),
        limiter=RateLimiter(),
        trusted_proxies=(),
        wsse_window_s=300,
        cache_ttl_s=60,
    )

    async def admit() -> None:
        with pytest.raises(Unauthenticated):
            await gate.admit(
                caller=Caller(Protocol.SOAP, "127.0.0.1", "r"),
                credentials=digest_token("p", "secret"),
                operation="InquireContribution",
                scope="counter",
            )

    first = asyncio.create_task(admit())
    await reading.wait()
    gate.forget("partner", 7)  # announced while the read was out
    release.set()
    await first
    await admit()
    assert reads == ["p", "p"]
    await admit()
    assert reads == ["p", "p"]  # that one was remembered


@pytest.mark.parametrize(
    "credentials",
    [
        digest_token("u" * 65, "secret"),  # no partner's username is longer than 64
        BearerToken(f"ssogw_{'t' * 65}_secret"),  # nor any client's token id
    ],
)
async def test_a_name_longer_than_any_principal_may_have_is_malformed_and_never_looked_up(
    credentials: BearerToken | UsernameToken,
) -> None:
    # admission([]) has no store: a look-up would fail, and nothing is remembered.
    gate = admission([])
    with pytest.raises(Unauthenticated) as refused:
        await gate.admit(
            caller=Caller(Protocol.SOAP, "127.0.0.1", "r"),
            credentials=credentials,
            operation="InquireContribution",
            scope="counter",
        )
    assert refused.value.reason == "malformed_token"
    assert not gate._known._partners and not gate._known._clients
