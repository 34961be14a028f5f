"""Partners and internal clients in the primary database."""

from __future__ import annotations

from collections.abc import Callable
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
