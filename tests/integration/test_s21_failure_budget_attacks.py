"""Attacks on the fleet's failure budgets (app/admission/shared_failures.py, migration 0021):
what a guesser gets past them, and what they cost a client with the right secret."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.admission.service import split_token
from app.admission.shared_failures import SharedFailures
from app.main import Gateway
from app.principals.shared_limits import FailureBudgetRepository
from app.settings import Settings
from tests.integration.test_fleet_failure_budgets import (
    documentation_address,
    forged,
    new_token,
    outcome,
)
from tests.support.clock import PinnedClock
from tests.support.fleet import instance

pytestmark = pytest.mark.db

PAIR = 3  # failed checks one address may make for one name in the window (of 60 s)


@pytest.fixture(scope="module")
async def fleet(settings: Settings, clock: PinnedClock) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two instances on the session's database with a small budget per address and name."""
    budgets = {"credential_failures_per_pair": PAIR}
    async with (
        instance(settings, clock, "s21-budgets-a", **budgets) as a,
        instance(settings, clock, "s21-budgets-b", **budgets) as b,
    ):
        yield a, b


async def test_concurrent_guesses_on_two_instances_get_one_budget(
    fleet: tuple[Gateway, Gateway],
) -> None:
    """Wrong secrets sent at once, PAIR to each instance: each check reads the fleet's budget
    before any of them spends it, so every one is checked (2 * PAIR guesses, not PAIR)."""
    a, b = fleet
    token, guesser = await new_token(a), documentation_address()
    answers = await asyncio.gather(
        *(outcome(gw, forged(token), guesser) for gw in (a, b) for _ in range(PAIR))
    )
    checked = answers.count("bad_token")
    assert checked <= PAIR, f"{checked} guesses checked against a budget of {PAIR}: {answers}"
    assert set(answers) <= {"bad_token", "throttled"}, answers


async def test_the_right_secret_is_admitted_after_concurrent_first_checks(
    fleet: tuple[Gateway, Gateway],
) -> None:
    """A client with the right secret whose first calls reach both instances at once is
    admitted, and its budget is whole afterwards: a success spends nothing."""
    a, b = fleet
    token, client = await new_token(a), documentation_address()
    assert await asyncio.gather(outcome(a, token, client), outcome(b, token, client)) == [
        "ok",
        "ok",
    ]
    for _ in range(PAIR):  # a whole budget of typos, after the successes, all checked
        assert await outcome(a, forged(token) + uuid.uuid4().hex[:2], client) == "bad_token"


async def test_a_check_that_holds_keeps_nothing_of_a_check_in_flight_elsewhere(
    fleet: tuple[Gateway, Gateway],
) -> None:
    """The interleaving of the test above that two test workers' load brought about: the
    right secret's first call on A reads the fleet's budgets while B's first call, the right
    secret too, has spent a failure for its run and not yet given it back. A kept that
    failure as its own memory of the budget, and once both had held, the client's third typo
    on A was refused from that memory (``throttled``), its budget whole in the database."""
    a, _ = fleet
    token, client = await new_token(a), documentation_address()
    parts = split_token(token)
    assert parts is not None
    checks = a.admission.checks
    budgets = checks.throttle.budgets(client, f"client:{parts[0]}")
    window_s = checks.throttle.window_s
    store = FailureBudgetRepository(lambda: a.db.admission_pool)
    assert min((await store.spend(budgets, window_s)).values()) >= 0  # B's run, in flight
    assert await outcome(a, token, client) == "ok"
    await store.give_back(budgets, window_s)  # B's secret held too
    for _ in range(PAIR):  # a whole budget of typos, all checked
        assert await outcome(a, forged(token) + uuid.uuid4().hex[:2], client) == "bad_token"


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.serial
async def test_a_stale_budget_held_elsewhere_does_not_switch_the_fleets_budgets_off(
    owner_pool: asyncpg.Pool, gateway: Gateway
) -> None:
    """Another instance's spend holds the row of a budget full again (its transaction stalled):
    this instance's prune, due after its own spend, waits for that row until the store's
    timeout, so the spend's answer is dropped and the fleet's budgets are taken for away: the
    instance holds callers to its own budgets alone for the next seconds."""
    ticks = Ticks()
    fleet = SharedFailures(
        FailureBudgetRepository(lambda: gateway.db.admission_pool), timeout_s=0.3, clock=ticks
    )
    stale, key = (f"name|client:{uuid.uuid4().hex[:12]}" for _ in range(2))
    await owner_pool.execute(
        "INSERT INTO failure_budgets VALUES ($1, 2, 0, statement_timestamp() - interval '1 hour')",
        stale,
    )
    async with owner_pool.acquire() as elsewhere, elsewhere.transaction():
        await elsewhere.execute("SELECT 1 FROM failure_budgets WHERE key = $1 FOR UPDATE", stale)
        ticks.now += 60  # a window since this instance last pruned
        assert await fleet.spend([(key, 2)], 60.0) == {key: 1.0}
        assert 1 <= (await fleet.left([(key, 2)], 60.0)).get(key, 0) < 2, "taken for away"


