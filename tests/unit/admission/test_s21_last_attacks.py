"""Last attacks on admission's names (``KnownPrincipals``): a principal whose change notice has
arrived is admitted, whatever a stranger inventing names has spent meanwhile."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from app.admission.known_principals import MISSES_PER_S, KnownPrincipals


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Store:
    """``usernames`` are the partners it has; a read of the names sees them as they were when
    it began (its snapshot), and ends when ``gate`` is set."""

    def __init__(self) -> None:
        self.usernames: set[str] = set()
        self.gate = asyncio.Event()
        self.gate.set()
        self.reading = asyncio.Event()

    async def principal_names(self) -> tuple[frozenset[str], frozenset[str]]:
        snapshot = frozenset(self.usernames)
        self.reading.set()
        await self.gate.wait()
        return snapshot, frozenset()

    async def partner_by_username(self, username: str) -> Any:
        return SimpleNamespace(id=10, username=username) if username in self.usernames else None

    async def client_by_token_id(self, token_id: str) -> None:
        return None


async def test_a_partner_whose_notice_arrived_during_a_read_of_the_names_is_admitted() -> None:
    """A read of the names is out (after another principal's change) when a partner is
    created and its notice arrives: its first call joins that read, begun before it existed,
    and with the look-ups of unlisted names spent by a stranger, it is refused as no one's
    though its notice is here."""
    clock, store = Clock(), Store()
    principals = KnownPrincipals(store, ttl_s=60, monotonic=clock)  # type: ignore[arg-type]
    for n in range(int(MISSES_PER_S)):  # a stranger's invented names
        assert await principals.partner(f"guess{n}") is None
    principals.forget("partner", 9)  # another partner's change
    store.gate.clear()
    store.reading.clear()
    out = asyncio.create_task(principals.partner("guess-more"))  # the names read again
    await store.reading.wait()
    store.usernames.add("newcomer")  # created now
    principals.forget("partner", 10)  # and its notice arrives
    first_call = asyncio.create_task(principals.partner("newcomer"))
    await asyncio.sleep(0)
    store.gate.set()
    assert await out is None
    newcomer = await first_call
    assert newcomer is not None, "refused after its notice arrived"
    assert newcomer.username == "newcomer"
