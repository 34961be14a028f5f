"""Where a call comes from: the TCP peer, or the client a trusted proxy forwarded.

One rule for both protocols. An adapter hands over every ``X-Forwarded-For`` header line of the
request, joined in order (``forwarded_for``): a proxy that writes a line of its own rather than
appending to the client's still puts the address it saw last. The list is read from the right:
the first hop that is not one of our trusted proxies is the client, and anything left of it may
have been written by the client itself. A hop that is not an address ends the walk at the peer
(the proxy's own address, which no partner's allowlist holds). From a peer that is not a trusted
proxy, forwarded headers are never believed.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from app.admission.records import Caller

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def forwarded_for(lines: Iterable[str]) -> str | None:
    """Every X-Forwarded-For header line of a request as one list, in their order; None when
    there is none."""
    joined = ", ".join(line.strip() for line in lines if line.strip())
    return joined or None


@lru_cache(maxsize=4096)  # a few addresses make every call: parse each once
def parse_address(text: str) -> Address | None:
    """``text`` as an IP address, or None when it is not one."""
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


class SourceAddresses:
    """Reads a caller's source address, believing forwarded headers from trusted proxies only."""

    def __init__(self, trusted_proxies: Iterable[str | Network]) -> None:
        self._proxies = tuple(
            ip_network(p, strict=False) if isinstance(p, str) else p for p in trusted_proxies
        )

    def of(self, caller: Caller) -> str:
        """The caller's address: the peer, or the forwarded client when the peer is a proxy."""
        peer = parse_address(caller.source_ip)
        if peer is None or not caller.forwarded_for or not self._is_proxy(peer):
            return caller.source_ip
        for hop in reversed(caller.forwarded_for.split(",")):
            address = parse_address(hop)
            if address is None:
                return caller.source_ip
            if not self._is_proxy(address):
                return str(address)
        return caller.source_ip

    def is_trusted_proxy(self, peer: str) -> bool:
        """Whether the TCP peer ``peer`` is a configured trusted proxy, whose forwarded headers
        are believed (the one rule for X-Forwarded-For and the served WSDL alike)."""
        address = parse_address(peer)
        return address is not None and self._is_proxy(address)

    def _is_proxy(self, address: Address) -> bool:
        return any(address in net for net in self._proxies)
