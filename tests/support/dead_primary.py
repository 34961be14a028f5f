"""A primary that is not there: a pool to a port on this machine that nothing listens on."""

from __future__ import annotations

import socket

import asyncpg


def closed_port() -> int:
    """A port nothing listens on (bound for a moment, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def unreachable_pool() -> asyncpg.Pool:
    """A pool whose every connection attempt is refused within a second; close it after."""
    return await asyncpg.create_pool(
        f"postgresql://ssogw@127.0.0.1:{closed_port()}/ssogw", min_size=0, max_size=1, timeout=1
    )
