"""Credentials as an adapter extracted them from a request, before they are checked."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PasswordType(StrEnum):
    DIGEST = "digest"  # WS-Security PasswordDigest: Base64(SHA-1(nonce + created + password))
    TEXT = "text"  # WS-Security PasswordText: only for a partner configured for it


@dataclass(frozen=True, slots=True)
class UsernameToken:
    """A WS-Security UsernameToken, its values exactly as they appeared in the header."""

    username: str
    password: str
    password_type: PasswordType
    nonce_b64: str | None = None
    created: str | None = None


@dataclass(frozen=True, slots=True)
class BearerToken:
    """An HTTP bearer token (REST)."""

    token: str


@dataclass(frozen=True, slots=True)
class MalformedToken:
    """A credential the adapter found but could not read: refused at admission as any other
    failure (reason ``malformed_token``), so the refusal is audited like them; ``problem`` is
    for the audit trail only."""

    problem: str


Credentials = UsernameToken | BearerToken | MalformedToken | None
