"""How PostgreSQL planned a prepared statement, counted over the sessions of some pools."""

from __future__ import annotations

import asyncpg


async def plan_counts(pools: list[asyncpg.Pool], fragment: str) -> dict[str, int]:
    """How many times the sessions of ``pools`` ran the statements holding ``fragment`` on a
    generic plan and on one made for the call (``pg_prepared_statements``, each session's
    own). A connection another task holds meanwhile is not counted: callers that need every
    call counted ask again."""
    plans = {"generic": 0, "custom": 0}
    for pool in pools:
        held = [await pool.acquire() for _ in range(pool.get_size())]
        try:
            for conn in held:
                for found in await conn.fetch(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                    " WHERE strpos(statement, $1) > 0"
                    " AND strpos(statement, 'pg_prepared_statements') = 0",  # not this one
                    fragment,
                ):
                    plans["generic"] += found["generic_plans"]
                    plans["custom"] += found["custom_plans"]
        finally:
            for conn in held:
                await pool.release(conn)
    return plans
