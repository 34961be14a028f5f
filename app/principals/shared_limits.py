"""Admission's state shared by the fleet, on the primary: the rate limits' token buckets
(``rate_buckets``, migration 0013) and the credential checks' failure budgets
(``failure_budgets``, 0021). Both are UNLOGGED, read and written by the database's clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from app.db.failures import translated

# A refill more than a second (a full bucket's worth) ahead of the database's clock now (not of
# this statement's start: a take begun later may have got the row first while this one waited)
# was written before the clock was stepped back: its age is unknown, and the bucket is taken as
# full, not as empty until the clock catches up. Less ahead, a small step: no refill until then.
_REFILL_AHEAD = "b.refilled_at > clock_timestamp() + interval '1 second'"
# The bucket's tokens now: refilled by the time elapsed at the database's clock (never back),
# plus what the instance hands back, at most the capacity. $3 rate, $4 capacity, $6 tokens
# handed back.
_AVAILABLE = (
    f"LEAST($4::float8, b.tokens + $6::int + CASE WHEN {_REFILL_AHEAD} THEN $4::float8"
    " ELSE $3::float8 * GREATEST(0::float8,"
    " EXTRACT(epoch FROM statement_timestamp() - b.refilled_at)::float8) END)"
)
_TAKE_LEASE = f"""
INSERT INTO rate_buckets AS b (kind, principal_id, tokens, taken, refilled_at)
VALUES ($1, $2, $4::float8 - LEAST($5::int, floor($4::float8)),
        LEAST($5::int, floor($4::float8))::int, statement_timestamp())
ON CONFLICT (kind, principal_id) DO UPDATE SET
    taken = LEAST($5::int, floor({_AVAILABLE}))::int,
    tokens = {_AVAILABLE} - LEAST($5::int, floor({_AVAILABLE})),
    refilled_at = CASE WHEN {_REFILL_AHEAD} THEN statement_timestamp()
                       ELSE GREATEST(b.refilled_at, statement_timestamp()) END
RETURNING taken, tokens
"""


class RateBucketRepository:
    """The shared token buckets of the fleet's rate limits (``rate_buckets``), on the primary:
    the RateBuckets of ``app.admission.rate_limiter``."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def take(
        self, kind: str, ident: int, *, rate: float, capacity: float, want: int, returned: int
    ) -> tuple[int, float]:
        """Refill the bucket, put back ``returned`` tokens and take up to ``want`` whole ones,
        in one statement: (tokens taken, tokens left in the bucket)."""
        async with translated("primary"):
            row = await self._pool().fetchrow(
                _TAKE_LEASE, kind, ident, rate, capacity, want, returned
            )
        assert row is not None
        return int(row["taken"]), float(row["tokens"])


