"""Building WS-Security UsernameTokens the way a partner's SOAP stack does."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

from app.admission.credential_vault import password_digest
from app.admission.credentials import PasswordType, UsernameToken


def digest_token(
    username: str,
    password: str,
    *,
    skew: timedelta = timedelta(0),
    nonce: bytes | None = None,
    created: str | None = None,
) -> UsernameToken:
    """A PasswordDigest token with a fresh nonce, created now (+ ``skew``) unless ``created``
    gives the Created text."""
    nonce = nonce if nonce is not None else os.urandom(16)
    created = created or (datetime.now(UTC) + skew).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return UsernameToken(
        username=username,
        password=password_digest(nonce=nonce, created=created, password=password),
        password_type=PasswordType.DIGEST,
        nonce_b64=base64.b64encode(nonce).decode(),
        created=created,
    )
