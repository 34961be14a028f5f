"""Partners and internal clients in the primary database."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from app.admission.source_address import network
from app.db.failures import translated
from app.db.replica_router import ReplicaRouter
from app.errors import AlreadyExists, StoreUnavailable
from app.principals.records import ClientRecord, Network, NewPartner, PartnerRecord

_PARTNER_COLUMNS = (
    "id, name, display_name, status, cidrs::text[] AS cidrs, operations, rate_limit, username,"
    " password_hash, secret_enc, password_text_ok, data_scope, created_at, rotated_at"
)
_CLIENT_COLUMNS = (
    "id, name, status, scopes, token_id, token_hash, cidrs::text[] AS cidrs, rate_limit,"
    " created_at, rotated_at"
)


def _partner(row: asyncpg.Record | None) -> PartnerRecord | None:
    if row is None:
        return None
    return PartnerRecord(
        id=row["id"],
        name=row["name"],
        display_name=row["display_name"],
        status=row["status"],
        cidrs=tuple(network(c) for c in row["cidrs"]),
        operations=frozenset(row["operations"]),
        rate_limit=float(row["rate_limit"]),
        username=row["username"],
        password_hash=row["password_hash"],
        secret_enc=bytes(row["secret_enc"]),
        password_text_ok=row["password_text_ok"],
        data_scope=tuple(row["data_scope"]),
        created_at=row["created_at"],
        rotated_at=row["rotated_at"],
    )


def _client(row: asyncpg.Record | None) -> ClientRecord | None:
    if row is None:
        return None
    return ClientRecord(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        scopes=frozenset(row["scopes"]),
        token_id=row["token_id"],
        token_hash=row["token_hash"],
        cidrs=tuple(network(c) for c in row["cidrs"]),
        rate_limit=float(row["rate_limit"]),
        created_at=row["created_at"],
        rotated_at=row["rotated_at"],
    )


class PrincipalRepository:
    """The PrincipalStore of the service layer, on the primary pool.

    With ``replicas``, the two look-ups admission makes (a partner by username, a client by
    token id) are read from a replica while the primary is away (the router's probe says so,
    or the primary fails the read), so admission outlives its cache during a failover. A
    replica is at most ``SSOGW_REPLICA_MAX_LAG_S`` behind: a change of a principal made just
    before the primary went away may be seen that much later.
    """

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        replicas: Callable[[], ReplicaRouter] | None = None,
    ) -> None:
        self._pool = pool
        self._replicas = replicas

    async def _one(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with translated("primary"):
            row: asyncpg.Record | None = await self._pool().fetchrow(sql, *args)
            return row

    async def _lookup(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """``_one`` for admission's look-ups: from a replica when the primary is away."""
        if self._replicas is None:
            return await self._one(sql, *args)
        router = self._replicas()
        if router.primary_up:
            try:
                return await self._one(sql, *args)
            except StoreUnavailable:
                pass  # gone since the last probe: a replica answers instead

        async def read(conn: asyncpg.Connection) -> asyncpg.Record | None:
            row: asyncpg.Record | None = await conn.fetchrow(sql, *args)
            return row

        row, _ = await router.run_read(read)
        return row

    async def principal_names(self) -> tuple[frozenset[str], frozenset[str]]:
        """Every partner's username and every client's token id, in one statement: from a
        replica when the primary is away, as the records are."""
        row = await self._lookup(
            "SELECT ARRAY(SELECT username FROM partners) AS usernames,"
            " ARRAY(SELECT token_id FROM api_clients) AS token_ids"
        )
        assert row is not None
        return frozenset(row["usernames"]), frozenset(row["token_ids"])

    async def _all(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with translated("primary"):
            rows: list[asyncpg.Record] = await self._pool().fetch(sql, *args)
            return rows

    # --- partners ------------------------------------------------------------------------------
    async def partner_by_username(self, username: str) -> PartnerRecord | None:
        sql = f"SELECT {_PARTNER_COLUMNS} FROM partners WHERE username = $1"
        return _partner(await self._lookup(sql, username))

    async def partner_by_name(self, name: str) -> PartnerRecord | None:
        return _partner(
            await self._one(f"SELECT {_PARTNER_COLUMNS} FROM partners WHERE name = $1", name)
        )

    async def partner_by_id(self, partner_id: int) -> PartnerRecord | None:
        return _partner(
            await self._one(f"SELECT {_PARTNER_COLUMNS} FROM partners WHERE id = $1", partner_id)
        )

    async def list_partners(self) -> list[PartnerRecord]:
        rows = await self._all(f"SELECT {_PARTNER_COLUMNS} FROM partners ORDER BY name")
        return [p for p in map(_partner, rows) if p is not None]

    async def insert_partner(self, new: NewPartner) -> PartnerRecord:
        try:
            row = await self._one(
                "INSERT INTO partners (name, display_name, cidrs, operations, rate_limit,"
                " username, password_hash, secret_enc, password_text_ok)"
                " VALUES ($1, $2, $3::text[]::cidr[], $4, $5, $6, $7, $8, $9)"
                f" RETURNING {_PARTNER_COLUMNS}",
                new.name,
                new.display_name,
                [str(c) for c in new.cidrs],
                sorted(new.operations),
                new.rate_limit,
                new.username,
                new.password_hash,
                new.secret_enc,
                new.password_text_ok,
            )
        except asyncpg.UniqueViolationError as exc:
            raise AlreadyExists(
                f"a partner named {new.name!r} already exists", name=new.name
            ) from exc
        partner = _partner(row)
        assert partner is not None
        return partner

    async def set_partner_status(self, name: str, status: str) -> PartnerRecord | None:
        return _partner(
            await self._one(
                f"UPDATE partners SET status = $2 WHERE name = $1 RETURNING {_PARTNER_COLUMNS}",
                name,
                status,
            )
        )

    async def set_partner_secret(
        self, name: str, *, password_hash: str, secret_enc: bytes
    ) -> PartnerRecord | None:
        return _partner(
            await self._one(
                "UPDATE partners SET password_hash = $2, secret_enc = $3, rotated_at = now()"
                f" WHERE name = $1 RETURNING {_PARTNER_COLUMNS}",
                name,
                password_hash,
                secret_enc,
            )
        )

    # --- internal clients ----------------------------------------------------------------------
    async def client_by_token_id(self, token_id: str) -> ClientRecord | None:
        return _client(
            await self._lookup(
                f"SELECT {_CLIENT_COLUMNS} FROM api_clients WHERE token_id = $1", token_id
            )
        )

    async def client_by_name(self, name: str) -> ClientRecord | None:
        return _client(
            await self._one(f"SELECT {_CLIENT_COLUMNS} FROM api_clients WHERE name = $1", name)
        )

    async def list_clients(self) -> list[ClientRecord]:
        rows = await self._all(f"SELECT {_CLIENT_COLUMNS} FROM api_clients ORDER BY name")
        return [c for c in map(_client, rows) if c is not None]

    async def insert_client(
        self,
        *,
        name: str,
        scopes: frozenset[str],
        token_id: str,
        token_hash: str,
        cidrs: tuple[Network, ...],
        rate_limit: float,
    ) -> ClientRecord:
        try:
            row = await self._one(
                "INSERT INTO api_clients (name, scopes, token_id, token_hash, cidrs, rate_limit)"
                f" VALUES ($1, $2, $3, $4, $5::text[]::cidr[], $6) RETURNING {_CLIENT_COLUMNS}",
                name,
                sorted(scopes),
                token_id,
                token_hash,
                [str(c) for c in cidrs],
                rate_limit,
            )
        except asyncpg.UniqueViolationError as exc:
            raise AlreadyExists(f"a client named {name!r} already exists", name=name) from exc
        client = _client(row)
        assert client is not None
        return client

    async def set_client_status(self, name: str, status: str) -> ClientRecord | None:
        return _client(
            await self._one(
                f"UPDATE api_clients SET status = $2 WHERE name = $1 RETURNING {_CLIENT_COLUMNS}",
                name,
                status,
            )
        )

    async def set_client_token(
        self, name: str, *, token_id: str, token_hash: str
    ) -> ClientRecord | None:
        return _client(
            await self._one(
                "UPDATE api_clients SET token_id = $2, token_hash = $3, rotated_at = now()"
                f" WHERE name = $1 RETURNING {_CLIENT_COLUMNS}",
                name,
                token_id,
                token_hash,
            )
        )


# A refill more than a second (a full bucket's worth) ahead of the database's clock was written
# before the clock was stepped back: its age is unknown, and the bucket is taken as full, not as
# empty until the clock catches up. Less ahead, it is a statement that began before the last one
# (it waited for the row) or a small step: no refill until then.
_REFILL_AHEAD = "b.refilled_at > statement_timestamp() + interval '1 second'"
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
