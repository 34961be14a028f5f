"""The partners' used WS-Security nonces in the primary database (table ``wsse_nonces``,
migration 0012): the ``NonceLedger`` of ``app.admission.replay_guard``.

A batch of claims is one statement: the rows that went in are the nonces used for the first
time; one that was already there (ON CONFLICT DO NOTHING) is a replay. A row expires by the
database's clock, ``keep_s`` after its first use: long enough that an instance whose own clock
lags, within the margin ``keep_s`` allows for, still finds it (``ReplayGuard`` says how long
that is). The pool it runs on commits asynchronously (``synchronous_commit = off``: the replay
guard's docstring says what that costs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from app.db.failures import translated

CLAIM = """
INSERT INTO wsse_nonces (partner_id, nonce_key, expires_at)
SELECT partner_id, nonce_key, now() + make_interval(secs => $3)
  FROM unnest($1::integer[], $2::bytea[]) AS claimed(partner_id, nonce_key)
 ORDER BY partner_id, nonce_key  -- one order for every instance: concurrent batches never deadlock
ON CONFLICT DO NOTHING
RETURNING partner_id, nonce_key
"""
# A bounded delete by the expiry index, so a backlog never makes one long transaction.
PRUNE = """
DELETE FROM wsse_nonces WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM wsse_nonces WHERE expires_at < now() ORDER BY expires_at LIMIT $1))
"""


class PgNonceLedger:
    """Used nonces on ``pool()`` (the primary, asynchronously committed)."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def claim(
        self, keys: Sequence[tuple[int, bytes]], *, keep_s: float
    ) -> set[tuple[int, bytes]]:
        """Record ``keys`` (distinct) for ``keep_s`` seconds; the ones not recorded before."""
        async with translated("primary"):
            rows = await self._pool().fetch(
                CLAIM, [p for p, _ in keys], [k for _, k in keys], keep_s
            )
        return {(row["partner_id"], bytes(row["nonce_key"])) for row in rows}

    async def prune(self, *, limit: int) -> int:
        """Delete up to ``limit`` expired nonces; how many went."""
        async with translated("primary"):
            status: str = await self._pool().execute(PRUNE, limit)
        return int(status.rpartition(" ")[2] or 0)
