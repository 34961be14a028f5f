"""The expensive check of a secret, made so it cannot be turned against the gateway: remembered
when it succeeds, budgeted when it fails, run off the event loop in a pool that refuses rather
than queues, and as slow for a name no one has as for a real one."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from app.admission.credential_checks import CredentialChecks, Presented
from app.admission.failure_throttle import FailureThrottle, address_key
from app.admission.secret_hashing import SecretHashing
from app.admission.verified_secrets import VerifiedSecrets
from app.errors import Overloaded, Unauthenticated

# Cheap argon2 parameters: the tests are about what runs when, not about argon2's cost.
CHEAP = {"memory_kib": 1024, "time_cost": 1, "parallelism": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the failure budgets -------------------------------------------------------------------------
def throttle(clock: Clock, *, pair: int = 2, name: int = 4, address: int = 6) -> FailureThrottle:
    return FailureThrottle(
        per_pair=pair, per_name=name, per_address=address, window_s=60, monotonic=clock
    )


def test_a_caller_failing_for_one_name_is_held_back_alone() -> None:
    clock = Clock()
    budgets = throttle(clock)
    for _ in range(2):
        assert not budgets.throttled("198.51.100.7", "partner:cvs")
        budgets.failed("198.51.100.7", "partner:cvs")
    assert budgets.throttled("198.51.100.7", "partner:cvs")
    # Another caller behind the same address, another name: still checked.
    assert not budgets.throttled("198.51.100.7", "client:ops")
    # The same name from elsewhere: still checked (its own budget is 4).
    assert not budgets.throttled("203.0.113.9", "partner:cvs")


def test_a_budget_refills_over_the_window_and_refusals_spend_nothing() -> None:
    clock = Clock()
    budgets = throttle(clock)
    budgets.failed("198.51.100.7", "partner:cvs")
    budgets.failed("198.51.100.7", "partner:cvs")
    for _ in range(100):  # refused without a check: nothing is spent
        assert budgets.throttled("198.51.100.7", "partner:cvs")
    clock.now += 29.9  # 2 per 60 s: one failure's worth every 30 s
    assert budgets.throttled("198.51.100.7", "partner:cvs")
    clock.now += 0.2
    assert not budgets.throttled("198.51.100.7", "partner:cvs")


def test_many_addresses_guessing_one_name_are_held_back_by_the_name() -> None:
    clock = Clock()
    budgets = throttle(clock)
    for host in range(4):
        budgets.failed(f"203.0.113.{host}", "client:tok123")
    assert budgets.throttled("203.0.113.200", "client:tok123")
    assert not budgets.throttled("203.0.113.200", "client:other")


def test_one_address_trying_many_names_is_held_back_by_the_address() -> None:
    clock = Clock()
    budgets = throttle(clock)
    for n in range(6):
        budgets.failed("198.51.100.7", f"partner:name{n}")
    assert budgets.throttled("198.51.100.7", "partner:never-tried")
    assert not budgets.throttled("198.51.100.8", "partner:never-tried")


def test_an_ipv6_host_counts_as_its_slash_64() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("198.51.100.7") != address_key("198.51.100.8")
    clock = Clock()
    budgets = throttle(clock)
    for n in range(6):
        budgets.failed(f"2001:db8:1:2::{n + 1:x}", f"partner:name{n}")
    assert budgets.throttled("2001:db8:1:2:abcd::1", "partner:new")


def test_the_budgets_held_are_bounded() -> None:
    budgets = FailureThrottle(per_pair=5, per_name=5, per_address=5, window_s=60, max_keys=300)
    for n in range(1000):
        budgets.failed(f"10.0.{n // 250}.{n % 250}", f"partner:n{n}")
    assert len(budgets._budgets) <= 300


# --- the secrets verified lately -----------------------------------------------------------------
def test_a_verified_secret_is_remembered_while_used_and_forgotten_when_idle() -> None:
    clock = Clock()
    verified = VerifiedSecrets(ttl_s=300, monotonic=clock)
    verified.remember("partner", 7, "$argon2id$hash-1", "s3cret")
    assert verified.holds("partner", 7, "$argon2id$hash-1", "s3cret")
    assert not verified.holds("partner", 7, "$argon2id$hash-1", "s3cret!")
    assert not verified.holds("partner", 8, "$argon2id$hash-1", "s3cret")
    assert not verified.holds("client", 7, "$argon2id$hash-1", "s3cret")
    for _ in range(5):  # in use: kept
        clock.now += 250
        assert verified.holds("partner", 7, "$argon2id$hash-1", "s3cret")
    clock.now += 301  # idle: checked again
    assert not verified.holds("partner", 7, "$argon2id$hash-1", "s3cret")


def test_a_rotated_secret_never_meets_its_old_entry() -> None:
    verified = VerifiedSecrets(ttl_s=300)
    verified.remember("client", 3, "$argon2id$old", "token-secret")
    assert not verified.holds("client", 3, "$argon2id$new", "token-secret")


def test_forget_drops_one_principal_or_all() -> None:
    verified = VerifiedSecrets(ttl_s=300)
    verified.remember("partner", 1, "h1", "a")
    verified.remember("partner", 2, "h2", "b")
    verified.remember("client", 1, "h3", "c")
    verified.forget("partner", 1)
    assert not verified.holds("partner", 1, "h1", "a")
    assert verified.holds("partner", 2, "h2", "b") and verified.holds("client", 1, "h3", "c")
    verified.forget()
    assert not verified.holds("partner", 2, "h2", "b") and not verified.holds(
        "client", 1, "h3", "c"
    )


def test_no_secret_is_kept_in_clear() -> None:
    verified = VerifiedSecrets(ttl_s=300)
    verified.remember("partner", 1, "stored", "a-recognisable-secret")
    held = repr(verified._entries)
    assert "a-recognisable-secret" not in held and "stored" not in held


# --- the hashing pool ---------------------------------------------------------------------------
async def test_a_hash_made_here_verifies_and_a_wrong_secret_or_no_hash_does_not() -> None:
    hashing = SecretHashing(**CHEAP)
    stored = await hashing.hash("right")
    assert stored.startswith("$argon2id$") and "m=1024,t=1,p=1" in stored
    assert await hashing.verify(stored, "right")
    assert not await hashing.verify(stored, "wrong")
    assert not await hashing.verify(None, "right")  # the dummy: checked, never matched


@pytest.mark.serial
async def test_the_event_loop_keeps_running_while_argon2_works() -> None:
    """A verification of ~0.1 s: the loop's ticks of 5 ms must go on meanwhile."""
    hashing = SecretHashing(memory_kib=65536, time_cost=2, parallelism=1)
    stored = await hashing.hash("right")
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.005)

    beat = asyncio.create_task(ticker())
    started = time.perf_counter()
    await asyncio.gather(*(hashing.verify(stored, "wrong") for _ in range(4)))
    spent = time.perf_counter() - started
    beat.cancel()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert spent > 0.05, "argon2 was not doing real work"
    assert len(ticks) > spent / 0.05, (len(ticks), spent)
    assert max(gaps) < 0.05, f"the loop stalled {max(gaps) * 1000:.0f} ms"


