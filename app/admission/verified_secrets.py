"""Secrets verified lately, so that argon2 runs once per principal and secret for a few minutes.

An entry is the principal (kind and id) and an HMAC, under a key this process makes when it
starts, of the stored hash and the presented secret: a rotated secret has a new stored hash and
never meets an old entry, and no secret is kept, nor anything a stolen memory dump could test
guesses against. Only a successful verification is remembered, so nothing a stranger sends
enters the cache. An entry expires ``ttl_s`` after it was last used: a secret in use is not
hashed again (its stored hash in the key keeps that right), one left unused is forgotten.

``forget(kind, ident)`` drops one principal's entries at once, ``forget()`` every entry: the
hooks for a change of a principal (disabled, rotated, its allowlist or limits changed), made on
this instance or announced by another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable

PER_PRINCIPAL = 8  # a principal presents one secret, a few around a rotation


class VerifiedSecrets:
    """Remembers successful verifications until they go unused for ``ttl_s`` seconds."""

    def __init__(
        self,
        *,
        ttl_s: float,
        max_principals: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._max = max_principals
        self._monotonic = monotonic
        # Keyed once; each digest copies it. hmac.digest(key, message, "sha256") fetched the
        # digest from OpenSSL by its name on every call: some 25 k instructions of a REST
        # inquiry's 965 k (callgrind, bench/RESULTS.md, session 22).
        self._keyed = hmac.new(os.urandom(32), digestmod=hashlib.sha256)
        self._entries: dict[tuple[str, int], dict[bytes, float]] = {}

    def _digest(self, stored_hash: str, secret: str) -> bytes:
        keyed = self._keyed.copy()
        keyed.update(stored_hash.encode() + b"\0" + secret.encode())
        return keyed.digest()

    def holds(self, kind: str, ident: int, stored_hash: str, secret: str) -> bool:
        """Whether ``secret`` was verified against ``stored_hash`` for this principal lately."""
        entries = self._entries.get((kind, ident))
        if not entries:
            return False
        digest, now = self._digest(stored_hash, secret), self._monotonic()
        expires = entries.get(digest)
        if expires is None or expires <= now:
            return False
        entries[digest] = now + self._ttl
        return True

    def remember(self, kind: str, ident: int, stored_hash: str, secret: str) -> None:
        """Note that ``secret`` matched ``stored_hash`` for this principal just now."""
        now = self._monotonic()
        key = (kind, ident)
        entries = self._entries.get(key)
        if entries is None:
            if len(self._entries) >= self._max:
                self._entries.clear()  # more principals than any deployment has: start over
            entries = self._entries[key] = {}
        if len(entries) >= PER_PRINCIPAL:
            for digest in [d for d, expires in entries.items() if expires <= now]:
                del entries[digest]
            if len(entries) >= PER_PRINCIPAL:
                entries.clear()
        entries[self._digest(stored_hash, secret)] = now + self._ttl

    def forget(self, kind: str | None = None, ident: int | None = None) -> None:
        """Drop the entries of one principal (``kind`` and ``ident``), else of every one."""
        if kind is None or ident is None:
            self._entries.clear()
        else:
            self._entries.pop((kind, ident), None)
