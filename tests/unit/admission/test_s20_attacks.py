"""Session 20 attacks on admission, at unit level: each test fails on the code it was written
against because of the defect its docstring names."""

from __future__ import annotations

from app.admission.failure_throttle import FailureThrottle


def test_every_ipv4_caller_of_a_dual_stack_listener_shares_one_failure_budget() -> None:
    """Defect: ``app.admission.failure_throttle.address_key`` counts an IPv6 address by its
    /64, and an IPv4-mapped address (how a listener on ``::`` — ``ssogw serve --host ::``,
    made by ``bind_listeners`` without ``IPV6_V6ONLY`` — reports every IPv4 peer:
    ``::ffff:198.51.100.7``) is an IPv6 address, so every IPv4 caller of the instance is
    counted as the one "address" ``::/64``. One stranger failing ``per_address`` times (30 a
    minute by default, made-up token ids) holds back every other IPv4 caller's credential check
    (``throttled``), a REST client or PasswordText partner whose secret is not remembered yet
    (after a restart, or after the change listener reconnects and forgets all).

    Correct: an IPv4-mapped address is counted as the IPv4 address it maps: another host's
    budget is untouched by the stranger's failures.
    """
    throttle = FailureThrottle(per_pair=5, per_name=20, per_address=3, window_s=60)
    for guess in range(3):
        throttle.failed("::ffff:198.51.100.7", f"client:guess{guess}")
    assert throttle.throttled("::ffff:198.51.100.7", "client:guess9")  # the stranger: held back
    assert not throttle.throttled("::ffff:203.0.113.9", "client:payments-app"), (
        "another IPv4 host was held back by a stranger's failures"
    )
