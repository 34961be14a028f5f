"""Which connections the server keeps: caps on open connections, per source address and in
all, and the count and log of every connection cut for the others' sake.

A connection over a cap is closed as soon as it is accepted, before a byte is read: one address
(an IPv6 address by its /64, an IPv4-mapped one as its IPv4 address) may hold
``max_per_address`` connections, the server ``max_connections``. Trusted proxies are exempt
from the per-address count and cap (every partner behind the ingress shares its address; the
ingress limits each client itself; and the hosts of an IPv6 proxy's /64 keep theirs) but not
from the global one. The timeouts that cut slow clients are the protocol's (``guarded_http``);
it tells this guard about each cut.

Every cut is counted in ``ssogw_http_connections_cut_total{reason}``. It is logged once per
address per ``log_interval_s``: the first cut of an address logs a line, later ones within
the interval are counted, and the next line says how many there were. The line names the
address and the reason, never anything the client sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from typing import Protocol

log = logging.getLogger(__name__)

#: Addresses remembered for the log's interval; past this, the oldest are forgotten.
_LOGGED_ADDRESSES = 10_000


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Caps and timeouts of the server's connections (settings ``SSOGW_HTTP_*``)."""

    max_connections: int = 4096
    max_per_address: int = 256
    header_timeout_s: float = 10.0  # from the connection, or its first byte, to the headers' end
    body_timeout_s: float = 10.0  # a body's grace after the headers ...
    body_min_rate: int = 1024  # ... then it must keep up this many bytes a second
    max_head_bytes: int = 64 * 1024  # the request line and headers together
    log_interval_s: float = 60.0


class ConnectionEvents(Protocol):
    def connection_cut(self, reason: str) -> None:
        """A connection was cut (or refused) for ``reason``."""
        ...

    def connections_now(self, count: int) -> None:
        """``count`` connections are open now."""
        ...


def address_key(address: str) -> str:
    """What an address is counted as: itself, or its /64 for IPv6; an IPv4-mapped address (a
    listener on ``::`` reports every IPv4 peer so) as the IPv4 address it maps, not as the one
    /64 all IPv4 peers share."""
    if ":" not in address:
        return address
    try:
        parsed = IPv6Address(address)
    except ValueError:
        return address
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(IPv6Network((parsed, 64), strict=False))


class ConnectionGuard:
    """Counts open connections by source address, and counts and logs the cut ones."""

    def __init__(
        self,
        limits: ConnectionLimits,
        *,
        exempt: Callable[[str], bool] = lambda _address: False,
        events: ConnectionEvents | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._exempt = exempt
        self._events = events
        self._clock = clock
        self._open = 0
        self._by_address: dict[str, int] = {}
        self._logged: dict[str, tuple[float, int]] = {}  # key -> (last line, cuts since)

    @property
    def open_connections(self) -> int:
        """Connections kept and not yet closed."""
        return self._open

    def admit(self, address: str) -> str | None:
        """Count a new connection from ``address``: None when it is kept, else the reason it
        is refused (``global_cap``, ``address_cap``). A kept one is ``release``d at its end."""
        if self._open >= self.limits.max_connections:
            return "global_cap"
        if not self._exempt(address):
            # A proxy's connections are not counted at all: counted, they would fill the
            # count of its IPv6 /64 and cut every other host of it.
            key = address_key(address)
            held = self._by_address.get(key, 0)
            if held >= self.limits.max_per_address:
                return "address_cap"
            self._by_address[key] = held + 1
        self._open += 1
        if self._events is not None:
            self._events.connections_now(self._open)
        return None

    def release(self, address: str) -> None:
        """A kept connection from ``address`` has closed."""
        if not self._exempt(address):
            key = address_key(address)
            held = self._by_address.get(key, 0) - 1
            if held > 0:
                self._by_address[key] = held
            else:
                self._by_address.pop(key, None)
        self._open -= 1
        if self._events is not None:
            self._events.connections_now(self._open)

    def cut(self, address: str, reason: str) -> None:
        """Count the cut of a connection from ``address``, and log it unless this address's
        line of the interval was written already."""
        if self._events is not None:
            self._events.connection_cut(reason)
        key = address_key(address)
        now = self._clock()
        last, since = self._logged.get(key, (float("-inf"), 0))
        if now - last < self.limits.log_interval_s:
            self._logged[key] = (last, since + 1)
            return
        if len(self._logged) >= _LOGGED_ADDRESSES:
            self._forget(now)
        self._logged[key] = (now, 0)
        log.warning(
            "connection from %s cut (%s); %d more cut since this address's last line",
            address,
            reason,
            since,
            extra={"reason": reason, "address": address, "cutSince": since},
        )

    def _forget(self, now: float) -> None:
        stale = [k for k, (t, _) in self._logged.items() if now - t >= self.limits.log_interval_s]
        for k in stale:
            del self._logged[k]
        if len(self._logged) >= _LOGGED_ADDRESSES:  # all within the interval: start afresh
            self._logged.clear()
