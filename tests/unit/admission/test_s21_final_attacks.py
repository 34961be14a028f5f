"""Final attacks on the credential checks' fleet budgets: a right secret spends nothing of them,
also when the caller whose check it joined goes away while argon2 runs; and an instance that
cannot reach them is alerted from the first time."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry

from app.admission.credential_checks import CredentialChecks
from app.admission.secret_hashing import SecretHashing
from app.admission.shared_failures import SharedFailures
from app.observability.metrics import Metrics
from tests.support.credentials import presented


class Store:
    """Budgets in memory (no refill: the test takes less than a window); counts what is spent
    and given back."""

    def __init__(self) -> None:
        self.spent: dict[str, int] = {}

    async def left(
        self, budgets: Sequence[tuple[str, int]], window_s: float
    ) -> Mapping[str, float]:
        return {key: float(size - self.spent[key]) for key, size in budgets if key in self.spent}

    async def spend(
        self, budgets: Sequence[tuple[str, int]], window_s: float
    ) -> Mapping[str, float]:
        for key, _ in budgets:
            self.spent[key] = self.spent.get(key, 0) + 1
        return {key: float(size - self.spent[key]) for key, size in budgets}

    async def give_back(self, budgets: Sequence[tuple[str, int]], window_s: float) -> None:
        for key, _ in budgets:
            self.spent[key] -= 1

    async def prune(self, window_s: float) -> bool:
        return False


async def test_a_right_secret_whose_joined_check_lost_its_caller_spends_nothing() -> None:
    """The caller whose check others joined goes away while argon2 runs, after the check
    spent the fleet's budgets: the spend was never given back, and the joined caller's own
    check spent again, so each dropped connection of a client with its secret right left one
    failure spent in the fleet's budgets (five lock it out for the window)."""
    hashing = SecretHashing(workers=1, queue=2, memory_kib=65536, time_cost=2, parallelism=1)
    store = Store()
    checks = CredentialChecks(hashing=hashing, fleet=SharedFailures(store))
    stored = await hashing.hash("right")
    first = asyncio.create_task(checks.holds(presented("right", stored)))
    await asyncio.sleep(0.01)  # spent, its argon2 run under way
    assert store.spent and all(n == 1 for n in store.spent.values())
    joined = asyncio.create_task(checks.holds(presented("right", stored)))
    await asyncio.sleep(0.01)  # waiting for the first's check
    first.cancel()
    async with asyncio.timeout(10):
        assert await joined is True
    for _ in range(50):  # one worker: the first's run ended before the joined one's answer
        await asyncio.sleep(0.01)  # anything still to be given back, given back meanwhile
    assert all(n == 0 for n in store.spent.values()), store.spent


class SlowSpend(Store):
    """A busy primary: a spend commits, and answers once ``answer`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = asyncio.Event()

    async def spend(
        self, budgets: Sequence[tuple[str, int]], window_s: float
    ) -> Mapping[str, float]:
        left = await super().spend(budgets, window_s)
        await self.answer.wait()
        return left


async def test_a_right_secret_whose_caller_went_away_during_the_spend_spends_nothing() -> None:
    """The caller whose check others joined goes away while the fleet's spend is out (a busy
    primary, the client's own timeout): the spend commits and is never given back, and the
    joined caller's check spends again, so a client with its secret right loses a failure of
    the fleet's budgets for each call it gives up on."""
    hashing = SecretHashing(workers=1, queue=2, memory_kib=1024, time_cost=1, parallelism=1)
    store = SlowSpend()
    checks = CredentialChecks(hashing=hashing, fleet=SharedFailures(store, timeout_s=60))
    stored = await hashing.hash("right")
    first = asyncio.create_task(checks.holds(presented("right", stored)))
    await asyncio.sleep(0.01)  # its spend out, committed, not answered
    assert store.spent and all(n == 1 for n in store.spent.values())
    joined = asyncio.create_task(checks.holds(presented("right", stored)))
    await asyncio.sleep(0.01)  # waiting for the first's check
    first.cancel()
    await asyncio.sleep(0.01)
    store.answer.set()  # the primary answers again
    async with asyncio.timeout(10):
        assert await joined is True
    for _ in range(50):  # anything still to be given back, given back meanwhile
        await asyncio.sleep(0.01)
    assert all(n == 0 for n in store.spent.values()), store.spent


async def test_a_right_secret_joined_to_a_check_whose_caller_went_away_is_not_throttled() -> None:
    """A client with its last failure of the fleet's pair budget left (four spent on an old
    token) presents its right secret twice at once, and the first call is dropped while argon2
    runs: the joined call checked anew found the budget spent by the first's run, whose
    give-back was yet to come, and was refused as throttled though its secret is right."""
    hashing = SecretHashing(workers=1, queue=2, memory_kib=65536, time_cost=2, parallelism=1)
    store = Store()
    store.spent = {"pair|198.51.100.7|client:ops": 4}  # of 5, spent on an old token
    checks = CredentialChecks(hashing=hashing, fleet=SharedFailures(store))
    stored = await hashing.hash("right")
    first = asyncio.create_task(checks.holds(presented("right", stored)))
    await asyncio.sleep(0.01)  # the last failure spent, its argon2 run under way
    joined = asyncio.create_task(checks.holds(presented("right", stored)))
    await asyncio.sleep(0.01)  # waiting for the first's check
    first.cancel()
    async with asyncio.timeout(10):
        assert await joined is True


def test_an_instances_first_unreachable_failure_budgets_are_alerted() -> None:
    """SsogwFailureBudgetsPerInstance fires on an increase of the ``unreachable`` series over
    5 minutes; a series first exported at 1 (created by its first sample) shows none, so an
    instance that could not reach the fleet's budgets once since it started was never alerted.
    The series is exported at 0 from the start, as an increase can count from it."""
    metrics = Metrics(CollectorRegistry())
    sample = metrics.registry.get_sample_value
    assert sample("ssogw_failure_budgets_total", {"result": "unreachable"}) == 0.0
    metrics.failure_budgets_asked("unreachable")
    assert sample("ssogw_failure_budgets_total", {"result": "unreachable"}) == 1.0


def test_an_instances_first_unreachable_rate_lease_is_alerted() -> None:
    """SsogwRateLimitsPerInstance has the same increase over 5 minutes of its ``unreachable``
    series, which was first exported at 1: an instance that could not take a lease once since
    it started was never alerted."""
    metrics = Metrics(CollectorRegistry())
    sample = metrics.registry.get_sample_value
    assert sample("ssogw_rate_leases_total", {"result": "unreachable"}) == 0.0
