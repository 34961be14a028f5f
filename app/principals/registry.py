"""Managing partners and internal clients: create, list, disable, rotate. Secrets shown once.

An internal client registered without an allowlist may call from loopback and the private
networks only (``INTERNAL_NETWORKS``: RFC 1918, IPv6 unique-local), never from the internet:
SSO's applications run inside its own networks, and one that calls from elsewhere is given its
addresses explicitly. Secrets are hashed with argon2id off the event loop (``SecretHashing``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.admission.credential_vault import SecretBox, new_secret
from app.admission.secret_hashing import SecretHashing
from app.admission.service import TOKEN_PREFIX
from app.admission.source_address import network
from app.counter.records import Operation
from app.errors import InvalidInput, NotFound
from app.principals.records import (
    MAX_TOKEN_ID,
    MAX_USERNAME,
    ClientRecord,
    Network,
    NewPartner,
    PartnerRecord,
    PrincipalStore,
)

SCOPES = frozenset({"counter", "admin", "audit"})
ALL_OPERATIONS = frozenset(op.value for op in Operation)
#: Where an internal client registered without an allowlist may call from.
INTERNAL_NETWORKS = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
)
CLIENT_RATE_LIMIT = 200.0  # requests/s of a client registered without one
#: The bounds of a principal's rate limit, requests/s (the REST schema's too). The highest is far
#: above any real partner's, and leased in amounts the shared buckets' statement can hold; the
#: lowest, a call every 1,000 s, is one the ``real`` column holds (a smaller one would be stored
#: as 0 and fail its CHECK).
MIN_RATE_LIMIT = 0.001
MAX_RATE_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class IssuedPartner:
    partner: dict[str, Any]
    username: str
    password: str  # shown once


@dataclass(frozen=True, slots=True)
class IssuedClient:
    client: dict[str, Any]
    token: str  # shown once


def partner_view(p: PartnerRecord) -> dict[str, Any]:
    """What may be shown about a partner: never its secret."""
    return {
        "id": p.id,
        "name": p.name,
        "displayName": p.display_name,
        "status": p.status,
        "cidrs": [str(c) for c in p.cidrs],
        "operations": sorted(p.operations),
        "rateLimit": p.rate_limit,
        "username": p.username,
        "passwordTextAllowed": p.password_text_ok,
        "dataScope": list(p.data_scope),
        "createdAt": p.created_at.isoformat(),
        "rotatedAt": p.rotated_at.isoformat() if p.rotated_at else None,
    }


def client_view(c: ClientRecord) -> dict[str, Any]:
    """What may be shown about a client: never its token."""
    return {
        "id": c.id,
        "name": c.name,
        "status": c.status,
        "scopes": sorted(c.scopes),
        "tokenId": c.token_id,
        "cidrs": [str(n) for n in c.cidrs],
        "rateLimit": c.rate_limit,
        "createdAt": c.created_at.isoformat(),
        "rotatedAt": c.rotated_at.isoformat() if c.rotated_at else None,
    }


def _token(token_id: str, secret: str) -> str:
    return f"{TOKEN_PREFIX}_{token_id}_{secret}"


def _networks(cidrs: Iterable[str], *, principal: str) -> tuple[Network, ...]:
    networks = []
    for text in cidrs:
        try:
            networks.append(network(text))
        except ValueError as exc:
            raise InvalidInput(f"{text!r} is not a CIDR block.", field="cidr") from exc
    if not networks:
        raise InvalidInput(f"A {principal} needs at least one allowed CIDR block.", field="cidr")
    return tuple(networks)


def _rate_limit(rate_limit: float) -> float:
    if not MIN_RATE_LIMIT <= rate_limit <= MAX_RATE_LIMIT:  # NaN and infinity too
        raise InvalidInput(
            f"The rate limit must be {MIN_RATE_LIMIT:g} to {MAX_RATE_LIMIT:,} requests/s.",
            field="rateLimit",
            minimum=MIN_RATE_LIMIT,
            maximum=MAX_RATE_LIMIT,
        )
    return rate_limit


class Registry:
    """Partner and client management for the CLI and the REST admin endpoints."""

    def __init__(
        self, *, store: PrincipalStore, box: SecretBox, hashing: SecretHashing | None = None
    ) -> None:
        self._store = store
        self._box = box
        self._hashing = hashing or SecretHashing()

    async def add_partner(
        self,
        *,
        name: str,
        cidrs: Iterable[str],
        operations: Iterable[str] | None = None,
        rate_limit: float = 50.0,
        display_name: str | None = None,
        username: str | None = None,
        password: str | None = None,
        password_text_ok: bool = False,
    ) -> IssuedPartner:
        """Register a partner; the generated (or given) password is returned once."""
        name = name.strip()
        if not name or len(name) > 64:
            raise InvalidInput("A partner name is 1 to 64 characters.", field="name")
        username = username or name
        if len(username) > MAX_USERNAME:
            raise InvalidInput(
                f"A username is at most {MAX_USERNAME} characters.", field="username"
            )
        networks = _networks(cidrs, principal="partner")
        ops = frozenset(operations) if operations is not None else ALL_OPERATIONS
        unknown = ops - ALL_OPERATIONS
        if unknown:
            raise InvalidInput(
                f"Unknown operations: {', '.join(sorted(unknown))}.",
                field="operations",
                allowed=sorted(ALL_OPERATIONS),
            )
        secret = password or new_secret()
        partner = await self._store.insert_partner(
            NewPartner(
                name=name,
                display_name=display_name or name,
                cidrs=networks,
                operations=ops,
                rate_limit=_rate_limit(rate_limit),
                username=username,
                password_hash=await self._hashing.hash(secret),
                secret_enc=self._box.seal(secret),
                password_text_ok=password_text_ok,
            )
        )
        return IssuedPartner(partner_view(partner), partner.username, secret)

    async def list_partners(self) -> list[dict[str, Any]]:
        return [partner_view(p) for p in await self._store.list_partners()]

    async def set_partner_status(self, name: str, *, active: bool) -> dict[str, Any]:
        partner = await self._store.set_partner_status(name, "active" if active else "disabled")
        if partner is None:
            raise NotFound(f"No partner named {name!r}.", name=name)
        return partner_view(partner)

    async def rotate_partner(self, name: str, *, password: str | None = None) -> IssuedPartner:
        """A new password for the partner; the old one stops working at once."""
        secret = password or new_secret()
        partner = await self._store.set_partner_secret(
            name, password_hash=await self._hashing.hash(secret), secret_enc=self._box.seal(secret)
        )
        if partner is None:
            raise NotFound(f"No partner named {name!r}.", name=name)
        return IssuedPartner(partner_view(partner), partner.username, secret)

    async def add_client(
        self,
        *,
        name: str,
        scopes: Iterable[str],
        token: str | None = None,
        cidrs: Iterable[str] | None = None,
        rate_limit: float | None = None,
    ) -> IssuedClient:
        """Register an internal client; its bearer token is returned once. Without ``cidrs`` it
        may call from ``INTERNAL_NETWORKS``; without ``rate_limit``, ``CLIENT_RATE_LIMIT``."""
        name = name.strip()
        if not name or len(name) > 64 or not name.isprintable():
            raise InvalidInput("A client name is 1 to 64 printable characters.", field="name")
        wanted = frozenset(s.strip() for s in scopes if s.strip())
        if not wanted or wanted - SCOPES:
            raise InvalidInput(
                f"Scopes must be among {', '.join(sorted(SCOPES))}.",
                field="scopes",
                allowed=sorted(SCOPES),
            )
        networks = _networks(INTERNAL_NETWORKS if cidrs is None else cidrs, principal="client")
        limit = _rate_limit(CLIENT_RATE_LIMIT if rate_limit is None else rate_limit)
        token_id, secret = self._split_or_new(token)
        client = await self._store.insert_client(
            name=name,
            scopes=wanted,
            token_id=token_id,
            token_hash=await self._hashing.hash(secret),
            cidrs=networks,
            rate_limit=limit,
        )
        return IssuedClient(client_view(client), _token(token_id, secret))

    async def list_clients(self) -> list[dict[str, Any]]:
        return [client_view(c) for c in await self._store.list_clients()]

    async def client_scopes(self, name: str) -> frozenset[str]:
        """The scopes of the client named ``name`` (``NotFound`` if there is none)."""
        client = await self._store.client_by_name(name)
        if client is None:
            raise NotFound(f"No client named {name!r}.", name=name)
        return client.scopes

    async def set_client_status(self, name: str, *, active: bool) -> dict[str, Any]:
        client = await self._store.set_client_status(name, "active" if active else "disabled")
        if client is None:
            raise NotFound(f"No client named {name!r}.", name=name)
        return client_view(client)

    async def rotate_client(self, name: str) -> IssuedClient:
        token_id, secret = self._split_or_new(None)
        client = await self._store.set_client_token(
            name, token_id=token_id, token_hash=await self._hashing.hash(secret)
        )
        if client is None:
            raise NotFound(f"No client named {name!r}.", name=name)
        return IssuedClient(client_view(client), _token(token_id, secret))

    @staticmethod
    def _split_or_new(token: str | None) -> tuple[str, str]:
        if token is None:
            return new_secret(6).replace("_", "x").replace("-", "y"), new_secret(24)
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret or len(token_id) > MAX_TOKEN_ID:
            raise InvalidInput(
                f"A token is ssogw_<id>_<secret>, its id at most {MAX_TOKEN_ID} characters.",
                field="token",
            )
        return token_id, secret
