"""A primary that is not there: a pool to a port on this machine that nothing listens on."""

from __future__ import annotations

import asyncpg

from app.db.local_pair import free_port


async def unreachable_pool() -> asyncpg.Pool:
    """A pool whose every connection attempt is refused within a second; close it after.

    The port is ``free_port``'s, outside the kernel's ephemeral range: a connection to one
    inside it that nothing listens on may, rarely, be given that same port as its source and
    connect to itself."""
    return await asyncpg.create_pool(
        f"postgresql://ssogw@127.0.0.1:{free_port()}/ssogw", min_size=0, max_size=1, timeout=1
    )
