"""The connection guard's caps and its log: per source address (an IPv6 address by its /64,
trusted proxies exempt) and in all; every cut counted, one log line per address and interval."""

from __future__ import annotations

import logging

import pytest

from app.observability.connection_guard import ConnectionGuard, ConnectionLimits


class Events:
    def __init__(self) -> None:
        self.cuts: list[str] = []
        self.open = 0

    def connection_cut(self, reason: str) -> None:
        self.cuts.append(reason)

    def connections_now(self, count: int) -> None:
        self.open = count


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def guard(**limits: float) -> tuple[ConnectionGuard, Events, Clock]:
    events, clock = Events(), Clock()
    made = ConnectionGuard(
        ConnectionLimits(**limits),  # type: ignore[arg-type]
        exempt=lambda address: address == "10.0.0.9",
        events=events,
        clock=clock,
    )
    return made, events, clock


def test_one_address_holds_at_most_its_share_and_gets_it_back() -> None:
    g, events, _ = guard(max_per_address=2, max_connections=10)
    assert [g.admit("192.0.2.1") for _ in range(3)] == [None, None, "address_cap"]
    assert g.admit("192.0.2.2") is None  # another address is not held back
    g.release("192.0.2.1")
    assert g.admit("192.0.2.1") is None
    assert events.open == 3 == g.open_connections


def test_an_ipv6_host_counts_by_its_64_and_a_trusted_proxy_only_in_all() -> None:
    g, _, _ = guard(max_per_address=1, max_connections=4)
    assert g.admit("2001:db8::1") is None
    assert g.admit("2001:db8::2") == "address_cap"  # the same /64
    assert g.admit("2001:db8:0:1::1") is None
    assert [g.admit("10.0.0.9") for _ in range(3)] == [None, None, "global_cap"]


def test_an_ipv4_mapped_peer_counts_as_its_ipv4_address_not_one_shared_64() -> None:
    # A listener on "::" reports every IPv4 peer as ::ffff:a.b.c.d, all in ::ffff:0:0/64.
    g, _, _ = guard(max_per_address=1, max_connections=10)
    assert g.admit("::ffff:192.0.2.1") is None
    assert g.admit("::ffff:192.0.2.2") is None, "another IPv4 host was held back"
    assert g.admit("192.0.2.1") == "address_cap"  # the same host, whichever family


def test_cuts_are_counted_each_and_logged_once_per_address_and_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    g, events, clock = guard(log_interval_s=60)
    with caplog.at_level(logging.WARNING, logger="app.observability.connection_guard"):
        for _ in range(1000):
            g.cut("192.0.2.7", "header_timeout")
        g.cut("192.0.2.8", "address_cap")
        clock.now += 61
        g.cut("192.0.2.7", "body_timeout")
    assert len(events.cuts) == 1002
    lines = [(r.address, r.reason, r.cutSince) for r in caplog.records]  # type: ignore[attr-defined]
    assert lines == [
        ("192.0.2.7", "header_timeout", 0),
        ("192.0.2.8", "address_cap", 0),
        ("192.0.2.7", "body_timeout", 999),
    ]