@pytest.mark.serial
async def test_a_backlog_of_budgets_full_again_is_pruned_without_dropping_answers(
    owner_pool: asyncpg.Pool, gateway: Gateway
) -> None:
    """A flood of distinct names and addresses leaves more rows than one DELETE removes within
    the store's timeout: the prune is cancelled and rolled back (nothing deleted), the spend's
    answer is dropped and the budgets taken for away, and the same again each window, while
    the table only grows. (The timeout is a quarter of the real one's, so that a backlog a
    test can write in a second shows it.)"""
    ticks = Ticks()
    fleet = SharedFailures(
        FailureBudgetRepository(lambda: gateway.db.admission_pool), timeout_s=0.25, clock=ticks
    )
    flood = f"name|client:flood-{uuid.uuid4().hex[:8]}-"
    await owner_pool.execute(
        "INSERT INTO failure_budgets SELECT $1 || n, 5, 0,"
        " statement_timestamp() - interval '1 hour' FROM generate_series(1, 300000) AS n",
        flood,
    )
    count = "SELECT count(*) FROM failure_budgets WHERE key LIKE $1 || '%'"
    try:
        ticks.now += 60  # a window since this instance last pruned
        for spent in range(200):  # checks failing meanwhile, within the window
            key = f"name|client:{uuid.uuid4().hex[:12]}"
            assert await fleet.spend([(key, 2)], 60.0) == {key: 1.0}, f"dropped after {spent}"
            if await owner_pool.fetchval(count, flood) == 0:
                break
        assert await owner_pool.fetchval(count, flood) == 0, "the backlog is still there"
    finally:
        await owner_pool.execute("DELETE FROM failure_budgets WHERE key LIKE $1 || '%'", flood)


async def test_a_budget_spent_before_the_clock_went_back_refills_within_its_window(
    owner_pool: asyncpg.Pool, gateway: Gateway
) -> None:
    """A budget emptied by a counter's typos just before the database's clock was stepped back
    an hour (NTP correcting it) has its spent_at an hour ahead: it refills not at all until the
    clock catches up, so the counter, its password now right, is refused for an hour, not for
    the window. (A window of a second here.)"""
    store = FailureBudgetRepository(lambda: gateway.db.admission_pool)
    key = f"pair|192.0.2.7|partner:{uuid.uuid4().hex[:12]}"
    await owner_pool.execute(
        "INSERT INTO failure_budgets VALUES ($1, 3, 0, statement_timestamp() + interval '1 hour')",
        key,
    )
    await asyncio.sleep(1.1)  # a window, by the database's clock
    assert (await store.left([(key, 3)], 1.0)).get(key, 3.0) >= 1, "still empty"
    assert min((await store.spend([(key, 3)], 1.0)).values()) >= 0, "not spent"
    await asyncio.sleep(1.1)
    assert (await store.left([(key, 3)], 1.0)).get(key, 3.0) == 3, "spent in the future"
