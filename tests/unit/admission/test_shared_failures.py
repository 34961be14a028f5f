"""The fleet's failure budgets when the database does not answer: each instance's own budgets
hold alone, the database is asked again a little later, and the log says so once each way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import pytest

from app.admission.credential_checks import CredentialChecks, Presented
from app.admission.failure_throttle import FailureThrottle
from app.admission.secret_hashing import SecretHashing
from app.admission.shared_failures import SharedFailures
from app.errors import Overloaded, StoreUnavailable, Unauthenticated

CHEAP = {"memory_kib": 1024, "time_cost": 1, "parallelism": 1}
BUDGETS = [("pair|198.51.100.7|partner:cvs", 2), ("name|partner:cvs", 20)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Store:
    """Budgets in memory (no refill: the tests take less than a window), or a store that fails
    or hangs; counts what it was asked."""

    def __init__(self, *, fails: bool = False, hangs: bool = False) -> None:
        self.fails, self.hangs = fails, hangs
        self.spent: dict[str, int] = {}
        self.asked = 0

    async def _answer(self) -> None:
        self.asked += 1
        if self.hangs:
            await asyncio.Event().wait()
        if self.fails:
            raise StoreUnavailable("the primary is away")

    async def left(
        self, budgets: Sequence[tuple[str, int]], window_s: float
    ) -> Mapping[str, float]:
        await self._answer()
        return {key: float(size - self.spent[key]) for key, size in budgets if key in self.spent}

    async def spend(
        self, budgets: Sequence[tuple[str, int]], window_s: float
    ) -> Mapping[str, float]:
        await self._answer()
        for key, _ in budgets:
            self.spent[key] = self.spent.get(key, 0) + 1
        return {key: float(size - self.spent[key]) for key, size in budgets}

    async def prune(self, window_s: float) -> None:
        await self._answer()


def presented(secret: str) -> Presented:
    return Presented(
        kind="partner", name="cvs", address="198.51.100.7", secret=secret, ident=None,
        stored_hash=None,
    )  # fmt: skip


async def test_budgets_spent_elsewhere_throttle_here() -> None:
    store = Store()
    store.spent = {"pair|198.51.100.7|partner:cvs": 5}  # the default budget, spent elsewhere
    checks = CredentialChecks(hashing=SecretHashing(**CHEAP), fleet=SharedFailures(store))
    with pytest.raises(Unauthenticated) as refused:
        await checks.holds(presented("guess"))
    assert refused.value.reason == "throttled" and store.asked == 1  # read, not spent


async def test_a_failed_check_spends_the_fleets_budgets_and_this_instances() -> None:
    store = Store()
    checks = CredentialChecks(hashing=SecretHashing(**CHEAP), fleet=SharedFailures(store))
    assert not await checks.holds(presented("guess"))
    assert store.spent == {"pair|198.51.100.7|partner:cvs": 1, "name|partner:cvs": 1,
                           "address|198.51.100.7": 1}  # fmt: skip
    assert store.asked == 2  # a read before the check, a spend after


async def test_with_the_store_away_this_instances_budgets_hold_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = Store(fails=True)
    checks = CredentialChecks(
        hashing=SecretHashing(**CHEAP),
        throttle=FailureThrottle(per_pair=2, per_name=20, per_address=30, window_s=60),
        fleet=SharedFailures(store, retry_s=5, clock=clock),
    )
    with caplog.at_level(logging.WARNING, logger="app.admission.shared_failures"):
        assert not await checks.holds(presented("guess"))
        assert not await checks.holds(presented("guess"))
        with pytest.raises(Unauthenticated) as refused:
            await checks.holds(presented("guess"))
        assert refused.value.reason == "throttled"
        assert store.asked == 1, "asked again while it was known to be away"
        clock.now += 5
        store.fails = False
        assert await checks.fleet.left(BUDGETS, 60) == {}  # type: ignore[union-attr]
    assert store.asked == 2
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "could not be reached" in said[0] and "answer again" in said[1]


async def test_a_caller_throttled_elsewhere_is_refused_here_from_memory() -> None:
    store = Store()
    store.spent = {"pair|198.51.100.7|partner:cvs": 5}  # the default budget, spent elsewhere
    checks = CredentialChecks(hashing=SecretHashing(**CHEAP), fleet=SharedFailures(store))
    for _ in range(10):
        with pytest.raises(Unauthenticated):
            await checks.holds(presented("guess"))
    assert store.asked == 1, "the fleet's answer was not kept"


class Fleet(Store):
    """The fleet's budgets as the database keeps them: a spend takes one of each only when
    every one has one left (else says below 0), and a check that held gives it back."""

    async def spend(
        self, budgets: Sequence[tuple[str, int]], window_s: float
    ) -> Mapping[str, float]:
        await self._answer()
        if any(size - self.spent.get(key, 0) < 1 for key, size in budgets):
            return {key: -1.0 for key, _ in budgets}
        return await super().spend(budgets, window_s)

    async def give_back(self, budgets: Sequence[tuple[str, int]], window_s: float) -> None:
        for key, _ in budgets:
            self.spent[key] -= 1


async def test_a_typo_beside_a_check_in_flight_elsewhere_costs_the_client_one_failure() -> None:
    """Another instance's check of the right secret has spent a failure for its run when the
    client's typo here is checked; once that check holds and gives it back, the client has
    every failure of its budget but the typo's, here as in the database (this instance kept
    what the typo's spend left, the failure in flight with it, and refused the last typo
    from memory: ``throttled``)."""
    store = Fleet()
    throttle = FailureThrottle(per_pair=5, per_name=20, per_address=30, window_s=60,
                               monotonic=lambda: 1000.0)  # fmt: skip
    checks = CredentialChecks(hashing=SecretHashing(**CHEAP), throttle=throttle,
                              fleet=SharedFailures(store))  # fmt: skip
    budgets = throttle.budgets("198.51.100.7", "partner:cvs")
    await store.spend(budgets, 60)  # the other instance's check, in flight
    assert not await checks.holds(presented("typo"))
    await store.give_back(budgets, 60)  # it held
    answers: list[object] = []
    for _ in range(4):
        try:
            answers.append(await checks.holds(presented("typo")))
        except Unauthenticated as refused:
            answers.append(refused.reason)
    assert answers == [False] * 4, answers


async def test_a_full_pool_refuses_before_the_fleet_is_asked() -> None:
    store = Store()
    hashing = SecretHashing(workers=1, queue=0, memory_kib=65536, time_cost=2, parallelism=1)
    checks = CredentialChecks(hashing=hashing, fleet=SharedFailures(store))
    running = asyncio.create_task(checks.holds(presented("guess")))
    await asyncio.sleep(0.05)  # its read done, its argon2 run holding the one place
    for _ in range(5):
        with pytest.raises(Overloaded):
            await checks.holds(presented("guess"))
    assert not await running
    assert store.asked == 2, "the refused calls asked the fleet"  # the run's read and spend


async def test_a_store_that_does_not_answer_holds_a_check_no_longer_than_its_timeout() -> None:
    fleet = SharedFailures(Store(hangs=True), timeout_s=0.05)
    async with asyncio.timeout(1):
        assert await fleet.left(BUDGETS, 60) == {}
    assert await fleet.spend(BUDGETS, 60) == {}  # away: not asked again meanwhile


async def test_each_answer_and_each_absence_of_the_store_is_counted() -> None:
    said: list[str] = []

    class Events:
        def failure_budgets_asked(self, result: str) -> None:
            said.append(result)

    clock, store = Clock(), Store(fails=True)
    fleet = SharedFailures(store, retry_s=5, clock=clock, events=Events())
    await fleet.left(BUDGETS, 60)
    await fleet.left(BUDGETS, 60)  # known to be away: not asked, not counted
    clock.now += 5
    store.fails = False
    await fleet.left(BUDGETS, 60)
    assert said == ["unreachable", "answered"]


async def test_a_right_secret_gets_back_a_failure_whose_spend_answered_too_late() -> None:
    """The spend before the run was made, but its answer came after the timeout (a busy
    primary): the check, its secret right, gives the failure back all the same."""

    class Late(Store):
        async def spend(
            self, budgets: Sequence[tuple[str, int]], window_s: float
        ) -> Mapping[str, float]:
            await super().spend(budgets, window_s)  # made ...
            await asyncio.sleep(1)  # ... and answered too late
            return {}

        async def give_back(self, budgets: Sequence[tuple[str, int]], window_s: float) -> None:
            for key, _ in budgets:
                self.spent[key] -= 1

    hashing = SecretHashing(**CHEAP)
    store = Late()
    checks = CredentialChecks(hashing=hashing, fleet=SharedFailures(store, timeout_s=0.05))
    right = Presented(
        kind="partner", name="cvs", address="198.51.100.7", secret="right", ident=7,
        stored_hash=await hashing.hash("right"),
    )  # fmt: skip
    assert await checks.holds(right)
    assert set(store.spent.values()) == {0}, store.spent
