"""Failed secret checks counted per source address and per claimed name, so that a caller who
keeps failing is refused before the expensive check runs again.

Three budgets of failures, each refilled evenly over ``window_s``:

- per address and name (``per_pair``): one caller failing for one name, a client left with an
  old token or a guesser at one account, is held back first, and alone;
- per name (``per_name``): guesses at one username or token id from many addresses;
- per address (``per_address``): one address trying many names. An IPv6 address counts by its
  /64, which one host usually holds whole; an IPv4-mapped one (``::ffff:a.b.c.d``, from a
  listener on ``::``) as the IPv4 address it maps.

A failed check spends one from each; while any of the three has less than one left, the next
check is refused without hashing. Calls refused so spend nothing, so a held-back caller gets one
check per ``window_s / limit`` seconds, and callers sharing an address with it (behind one NAT)
keep theirs: it spends at most ``per_pair`` of the address's budget. Unknown names are counted
exactly as known ones, so a throttled answer says nothing of whether a name exists.

A check refused unmade because the hashing pool was full (``server.overloaded``, retryable)
spends nothing: a full pool says nothing of the secret, and charging it would turn the
gateway's own busy spell into ``throttled`` refusals of callers with the right secret, and of
everyone behind their address.

Kept in this instance's memory, at most ``max_keys`` budgets: the least lately touched (those
nearest to full again) go first. The same budgets, by the same names (``budgets``), hold for the
fleet in PostgreSQL (``SharedFailures``); these are what an instance holds alone while the
database is away.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from ipaddress import IPv6Network

from app.admission.source_address import parse_address


def address_key(address: str) -> str:
    """What an address is counted as: itself (an IPv4-mapped one as the IPv4 address it maps),
    or its /64 for IPv6."""
    parsed = parse_address(address)
    if parsed is None:
        return address
    if parsed.version == 4:
        return str(parsed)
    return str(IPv6Network((parsed, 64), strict=False))


class FailureThrottle:
    """Budgets of failed checks per address and name, name, and address."""

    def __init__(
        self,
        *,
        per_pair: int,
        per_name: int,
        per_address: int,
        window_s: float,
        max_keys: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(per_pair, per_name, per_address) < 1 or window_s <= 0:
            raise ValueError("failure budgets are at least 1 in a positive window")
        self._limits = (per_pair, per_name, per_address)
        self._window = window_s
        self._max = max_keys
        self._monotonic = monotonic
        # key -> (failures left, when last spent); insertion order is last-touched order.
        self._budgets: dict[str, tuple[float, float]] = {}

    @property
    def window_s(self) -> float:
        """The seconds over which a budget refills from empty."""
        return self._window

    def budgets(self, address: str, name: str) -> list[tuple[str, int]]:
        """The budgets a check from ``address`` for ``name`` spends, by name, with their size:
        ``pair|<address>|<name>``, ``name|<name>``, ``address|<address>`` (the address as
        ``address_key`` counts it, which holds no ``|``)."""
        at = address_key(address)
        keys = (f"pair|{at}|{name}", f"name|{name}", f"address|{at}")
        return list(zip(keys, self._limits, strict=True))

    def _left(self, key: str, limit: int, now: float) -> float:
        held = self._budgets.get(key)
        if held is None:
            return float(limit)
        left, then = held
        return min(float(limit), left + (now - then) * limit / self._window)

    def throttled(self, address: str, name: str) -> bool:
        """Whether a check from ``address`` for ``name`` must be refused without being made."""
        now = self._monotonic()
        return any(self._left(key, limit, now) < 1.0 for key, limit in self.budgets(address, name))

    def failed(self, address: str, name: str) -> None:
        """Count one failed check from ``address`` for ``name``."""
        self._spend(self.budgets(address, name))

    def learn(self, budgets: list[tuple[str, int]], left: Mapping[str, float]) -> None:
        """Take what the fleet says is ``left`` of ``budgets`` now (``SharedFailures``) where
        it refuses (less than one) and this instance holds more: a budget spent elsewhere is
        refused here from memory until it refills, not read again for each call.

        Only a refusal: what the fleet says is left counts the failures that checks in flight
        elsewhere have spent for their runs, and those that hold give theirs back. Kept here,
        such a failure would stay spent for this instance's callers until it refilled (a
        client whose right secret was being checked on another instance lost a typo here).
        The fleet's budgets are asked before every check anyway; this memory only spares a
        refused caller the reads."""
        now = self._monotonic()
        for key, limit in budgets:
            if key in left and left[key] < min(1.0, self._left(key, limit, now)):
                self._budgets.pop(key, None)
                self._budgets[key] = (max(0.0, left[key]), now)
        self._bound()

    def _spend(self, keys: list[tuple[str, int]]) -> None:
        now = self._monotonic()
        for key, limit in keys:
            left = self._left(key, limit, now)
            self._budgets.pop(key, None)  # put back last: the most lately touched
            self._budgets[key] = (max(0.0, left - 1.0), now)
        self._bound()

    def _bound(self) -> None:
        if len(self._budgets) > self._max:
            for key in list(self._budgets)[: len(self._budgets) - self._max * 3 // 4]:
                del self._budgets[key]