@pytest.mark.serial
async def test_a_full_pool_refuses_at_once_rather_than_queueing() -> None:
    hashing = SecretHashing(workers=1, queue=1, memory_kib=65536, time_cost=2, parallelism=1)
    stored = await hashing.hash("right")
    first = asyncio.create_task(hashing.verify(stored, "wrong"))  # running
    second = asyncio.create_task(hashing.verify(stored, "wrong"))  # waiting for the thread
    await asyncio.sleep(0)
    started = time.perf_counter()
    with pytest.raises(Overloaded):
        await hashing.verify(stored, "wrong")
    assert time.perf_counter() - started < 0.01, "the refusal must not wait"
    assert await asyncio.gather(first, second) == [False, False]
    assert not await hashing.verify(stored, "wrong"), "the slots are free again"


async def test_a_caller_that_gives_up_frees_its_slot_once_the_work_is_done() -> None:
    hashing = SecretHashing(workers=1, queue=0, **CHEAP)
    stored = await hashing.hash("right")
    waiting = asyncio.create_task(hashing.verify(stored, "right"))
    await asyncio.sleep(0)
    waiting.cancel()
    for _ in range(200):  # the verification still runs in its thread; then the slot is free
        try:
            assert await hashing.verify(stored, "right")
            break
        except Overloaded:
            await asyncio.sleep(0.01)
    else:
        pytest.fail("the slot of a cancelled verification was never freed")


