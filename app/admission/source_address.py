"""Where a call comes from: the TCP peer, or the client a trusted proxy forwarded.

One rule for both protocols. An adapter hands over every ``X-Forwarded-For`` header line of the
request, joined in order (``forwarded_for``): a proxy that writes a line of its own rather than
appending to the client's still puts the address it saw last. The list is read from the right:
the first hop that is not one of our trusted proxies is the client, and anything left of it may
have been written by the client itself. A hop that is not an address ends the walk at the peer
(the proxy's own address, which no partner's allowlist holds). From a peer that is not a trusted
proxy, forwarded headers are never believed.

An IPv4-mapped IPv6 address (``::ffff:198.51.100.7``, how a listener on ``::`` reports an IPv4
peer) is read as the IPv4 address it maps, everywhere: the allowlists, the trusted proxies, the
failure budgets and the audit trail all see ``198.51.100.7``, whichever family the listener has.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from app.admission.records import Caller

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
_MAPPED = IPv6Network("::ffff:0:0/96")  # IPv4-mapped IPv6 addresses


def network(text: str) -> Network:
    """A CIDR block as written (host bits dropped); ValueError when it is not one. A block of
    IPv4-mapped addresses (``::ffff:198.51.100.0/120``) is the IPv4 block it maps, as a peer
    ``::ffff:a.b.c.d`` is its IPv4 address (``parse_address``): the two forms
    name the same hosts and must match the same callers."""
    block = ip_network(text.strip(), strict=False)
    if isinstance(block, IPv6Network) and block.subnet_of(_MAPPED):
        first = int(block.network_address) & 0xFFFFFFFF
        return IPv4Network((first, block.prefixlen - 96))
    return block


def forwarded_for(lines: Iterable[str]) -> str | None:
    """Every X-Forwarded-For header line of a request as one list, in their order; None when
    there is none."""
    joined = ", ".join(line.strip() for line in lines if line.strip())
    return joined or None


@lru_cache(maxsize=4096)  # a few addresses make every call: parse each once
def parse_address(text: str) -> Address | None:
    """``text`` as an IP address, or None when it is not one. An IPv4-mapped IPv6 address is
    the IPv4 address it maps: a listener on ``::`` reports every IPv4 peer as
    ``::ffff:a.b.c.d``, which must meet the IPv4 allowlists, proxies and budgets as itself."""
    try:
        address = ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class SourceAddresses:
    """Reads a caller's source address, believing forwarded headers from trusted proxies only."""

    def __init__(self, trusted_proxies: Iterable[str | Network]) -> None:
        self._proxies = tuple(network(str(p)) for p in trusted_proxies)

    def of(self, caller: Caller) -> str:
        """The caller's address: the peer, or the forwarded client when the peer is a proxy
        (as ``parse_address`` reads it: an IPv4-mapped peer as its IPv4 address)."""
        peer = parse_address(caller.source_ip)
        if peer is None:
            return caller.source_ip
        if not caller.forwarded_for or not self._is_proxy(peer):
            return str(peer)
        for hop in reversed(caller.forwarded_for.split(",")):
            address = parse_address(hop)
            if address is None:
                return str(peer)
            if not self._is_proxy(address):
                return str(address)
        return str(peer)

    def is_trusted_proxy(self, peer: str) -> bool:
        """Whether the TCP peer ``peer`` is a configured trusted proxy, whose forwarded headers
        are believed (the one rule for X-Forwarded-For and the served WSDL alike)."""
        address = parse_address(peer)
        return address is not None and self._is_proxy(address)

    def _is_proxy(self, address: Address) -> bool:
        return any(address in net for net in self._proxies)
