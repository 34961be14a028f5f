"""Session 21 attacks on the connection guard's per-address cap and its trusted proxies: each test
fails on the code it was written against because of the defect its docstring names, and says
what the correct behaviour is."""

from __future__ import annotations

from app.observability.connection_guard import ConnectionGuard, ConnectionLimits


def test_an_ipv6_ingress_s_connections_lock_its_64_out() -> None:
    """Defect: ``ConnectionGuard.admit`` counts an IPv6 peer by its /64 and exempts a trusted
    proxy from the per-address cap, but still counts the proxy's connections in that /64's
    total. An ingress on IPv6 (``2001:db8:0:1::10``, its many callers' connections all from its
    address) fills the count of its whole /64, so every other host of that /64 — a cluster's
    pods share one, and internal applications call the REST API directly from them — is cut
    ``address_cap`` at its first connection, for as long as the ingress is busy.

    Correct: a trusted proxy's connections are exempt from the per-address count, not only
    from its cap: with the ingress holding 300 connections, a host beside it is still kept
    for its own first ``max_per_address``.
    """
    proxy = "2001:db8:0:1::10"
    guard = ConnectionGuard(ConnectionLimits(max_per_address=4), exempt=lambda a: a == proxy)
    assert all(guard.admit(proxy) is None for _ in range(300))  # the ingress: exempt
    neighbour = "2001:db8:0:1::20"
    kept = [guard.admit(neighbour) for _ in range(4)]
    assert kept == [None] * 4, f"a host beside the ingress was refused: {kept}"
    assert guard.admit(neighbour) == "address_cap"  # its own cap still holds
    for _ in range(300):
        guard.release(proxy)
    for _ in range(4):
        guard.release(neighbour)
    assert guard.open_connections == 0
