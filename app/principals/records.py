"""Partners and internal clients as the service layer sees them, and the store it needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network
from typing import Protocol

Network = IPv4Network | IPv6Network


#: The longest WS-Security username and bearer token id a principal may have (characters): the
#: registry issues none longer (a username is the partner's name unless given, a token id is
#: 8 characters unless given), and admission refuses a longer one as malformed before any
#: look-up, so what it remembers of names no principal has is bounded in bytes too.
MAX_USERNAME = 64
MAX_TOKEN_ID = 64


@dataclass(frozen=True, slots=True)
class PartnerRecord:
    id: int
    name: str
    display_name: str
    status: str
    cidrs: tuple[Network, ...]
    operations: frozenset[str]
    rate_limit: float
    username: str
    password_hash: str
    secret_enc: bytes
    password_text_ok: bool
    data_scope: tuple[str, ...]
    created_at: datetime
    rotated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClientRecord:
    id: int
    name: str
    status: str
    scopes: frozenset[str]
    token_id: str
    token_hash: str
    cidrs: tuple[Network, ...]
    rate_limit: float
    created_at: datetime
    rotated_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewPartner:
    name: str
    display_name: str
    cidrs: tuple[Network, ...]
    operations: frozenset[str]
    rate_limit: float
    username: str
    password_hash: str
    secret_enc: bytes
    password_text_ok: bool


class PrincipalStore(Protocol):
    """Reads and writes partners and clients on the primary."""

    async def partner_by_username(self, username: str) -> PartnerRecord | None: ...

    async def principal_names(self) -> tuple[frozenset[str], frozenset[str]]:
        """Every partner's username and every client's token id, whatever their standing."""
        ...

    async def partner_by_name(self, name: str) -> PartnerRecord | None: ...

    async def partner_by_id(self, partner_id: int) -> PartnerRecord | None: ...

    async def list_partners(self) -> list[PartnerRecord]: ...

    async def insert_partner(self, new: NewPartner) -> PartnerRecord: ...

    async def set_partner_status(self, name: str, status: str) -> PartnerRecord | None: ...

    async def set_partner_secret(
        self, name: str, *, password_hash: str, secret_enc: bytes
    ) -> PartnerRecord | None: ...

    async def client_by_token_id(self, token_id: str) -> ClientRecord | None: ...

    async def client_by_name(self, name: str) -> ClientRecord | None: ...

    async def list_clients(self) -> list[ClientRecord]: ...

    async def insert_client(
        self,
        *,
        name: str,
        scopes: frozenset[str],
        token_id: str,
        token_hash: str,
        cidrs: tuple[Network, ...],
        rate_limit: float,
    ) -> ClientRecord: ...

    async def set_client_status(self, name: str, status: str) -> ClientRecord | None: ...

    async def set_client_token(
        self, name: str, *, token_id: str, token_hash: str
    ) -> ClientRecord | None: ...


@dataclass(frozen=True, slots=True)
class Principal:
    """An admitted partner or internal client."""

    id: int
    name: str
    kind: str  # "partner" or "client"
    operations: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