# --- the whole check ----------------------------------------------------------------------------
def presented(secret: str, *, stored: str | None, ident: int | None = 7) -> Presented:
    return Presented(
        kind="partner",
        name="cvs",
        address="198.51.100.7",
        secret=secret,
        ident=ident,
        stored_hash=stored,
    )


async def test_a_throttled_caller_is_refused_unchecked_but_a_remembered_secret_is_not() -> None:
    clock = Clock()
    hashing = SecretHashing(**CHEAP)
    checks = CredentialChecks(
        hashing=hashing,
        verified=VerifiedSecrets(ttl_s=300, monotonic=clock),
        throttle=throttle(clock, pair=2),
    )
    stored = await hashing.hash("right")
    assert await checks.holds(presented("right", stored=stored))  # remembered from now on
    assert not await checks.holds(presented("wrong", stored=stored))
    assert not await checks.holds(presented("wrong", stored=stored))
    with pytest.raises(Unauthenticated) as refused:
        await checks.holds(presented("wrong", stored=stored))
    assert refused.value.reason == "throttled"
    with pytest.raises(Unauthenticated):  # not checked, so not even the right secret gets in
        await checks.holds(presented("right", stored=stored, ident=8))
    assert await checks.holds(presented("right", stored=stored)), "known good: from memory"


async def test_an_unknown_name_spends_the_same_budgets_as_a_known_one() -> None:
    clock = Clock()
    checks = CredentialChecks(
        hashing=SecretHashing(**CHEAP),
        verified=VerifiedSecrets(ttl_s=300, monotonic=clock),
        throttle=throttle(clock, pair=2),
    )
    assert not await checks.holds(presented("guess", stored=None, ident=None))
    assert not await checks.holds(presented("guess", stored=None, ident=None))
    with pytest.raises(Unauthenticated):
        await checks.holds(presented("guess", stored=None, ident=None))


async def test_checks_refused_by_a_full_pool_spend_no_budget() -> None:
    # Retries through a busy spell (each answered server.overloaded, retryable) spend no failure
    # budget: once the pool frees, the check is made, not refused as throttled.
    clock = Clock()
    # Slow enough that the one check running still holds the thread while the others arrive.
    hashing = SecretHashing(workers=1, queue=0, memory_kib=65536, time_cost=2, parallelism=1)
    checks = CredentialChecks(hashing=hashing, throttle=throttle(clock, pair=2, address=3))
    running = asyncio.create_task(checks.holds(presented("guess", stored=None, ident=None)))
    await asyncio.sleep(0)
    for _ in range(5):
        with pytest.raises(Overloaded):
            await checks.holds(presented("guess", stored=None, ident=None))
    assert not await running  # the one check that ran failed: one from each budget
    assert not checks.throttle.throttled("198.51.100.7", "partner:cvs")


async def test_a_burst_of_one_secret_runs_one_check_and_fills_no_pool() -> None:
    # A client's 64 connections after a restart, one token, nothing remembered: one argon2 run
    # answers them all; a pool of 1 + 1 waiting would refuse 62 of them otherwise.
    hashing = SecretHashing(workers=1, queue=1, memory_kib=8192, time_cost=2, parallelism=1)
    checks = CredentialChecks(hashing=hashing)
    stored = await hashing.hash("right")
    answers = await asyncio.gather(
        *(checks.holds(presented("right", stored=stored)) for _ in range(64))
    )
    assert answers == [True] * 64
    wrong = await asyncio.gather(
        *(checks.holds(presented("wrong", stored=stored, ident=9)) for _ in range(3))
    )
    assert wrong == [False] * 3, "a wrong secret is shared too, and fails for each"
    assert not checks.running, "nothing left running"
