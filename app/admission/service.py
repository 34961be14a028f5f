"""Partner and client admission: source address, credential, operation, rate — in that order.

A partner is admitted only when its source address is in its CIDR allowlist AND its credential
is valid; then the operation must be one it may call and its rate limit not exceeded. The
source address is the TCP peer, or the X-Forwarded-For address only when the peer is a
configured trusted proxy. Each refusal is a distinct error of the vocabulary, with one
exception: every failure of the credential itself (unknown username, wrong password or digest,
PasswordText not allowed, replayed nonce, unknown or wrong bearer token) is the same
``client.unauthenticated`` in the same words, its ``reason`` kept for the audit trail only, so
that no answer tells whether a username exists. What can be judged from the token alone — its
shape, and a WS-Security Created time outside the window (``client.clock_skew``, saying the
gateway's time) — is judged before the username is looked up, for the same reason.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address

from app.admission.credential_vault import (
    SecretBox,
    digests_equal,
    fingerprint,
    password_digest,
    verify_secret,
)
from app.admission.credentials import BearerToken, Credentials, PasswordType, UsernameToken
from app.admission.nonce_cache import NonceCache
from app.admission.rate_limiter import RateLimiter
from app.admission.records import Caller
from app.domain.calendar import BANGKOK
from app.errors import (
    ClockSkew,
    IpNotAllowed,
    OperationNotAllowed,
    PartnerDisabled,
    RateLimited,
    ScopeNotAllowed,
    Unauthenticated,
)
from app.principals.records import ClientRecord, Network, PartnerRecord, Principal, PrincipalStore

TOKEN_PREFIX = "ssogw"  # noqa: S105  (a prefix, not a secret)


def split_token(token: str) -> tuple[str, str] | None:
    """A bearer token ``ssogw_<id>_<secret>`` as (id, secret), or None if malformed."""
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not token_id or not secret:
        return None
    return token_id, secret


def _parse_created(text: str) -> datetime | None:
    try:
        created = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    # The contract's one rule for a dateTime without an offset, header and body alike: it is
    # Asia/Bangkok time (the counters' wall clocks), never UTC.
    return created if created.tzinfo is not None else created.replace(tzinfo=BANGKOK)


@dataclass(frozen=True, slots=True)
class _DigestParts:
    """What a PasswordDigest covers, as the token carried it (the nonce also decoded)."""

    nonce: bytes
    nonce_b64: str
    created: str


class Admission:
    """Decides, for every call, whether the caller is admitted, and as whom."""

    def __init__(
        self,
        *,
        store: PrincipalStore,
        box: SecretBox,
        nonces: NonceCache,
        limiter: RateLimiter,
        trusted_proxies: tuple[Network, ...],
        wsse_window_s: float,
        cache_ttl_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._box = box
        self._nonces = nonces
        self._limiter = limiter
        self._proxies = trusted_proxies
        self._window = wsse_window_s
        self._ttl = cache_ttl_s
        self._clock = clock
        self._monotonic = monotonic
        self._partners: dict[str, tuple[float, PartnerRecord | None]] = {}
        self._clients: dict[str, tuple[float, ClientRecord | None]] = {}
        self._verified: dict[tuple[str, int, bytes], float] = {}
        # Partner secrets opened from their sealed form (AES-GCM), by sealed bytes: a rotated
        # secret is sealed anew, so it never meets a stale entry.
        self._opened: dict[bytes, str] = {}

    # --- addresses -----------------------------------------------------------------------------
    def source_address(self, caller: Caller) -> str:
        """The caller's address: the peer, or the forwarded client when the peer is a proxy."""
        peer = _address(caller.source_ip)
        if peer is None or not caller.forwarded_for or not self._from_proxy(peer):
            return caller.source_ip
        # Walk X-Forwarded-For from the right: the first address that is not one of our own
        # proxies is the client (anything left of it may have been written by the client).
        for hop in reversed([h.strip() for h in caller.forwarded_for.split(",")]):
            address = _address(hop)
            if address is None:
                return caller.source_ip
            if not self._from_proxy(address):
                return str(address)
        return caller.source_ip

    def is_trusted_proxy(self, peer: str) -> bool:
        """Whether the TCP peer ``peer`` is a configured trusted proxy, whose forwarded
        headers are believed (the one rule for X-Forwarded-For and the served WSDL alike)."""
        address = _address(peer)
        return address is not None and self._from_proxy(address)

    def _from_proxy(self, address: IPv4Address | IPv6Address) -> bool:
        return any(address in net for net in self._proxies)

    # --- admission -----------------------------------------------------------------------------
    async def admit(
        self, *, caller: Caller, credentials: Credentials, operation: str, scope: str
    ) -> Principal:
        """The admitted principal, or the refusal (an AccessRefused error)."""
        if isinstance(credentials, UsernameToken):
            return await self._admit_partner(caller, credentials, operation)
        if isinstance(credentials, BearerToken):
            return await self._admit_client(caller, credentials, scope)
        raise Unauthenticated("Credentials are required.", reason="missing")

    async def _admit_partner(
        self, caller: Caller, token: UsernameToken, operation: str
    ) -> Principal:
        digest = self._digest_parts(token) if token.password_type is PasswordType.DIGEST else None
        partner = await self._partner(token.username)
        if partner is None:
            raise Unauthenticated(reason="unknown_user")
        if partner.status != "active":
            raise PartnerDisabled(f"Partner {partner.name} is disabled.", partner=partner.name)
        self._check_address(caller, partner.cidrs, partner.name)
        if digest is not None:
            self._check_digest(partner, token.password, digest)
        elif not partner.password_text_ok:
            raise Unauthenticated(reason="password_text_not_allowed")
        elif not self._verified_secret(
            "partner", partner.id, partner.password_hash, token.password
        ):
            raise Unauthenticated(reason="bad_password")
        if operation not in partner.operations:
            raise OperationNotAllowed(
                f"Partner {partner.name} may not call {operation}.", operation=operation
            )
        self._check_rate(("partner", partner.id), partner.rate_limit)
        return Principal(partner.id, partner.name, "partner", partner.operations)

    def _digest_parts(self, token: UsernameToken) -> _DigestParts:
        """A PasswordDigest token's nonce and Created, once their shape and the time are checked."""
        if not token.nonce_b64 or not token.created:
            raise Unauthenticated(
                "PasswordDigest needs a Nonce and a Created time.",
                reason="missing_nonce_or_created",
            )
        created = _parse_created(token.created)
        if created is None:
            raise Unauthenticated("Created is not a valid dateTime.", reason="bad_created")
        now = self._clock()
        skew = (created - now).total_seconds()
        if abs(skew) > self._window:
            direction = "ahead of" if skew > 0 else "behind"
            raise ClockSkew(
                f"Created is {abs(skew):.0f} s {direction} the gateway's clock; at most"
                f" {self._window:.0f} s either way is allowed: set the terminal's clock.",
                gatewayTime=now,
                allowedSkewS=round(self._window),
                skewS=round(skew),
            )
        try:
            nonce = base64.b64decode(token.nonce_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Unauthenticated("Nonce is not valid Base64.", reason="bad_nonce") from exc
        return _DigestParts(nonce, token.nonce_b64, token.created)

    def _check_digest(self, partner: PartnerRecord, password: str, parts: _DigestParts) -> None:
        expected = password_digest(
            nonce=parts.nonce, created=parts.created, password=self._secret(partner.secret_enc)
        )
        if not digests_equal(expected, password):
            raise Unauthenticated(reason="bad_password")
        # Only a correct digest consumes the nonce, so a forger cannot burn a partner's nonces.
        if not self._nonces.first_use(partner.username, parts.nonce_b64):
            raise Unauthenticated(reason="replayed_nonce")

    async def _admit_client(self, caller: Caller, token: BearerToken, scope: str) -> Principal:
        parts = split_token(token.token)
        if parts is None:
            raise Unauthenticated("The bearer token is malformed.", reason="malformed_token")
        token_id, secret = parts
        client = await self._client(token_id)
        if client is None or not self._verified_secret(
            "client", client.id, client.token_hash, secret
        ):
            raise Unauthenticated(reason="bad_token")
        if client.status != "active":
            raise PartnerDisabled(f"Client {client.name} is disabled.", client=client.name)
        self._check_address(caller, client.cidrs, client.name)
        if scope not in client.scopes:
            raise ScopeNotAllowed(
                f"This operation needs the {scope!r} scope.",
                scope=scope,
                scopes=sorted(client.scopes),
            )
        self._check_rate(("client", client.id), client.rate_limit)
        return Principal(client.id, client.name, "client", scopes=client.scopes)

    def _check_address(self, caller: Caller, cidrs: tuple[Network, ...], name: str) -> None:
        address = _address(self.source_address(caller))
        if address is None or not any(address in net for net in cidrs):
            raise IpNotAllowed(f"The source address is not allowed for {name}.")

    def _check_rate(self, key: tuple[str, int], rate: float) -> None:
        wait = self._limiter.take(key, rate)
        if wait > 0:
            raise RateLimited(
                f"Rate limit of {rate:g} requests/s exceeded.", retry_after_s=round(wait, 3)
            )

    # --- caches --------------------------------------------------------------------------------
    def _secret(self, sealed: bytes) -> str:
        opened = self._opened.get(sealed)
        if opened is None:
            opened = self._box.open(sealed)
            if len(self._opened) > 10_000:
                self._opened.clear()
            self._opened[sealed] = opened
        return opened

    def _verified_secret(self, kind: str, ident: int, stored_hash: str, secret: str) -> bool:
        # argon2 is slow on purpose; remember a successful verification for the cache TTL.
        key = (kind, ident, fingerprint(stored_hash + "\0" + secret))
        now = self._monotonic()
        if self._verified.get(key, 0.0) > now:
            return True
        if not verify_secret(stored_hash, secret):
            return False
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[key] = now + self._ttl
        return True

    async def _partner(self, username: str) -> PartnerRecord | None:
        now = self._monotonic()
        cached = self._partners.get(username)
        if cached is not None and cached[0] > now:
            return cached[1]
        partner = await self._store.partner_by_username(username)
        if len(self._partners) > 10_000:
            self._partners.clear()
        self._partners[username] = (now + self._ttl, partner)
        return partner

    async def _client(self, token_id: str) -> ClientRecord | None:
        now = self._monotonic()
        cached = self._clients.get(token_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        client = await self._store.client_by_token_id(token_id)
        if len(self._clients) > 10_000:
            self._clients.clear()
        self._clients[token_id] = (now + self._ttl, client)
        return client

    def forget(self) -> None:
        """Drop cached principals (after this instance changed one)."""
        self._partners.clear()
        self._clients.clear()
        self._verified.clear()
        self._opened.clear()


@lru_cache(maxsize=4096)  # a few addresses make every call: parse each once
def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text.strip())
    except ValueError:
        return None
