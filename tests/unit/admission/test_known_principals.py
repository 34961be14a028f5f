"""Names no partner or client has cost the primary a bounded number of statements
(``KnownPrincipals``): however many usernames or token ids a stranger invents, at most
``MISSES_PER_S`` a second are looked up, the rest answered from the registry's names; a
principal created a moment ago is still looked up, and a change announced brings it in."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace
from typing import Any

from app.admission.known_principals import MISSES_PER_S, KnownPrincipals


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Store:
    """Counts the statements asked of it; ``usernames`` are the partners it has."""

    def __init__(self, *usernames: str) -> None:
        self.usernames = set(usernames)
        self.asked: Counter[str] = Counter()
        self.gate: asyncio.Event | None = None
        self.reading = asyncio.Event()

    async def principal_names(self) -> tuple[frozenset[str], frozenset[str]]:
        self.asked["names"] += 1
        self.reading.set()
        if self.gate is not None:
            await self.gate.wait()
        return frozenset(self.usernames), frozenset()

    async def partner_by_username(self, username: str) -> Any:
        self.asked["partner"] += 1
        return SimpleNamespace(id=9, username=username) if username in self.usernames else None

    async def client_by_token_id(self, token_id: str) -> None:
        self.asked["client"] += 1


def known(store: Store, clock: Clock) -> KnownPrincipals:
    return KnownPrincipals(store, ttl_s=60, monotonic=clock)  # type: ignore[arg-type]


async def test_invented_names_cost_a_bounded_number_of_statements() -> None:
    clock, store = Clock(), Store("acme")
    principals = known(store, clock)
    for n in range(10_000):
        assert await principals.partner(f"guess{n}") is None
        assert await principals.client(f"tid-guess{n}") is None
    burst = int(MISSES_PER_S)
    assert store.asked == Counter({"names": 1, "partner": burst // 2, "client": burst // 2})
    clock.now += 1.0  # a second's worth more
    for n in range(10_000, 20_000):
        await principals.partner(f"guess{n}")
    assert store.asked["partner"] == burst // 2 + burst
    assert (await principals.partner("acme")).username == "acme"  # a listed name: read


async def test_a_name_looked_up_as_no_ones_is_remembered_as_such() -> None:
    clock, store = Clock(), Store()
    principals = known(store, clock)
    for _ in range(100):  # a counter with a typo in its username, calling on
        assert await principals.partner("acme-typo") is None
    assert store.asked == Counter({"names": 1, "partner": 1})


async def test_a_principal_created_a_moment_ago_is_looked_up_before_its_notice() -> None:
    clock, store = Clock(), Store()
    principals = known(store, clock)
    assert await principals.partner("someone") is None  # the names are read: no "newcomer"
    store.usernames.add("newcomer")  # registered just now, its notice not here yet
    assert (await principals.partner("newcomer")).username == "newcomer"
    assert store.asked == Counter({"names": 1, "partner": 2})


async def test_a_change_announced_reads_the_names_again() -> None:
    clock, store = Clock(), Store()
    principals = known(store, clock)
    for n in range(int(MISSES_PER_S)):  # the look-ups of unlisted names spent
        await principals.partner(f"guess{n}")
    store.usernames.add("newcomer")
    assert await principals.partner("newcomer") is None  # unlisted, and none left to look it up
    principals.forget("partner", 9)  # its change notice
    assert (await principals.partner("newcomer")).username == "newcomer"
    assert store.asked["names"] == 2
    clock.now += 61
    await principals.partner("acme")
    assert store.asked["names"] == 3  # and once their time is up


async def test_callers_arriving_together_share_one_read_of_the_names() -> None:
    clock, store = Clock(), Store()
    store.gate = asyncio.Event()
    principals = known(store, clock)
    waiting = [asyncio.create_task(principals.partner("guess")) for _ in range(50)]
    await store.reading.wait()
    store.gate.set()
    assert await asyncio.gather(*waiting) == [None] * 50
    assert store.asked["names"] == 1


async def test_names_read_across_a_change_answer_their_callers_but_are_not_kept() -> None:
    clock, store = Clock(), Store()
    store.gate = asyncio.Event()
    principals = known(store, clock)
    first = asyncio.create_task(principals.partner("x"))
    await store.reading.wait()  # the read is out
    principals.forget("partner", 9)  # announced meanwhile
    store.gate.set()
    await first
    await principals.partner("y")
    assert store.asked["names"] == 2
