"""Secrets at rest: argon2id hashes for verification, AES-GCM for what must be read back.

WS-Security PasswordDigest proves knowledge of the password without sending it, so the gateway
needs the partner's secret in clear to check it: that copy is encrypted with a key derived from
``SSOGW_SECRET_KEY``. Everything that only needs verifying (REST tokens, PasswordText) is an
argon2id hash, made and checked off the event loop (``secret_hashing``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
_NONCE_BYTES = 12
_VERSION = b"\x01"


def new_secret(nbytes: int = 24) -> str:
    """A fresh random secret, URL-safe text."""
    return secrets.token_urlsafe(nbytes)


def verify_secret(stored_hash: str, secret: str, *, hasher: PasswordHasher = _HASHER) -> bool:
    """Whether ``secret`` matches ``stored_hash`` (constant time inside argon2; the parameters
    are the hash's own, whatever ``hasher``'s)."""
    try:
        return hasher.verify(stored_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class SecretBox:
    """Encrypts and decrypts short secrets with AES-256-GCM under a key from settings."""

    def __init__(self, key_material: str) -> None:
        self._aead = AESGCM(hashlib.sha256(b"ssogw-secret-box:" + key_material.encode()).digest())

    def seal(self, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), _VERSION)

    def open(self, sealed: bytes) -> str:
        if sealed[:1] != _VERSION:
            raise ValueError("unknown secret-box version")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        return self._aead.decrypt(nonce, body, _VERSION).decode()


def password_digest(*, nonce: bytes, created: str, password: str) -> str:
    """WS-Security UsernameToken PasswordDigest: Base64(SHA-1(nonce + created + password))."""
    raw = nonce + created.encode() + password.encode()
    return base64.b64encode(hashlib.sha1(raw, usedforsecurity=False).digest()).decode()


def digests_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(a.encode(), b.encode())
