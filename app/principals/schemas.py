"""Request and answer bodies of partner and internal-client management."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from app.principals.registry import (
    MAX_RATE_LIMIT,
    MIN_RATE_LIMIT,
    IssuedClient,
    IssuedPartner,
)
from app.rest.wire import FlagIn, InModel, OutModel, plain_text

Name = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="A short code: letters, digits, '.', '_' and '-', at most 64.",
        examples=["cvs-demo"],
    ),
]
OperationName = Annotated[
    str,
    Field(
        json_schema_extra={
            "enum": [
                "InquireContribution",
                "ConfirmPayment",
                "CancelPayment",
                "GetPaymentStatus",
            ]
        },
        examples=["InquireContribution"],
    ),
]
ScopeName = Annotated[
    str, Field(json_schema_extra={"enum": ["counter", "admin", "audit"]}, examples=["counter"])
]
_PARTNER_EXAMPLE: dict[str, Any] = {
    "id": 3,
    "name": "cvs-demo",
    "displayName": "Convenience stores (demo)",
    "status": "active",
    "cidrs": ["203.0.113.0/24"],
    "operations": ["CancelPayment", "ConfirmPayment", "GetPaymentStatus", "InquireContribution"],
    "rateLimit": 50.0,
    "username": "cvs-demo",
    "passwordTextAllowed": False,
    "dataScope": ["national_id", "title", "first_name", "last_name", "section", "status"],
    "createdAt": "2024-06-01T03:00:00Z",
    "rotatedAt": None,
}
_CLIENT_EXAMPLE: dict[str, Any] = {
    "id": 7,
    "name": "sso-backoffice",
    "status": "active",
    "scopes": ["admin", "audit"],
    "tokenId": "k3J9xQ2a",
    "cidrs": ["10.20.0.0/16"],
    "rateLimit": 200.0,
    "createdAt": "2024-06-01T03:00:00Z",
    "rotatedAt": None,
}


class PartnerIn(InModel):
    """A partner network to admit: where it calls from, what it may call, how fast."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "cvs-demo",
                    "displayName": "Convenience stores (demo)",
                    "cidrs": ["203.0.113.0/24"],
                    "rateLimit": 50,
                }
            ]
        }
    )

    name: Name
    display_name: Annotated[str, plain_text(200)] | None = None
    cidrs: list[Annotated[str, Field(max_length=64)]] = Field(
        min_length=1, max_length=100, description="Source-address allowlist (CIDR blocks)."
    )
    operations: list[OperationName] | None = Field(
        default=None, max_length=4, description="Default: all four counter operations."
    )
    rate_limit: float = Field(
        default=50.0,
        ge=MIN_RATE_LIMIT,
        le=MAX_RATE_LIMIT,
        allow_inf_nan=False,
        description="Requests/s, for the whole fleet.",
    )
    password_text_allowed: FlagIn = Field(
        default=False, description="Accept WS-Security PasswordText besides PasswordDigest."
    )


class PartnerOut(OutModel):
    """A partner as registered (never its secret)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PARTNER_EXAMPLE]})

    id: int
    name: str
    display_name: str
    status: Annotated[str, Field(json_schema_extra={"enum": ["active", "disabled"]})]
    cidrs: list[str]
    operations: list[str]
    rate_limit: float
    username: str = Field(description="The WS-Security username.")
    password_text_allowed: bool
    data_scope: list[str]
    created_at: datetime
    rotated_at: datetime | None


class PartnerListOut(OutModel):
    """Every partner, by name."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"partners": [_PARTNER_EXAMPLE]}]})

    partners: list[PartnerOut]

    @classmethod
    def of(cls, views: list[dict[str, Any]]) -> PartnerListOut:
        return cls(partners=[PartnerOut.model_validate(v) for v in views])


class PartnerIssuedOut(OutModel):
    """A partner and its WS-Security credentials. The password is shown here only, once."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "partner": _PARTNER_EXAMPLE,
                    "username": "cvs-demo",
                    "password": "pX2r...shown-once",
                }
            ]
        }
    )

    partner: PartnerOut
    username: str
    password: str = Field(description="Shown once; store it in the partner's vault.")

    @classmethod
    def of(cls, issued: IssuedPartner) -> PartnerIssuedOut:
        return cls(
            partner=PartnerOut.model_validate(issued.partner),
            username=issued.username,
            password=issued.password,
        )


class ClientIn(InModel):
    """An internal application to admit, with the scopes it may use."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "sso-backoffice", "scopes": ["admin"], "cidrs": ["10.20.0.0/16"]}]
        }
    )

    name: Name
    scopes: list[ScopeName] = Field(
        min_length=1,
        max_length=3,
        description="Only a caller with the `audit` scope may give the `audit` scope.",
    )
    cidrs: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Source-address allowlist (CIDR blocks). Default: loopback and the private"
        " networks (10/8, 172.16/12, 192.168/16, fc00::/7), never the internet.",
    )
    rate_limit: float | None = Field(
        default=None,
        ge=MIN_RATE_LIMIT,
        le=MAX_RATE_LIMIT,
        allow_inf_nan=False,
        description="Requests/s, for the whole fleet. Default: 200.",
    )


class ClientOut(OutModel):
    """An internal client as registered (never its token)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CLIENT_EXAMPLE]})

    id: int
    name: str
    status: Annotated[str, Field(json_schema_extra={"enum": ["active", "disabled"]})]
    scopes: list[str]
    token_id: str = Field(description="The public half of the bearer token.")
    cidrs: list[str]
    rate_limit: float
    created_at: datetime
    rotated_at: datetime | None


class ClientListOut(OutModel):
    """Every internal client, by name."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"clients": [_CLIENT_EXAMPLE]}]})

    clients: list[ClientOut]

    @classmethod
    def of(cls, views: list[dict[str, Any]]) -> ClientListOut:
        return cls(clients=[ClientOut.model_validate(v) for v in views])


class ClientIssuedOut(OutModel):
    """A client and its bearer token. The token is shown here only, once."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"client": _CLIENT_EXAMPLE, "token": "ssogw_k3J9xQ2a_...shown-once"}]
        }
    )

    client: ClientOut
    token: str = Field(description="Shown once: `Authorization: Bearer <token>`.")

    @classmethod
    def of(cls, issued: IssuedClient) -> ClientIssuedOut:
        return cls(client=ClientOut.model_validate(issued.client), token=issued.token)