# A spent_at more than a window ahead of the database's clock was written before the clock
# went back: its age is unknown, and it is taken as a window old (full again), not as spent
# until the clock catches up. Less ahead, it is a spend that waited for the row (its statement
# began first) or a small step: no refill until then.
_AHEAD = "b.spent_at > statement_timestamp() + make_interval(secs => $3::float8)"
# What a budget has now: what it had, refilled for the time since it was spent, at most its
# size.
_REFILLED = (
    "LEAST({cap}, b.failures_left + CASE WHEN " + _AHEAD + " THEN {cap} ELSE GREATEST(0,"
    " extract(epoch FROM statement_timestamp() - b.spent_at)::float8) * {cap} / $3::float8 END)"
)
# When a budget was last spent, written with a spend: never back (see _AHEAD).
_SPENT_AT = (
    "CASE WHEN " + _AHEAD + " THEN statement_timestamp()"
    " ELSE GREATEST(b.spent_at, statement_timestamp()) END"
)
_LEFT = f"""
SELECT l.key, {_REFILLED.format(cap="l.cap")} AS left
FROM unnest($1::text[], $2::float8[]) AS l(key, cap)
JOIN failure_budgets b ON b.key = l.key
"""
# Each budget's row locked, in the order of the keys (so that two spends of overlapping budgets
# lock their rows alike), and what it has left: a budget never spent is a full row.
_LOCK_FAILURES = f"""
INSERT INTO failure_budgets AS b (key, capacity, failures_left, spent_at)
SELECT l.key, l.cap, l.cap, statement_timestamp()
FROM unnest($1::text[], $2::float8[]) AS l(key, cap)
ORDER BY l.key
ON CONFLICT (key) DO UPDATE SET capacity = EXCLUDED.capacity
RETURNING key, {_REFILLED.format(cap="b.capacity")} AS left
"""
_SPEND_FAILURE = f"""
UPDATE failure_budgets AS b SET
    failures_left = GREATEST(0, {_REFILLED.format(cap="l.cap")} - 1),
    spent_at = {_SPENT_AT}
FROM unnest($1::text[], $2::float8[]) AS l(key, cap)
WHERE b.key = l.key
"""
# One failure given back to each budget: refilled, one more, at most its size.
_GIVE_BACK_FAILURE = f"""
INSERT INTO failure_budgets AS b (key, capacity, failures_left, spent_at)
SELECT l.key, l.cap, l.cap, statement_timestamp()
FROM unnest($1::text[], $2::float8[]) AS l(key, cap)
ORDER BY l.key
ON CONFLICT (key) DO UPDATE SET
    capacity = EXCLUDED.capacity,
    failures_left = LEAST(EXCLUDED.capacity, {_REFILLED.format(cap="EXCLUDED.capacity")} + 1),
    spent_at = {_SPENT_AT}
"""
# At most PRUNE_BATCH rows, so that a flood's backlog is deleted a batch at a time within the
# store's timeout, never by one DELETE that outlasts it (cancelled, so deleting nothing). Rows
# another check holds are left for the next prune: waiting for them would hold this check's
# answer (and could deadlock with a spend, which locks its rows in the order of keys).
PRUNE_BATCH = 2000
_PRUNE_FAILURES = f"""
DELETE FROM failure_budgets WHERE key IN (
    SELECT key FROM failure_budgets
    WHERE spent_at < statement_timestamp() - make_interval(secs => $1)
       OR spent_at > statement_timestamp() + make_interval(secs => $1)
    LIMIT {PRUNE_BATCH}
    FOR UPDATE SKIP LOCKED
)
"""


class FailureBudgetRepository:
    """The fleet's budgets of failed credential checks (``failure_budgets``), on the primary:
    the FailureBudgets of ``app.admission.shared_failures``."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def left(self, budgets: Sequence[tuple[str, int]], window_s: float) -> dict[str, float]:
        """What is left now of each of ``budgets`` (name, size) spent lately, by name."""
        keys, sizes = _columns(budgets)
        async with translated("primary"):
            rows = await self._pool().fetch(_LEFT, keys, sizes, window_s)
        return {row["key"]: float(row["left"]) for row in rows}

    async def spend(self, budgets: Sequence[tuple[str, int]], window_s: float) -> dict[str, float]:
        """Refill each of ``budgets`` since it was last spent and, when every one has a failure
        left, spend one of each, in one transaction holding their rows: what each has left
        after (below 0 for one that had none: then none is spent)."""
        keys, sizes = _columns(budgets)
        async with translated("primary"), self._pool().acquire() as conn, conn.transaction():
            rows = await conn.fetch(_LOCK_FAILURES, keys, sizes, window_s)
            left = {row["key"]: float(row["left"]) - 1 for row in rows}
            if min(left.values(), default=-1.0) >= 0:
                await conn.execute(_SPEND_FAILURE, keys, sizes, window_s)
        return left

    async def give_back(self, budgets: Sequence[tuple[str, int]], window_s: float) -> None:
        """Give one failure back to each of ``budgets`` (refilled, at most its size)."""
        keys, sizes = _columns(budgets)
        async with translated("primary"):
            await self._pool().execute(_GIVE_BACK_FAILURE, keys, sizes, window_s)

    async def prune(self, window_s: float) -> bool:
        """Delete up to ``PRUNE_BATCH`` of the budgets unspent for ``window_s`` (full again; not
        those a check holds): whether a whole batch was, so more may be left."""
        async with translated("primary"):
            status = await self._pool().execute(_PRUNE_FAILURES, window_s)
        return int(status.rpartition(" ")[2]) >= PRUNE_BATCH


def _columns(budgets: Sequence[tuple[str, int]]) -> tuple[list[str], list[float]]:
    return [key for key, _ in budgets], [float(size) for _, size in budgets]
