"""The credential checks' failure budgets hold for the fleet (app/admission/shared_failures.py,
migration 0021): wrong secrets spread over two instances on one database spend one budget, by
the database's clock, and the budgets the database holds are forgotten once full again."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.errors import ServiceError, Unauthenticated
from app.main import Gateway
from app.principals.shared_limits import FailureBudgetRepository
from app.settings import Settings
from tests.support.clock import PinnedClock
from tests.support.fleet import instance

pytestmark = pytest.mark.db

PAIR = 3  # failed checks one address may make for one name in the window (of 60 s)


def documentation_address() -> str:
    """An address of 2001:db8::/32 (documentation), in a /64 of its own: new budgets."""
    return str(ipaddress.IPv6Address((0x2001_0DB8 << 96) | int.from_bytes(os.urandom(12))))


@pytest.fixture(scope="module")
async def fleet(settings: Settings, clock: PinnedClock) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two instances on the session's database with a small budget per address and name."""
    budgets = {"credential_failures_per_pair": PAIR}
    async with (
        instance(settings, clock, "failures-a", **budgets) as a,
        instance(settings, clock, "failures-b", **budgets) as b,
    ):
        yield a, b


async def new_token(gw: Gateway) -> str:
    issued = await gw.registry.add_client(
        name=f"c-{uuid.uuid4().hex[:10]}", scopes=["counter"], cidrs=["2001:db8::/32"]
    )
    return issued.token


def forged(token: str) -> str:
    """The same token id with a wrong secret."""
    return token.rpartition("_")[0] + "_" + uuid.uuid4().hex


async def outcome(gw: Gateway, token: str, address: str) -> str:
    """``ok`` if ``gw`` admits a call with ``token`` from ``address``, else the reason."""
    try:
        await gw.admission.admit(
            caller=Caller(Protocol.REST, address, uuid.uuid4().hex),
            credentials=BearerToken(token),
            operation="InquireContribution",
            scope="counter",
        )
    except Unauthenticated as refused:
        return refused.reason
    except ServiceError as error:
        return error.code
    return "ok"


async def test_failures_on_one_instance_throttle_the_caller_on_the_other(
    fleet: tuple[Gateway, Gateway],
) -> None:
    a, b = fleet
    token, guesser, bystander = await new_token(a), documentation_address(), documentation_address()
    for _ in range(PAIR):
        assert await outcome(a, forged(token), guesser) == "bad_token"
    # The other instance never saw a failure of this caller, and refuses it unchecked.
    assert await outcome(b, token, guesser) == "throttled"
    # The budget is the pair's: the same name from elsewhere is checked, and holds.
    assert await outcome(b, token, bystander) == "ok"


async def test_a_guesser_alternating_instances_gets_one_budget(
    fleet: tuple[Gateway, Gateway],
) -> None:
    a, b = fleet
    token, guesser = await new_token(a), documentation_address()
    answers = [await outcome((a, b)[n % 2], forged(token), guesser) for n in range(2 * PAIR)]
    assert answers == ["bad_token"] * PAIR + ["throttled"] * PAIR


@pytest.mark.serial
async def test_a_shared_budget_refills_over_its_window(gateway: Gateway) -> None:
    store = FailureBudgetRepository(lambda: gateway.db.admission_pool)
    key = f"name|client:{uuid.uuid4().hex[:12]}"
    assert await store.left([(key, 2)], 2.0) == {}  # never spent: full
    await store.spend([(key, 2)], 2.0)
    assert (await store.spend([(key, 2)], 2.0))[key] < 1
    await asyncio.sleep(1.1)  # one failure's worth, by the database's clock
    assert 1 <= (await store.left([(key, 2)], 2.0))[key] < 2


async def test_budgets_full_again_are_deleted(owner_pool: asyncpg.Pool, gateway: Gateway) -> None:
    store = FailureBudgetRepository(lambda: gateway.db.admission_pool)
    key = f"name|client:{uuid.uuid4().hex[:12]}"
    await store.spend([(key, 2)], 0.05)
    await asyncio.sleep(0.1)
    assert (await store.left([(key, 2)], 0.05))[key] == 2  # refilled, though still a row
    await store.prune(0.05)
    assert (
        await owner_pool.fetchval("SELECT count(*) FROM failure_budgets WHERE key = $1", key) == 0
    )
