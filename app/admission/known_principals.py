"""Partners and clients as admission reads them, by username and token id: remembered for a
while, and a name no principal has answered from memory, not from the primary's pool.

Partners and clients are a registry, not the insured: tens or hundreds of names. All of them are
read in one statement when first needed (``PrincipalStore.principal_names``), and again once
``ttl_s`` has passed or any change is announced (``forget``). A name among them is read whole
(its record) and remembered for ``ttl_s``. A name not among them is still looked up, so that a
principal created a moment ago (its change notice not yet here) is admitted at once, but at
most ``MISSES_PER_S`` a second (a burst of as many), and remembered as no one's for ``ttl_s``:
a stranger inventing usernames or token ids costs the primary's pool, the one payments use,
that many statements a second and no more, where each invented name cost one. Beyond it, such
a name is refused as unknown from the names; one created meanwhile is admitted once its
change notice arrives, within a moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from app.principals.records import ClientRecord, PartnerRecord, PrincipalStore

#: Look-ups a second of names the registry's names do not hold (a burst of as many).
MISSES_PER_S = 20.0
#: Records, and names found to be no one's, remembered at most: each kind its own bound.
MAX_REMEMBERED = 10_000

_Record = TypeVar("_Record", PartnerRecord, ClientRecord)


@dataclass(frozen=True, slots=True)
class _Names:
    usernames: frozenset[str]
    token_ids: frozenset[str]
    until: float  # monotonic: read again after this


class KnownPrincipals:
    """Partners by username and clients by token id (module docstring)."""

    def __init__(
        self,
        store: PrincipalStore,
        *,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl_s
        self._monotonic = monotonic
        self._partners: dict[str, tuple[float, PartnerRecord]] = {}
        self._clients: dict[str, tuple[float, ClientRecord]] = {}
        self._no_one: dict[tuple[str, str], float] = {}  # (kind, name) -> until
        self._names: _Names | None = None
        self._reading: asyncio.Future[_Names] | None = None
        self._misses = MISSES_PER_S  # look-ups of unlisted names left, refilled at the rate
        self._misses_at = monotonic()
        # Moved on by every ``forget``: what was read before a change is not kept after it.
        self._generation = 0

    async def partner(self, username: str) -> PartnerRecord | None:
        """The partner whose username this is, or None."""
        return await self._read(
            "partner", username, self._partners, self._store.partner_by_username
        )

    async def client(self, token_id: str) -> ClientRecord | None:
        """The client whose token id this is, or None."""
        return await self._read("client", token_id, self._clients, self._store.client_by_token_id)

    def forget(self, kind: str | None = None, ident: int | None = None) -> None:
        """Drop the record of one principal (``kind`` "partner" or "client" and its id), else
        of every one, with the names and the names found to be no one's: the change may be a
        principal's creation, or its token's rotation to a new id, and must not wait for
        ``ttl_s``."""
        self._generation += 1
        self._names = None
        self._reading = None  # a read begun before the change: callers from now read anew
        self._no_one.clear()
        if kind is None or ident is None:
            self._partners.clear()
            self._clients.clear()
        elif kind == "partner":
            for name in [n for n, (_, p) in self._partners.items() if p.id == ident]:
                del self._partners[name]
        else:
            for tid in [t for t, (_, c) in self._clients.items() if c.id == ident]:
                del self._clients[tid]

    async def _read(
        self,
        kind: str,
        name: str,
        held: dict[str, tuple[float, _Record]],
        look_up: Callable[[str], Awaitable[_Record | None]],
    ) -> _Record | None:
        now, generation = self._monotonic(), self._generation
        cached = held.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        if self._no_one.get((kind, name), 0.0) > now:
            return None
        if self._ttl > 0:
            names = await self._known()
            listed = name in (names.usernames if kind == "partner" else names.token_ids)
            if not listed and not self._may_miss():
                return None
        record = await look_up(name)
        if generation == self._generation:  # else a change was announced while it was read
            if record is None:
                _remember(self._no_one, (kind, name), now + self._ttl)
            else:
                _remember(held, name, (now + self._ttl, record))
        return record

    def _may_miss(self) -> bool:
        """Whether a name the names do not hold may be looked up now (``MISSES_PER_S``)."""
        now = self._monotonic()
        self._misses = min(MISSES_PER_S, self._misses + (now - self._misses_at) * MISSES_PER_S)
        self._misses_at = now
        if self._misses < 1.0:
            return False
        self._misses -= 1.0
        return True

    async def _known(self) -> _Names:
        names = self._names
        if names is not None and names.until > self._monotonic():
            return names
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read_names())
            # Retrieved even when every caller waiting for it went away.
            self._reading.add_done_callback(lambda read: read.cancelled() or read.exception())
        # Shielded: a caller that goes away does not cancel the others' read.
        return await asyncio.shield(self._reading)

    async def _read_names(self) -> _Names:
        generation, now = self._generation, self._monotonic()
        try:
            usernames, token_ids = await self._store.principal_names()
        finally:
            if self._reading is asyncio.current_task():  # not a read begun since a change
                self._reading = None
        names = _Names(usernames, token_ids, until=now + self._ttl)
        if generation == self._generation:  # else a change was announced while they were read
            self._names = names
        return names


_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(held: dict[_K, _V], key: _K, value: _V) -> None:
    if len(held) >= MAX_REMEMBERED:
        held.clear()
    held[key] = value
