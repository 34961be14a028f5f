"""Partner and client admission: credential, then standing, then operation and rate, then nonce.

A caller is admitted only when its credential holds (SOAP: a WS-Security UsernameToken,
PasswordDigest or, where the partner may, PasswordText; REST: a bearer token), its partner or
client is active, and its source address is in its allowlist; then the operation (scope) must
be one it may call and its rate limit not exceeded. The source address is the TCP peer, or the
X-Forwarded-For client only when the peer is a configured trusted proxy (``source_address``).

Every failure up to the standing is the same ``client.unauthenticated`` in the same words, its
reason kept for the audit trail, the logs and the metrics only: an unknown username or token,
a wrong secret, PasswordText not allowed, a replayed nonce, too many failures lately, a disabled
principal, an address outside the allowlist. The credential is checked first and costs the
same whether the username exists or not, so neither the answer nor its time tells an outsider
whether a username exists, or which check failed. What can be judged from the token alone — its
shape (a username or token id longer than any principal may have, ``MAX_USERNAME`` and
``MAX_TOKEN_ID``, is malformed), and a Created time outside the window (``client.clock_skew``,
saying the gateway's time, which is the one failure told apart: it says nothing of the
username) — is judged before the username is looked up. A caller that passed all that and may
not call this operation learns it (``client.operation_not_allowed``,
``client.scope_not_allowed``), as it learns a rate limit.

The argon2 checks (PasswordText, bearer secrets) run through ``CredentialChecks``: remembered
when they succeed, throttled when they keep failing, and off the event loop. A PasswordDigest
nonce is taken once across the fleet and across restarts (``ReplayGuard``: this instance's
memory, then the database's ledger), and last: standing, operation and rate are judged first
(from memory, the rate through its leases), so only a call about to be admitted consumes a
nonce, and a call refused for any of them (a partner far over its rate, a disabled one) writes
no row in the ledger. A replay spends none of the rate: one this instance saw is refused
first, and the token of one the ledger refuses goes back (``RateLimiter.give_back``). A rate
limit holds for the fleet, not the instance: a bucket per principal shared in PostgreSQL,
spent through short local leases (``rate_limiter``).

Partners and clients are remembered for ``cache_ttl_s`` at most; a change of one, made on any
instance or by an operator's command, reaches this one within a moment through ``forget``
(called by the database's change notices, ``app.principals.change_feed``).
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from app.admission.credential_checks import CredentialChecks, Presented
from app.admission.credential_vault import SecretBox, digests_equal, password_digest
from app.admission.credentials import (
    BearerToken,
    Credentials,
    MalformedToken,
    PasswordType,
    UsernameToken,
)
from app.admission.known_principals import KnownPrincipals
from app.admission.rate_limiter import RateLimiter
from app.admission.records import Caller
from app.admission.replay_guard import ReplayGuard
from app.admission.source_address import SourceAddresses, parse_address
from app.domain.calendar import BANGKOK
from app.errors import (
    ClockSkew,
    OperationNotAllowed,
    RateLimited,
    ScopeNotAllowed,
    Unauthenticated,
)
from app.principals.records import (
    MAX_TOKEN_ID,
    MAX_USERNAME,
    ClientRecord,
    Network,
    PartnerRecord,
    Principal,
    PrincipalStore,
)

TOKEN_PREFIX = "ssogw"  # noqa: S105  (a prefix, not a secret)


def split_token(token: str) -> tuple[str, str] | None:
    """A bearer token ``ssogw_<id>_<secret>`` as (id, secret), or None if malformed (an id
    longer than any client's too)."""
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not token_id or not secret or len(token_id) > MAX_TOKEN_ID:
        return None
    return token_id, secret


def _parse_created(text: str) -> datetime | None:
    # Read as it came, never stripped (the adapter took XML's white space off): the digest
    # runs the nonce's bytes into this text, so a no-break space read away here would let a
    # captured token's nonce lose its last bytes to Created and pass as a nonce never seen.
    try:
        created = datetime.fromisoformat(text)
    except ValueError:
        return None
    # The contract's one rule for a dateTime without an offset, header and body alike: it is
    # Asia/Bangkok time (the counters' wall clocks), never UTC.
    return created if created.tzinfo is not None else created.replace(tzinfo=BANGKOK)


@dataclass(frozen=True, slots=True)
class _DigestParts:
    """What a PasswordDigest covers: the nonce decoded, the Created text as the token carried it."""

    nonce: bytes
    created: str


class Admission:
    """Decides, for every call, whether the caller is admitted, and as whom."""

    def __init__(
        self,
        *,
        store: PrincipalStore,
        box: SecretBox,
        replay: ReplayGuard,
        limiter: RateLimiter,
        trusted_proxies: Iterable[str | Network],
        wsse_window_s: float,
        cache_ttl_s: float,
        checks: CredentialChecks | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._box = box
        self._replay = replay
        self._limiter = limiter
        self._addresses = SourceAddresses(trusted_proxies)
        self._window = wsse_window_s
        self.checks = checks or CredentialChecks()
        self._clock = clock
        self._monotonic = monotonic
        # By username and token id; a name no principal has is answered without a statement.
        self._known = KnownPrincipals(store, ttl_s=cache_ttl_s, monotonic=monotonic)
        # Partner secrets opened from their sealed form (AES-GCM), by sealed bytes: a rotated
        # secret is sealed anew, so it never meets a stale entry.
        self._opened: dict[bytes, str] = {}
        # What an unknown username's digest is checked against: no one knows it.
        self._no_secret = base64.b64encode(os.urandom(24)).decode()

    # --- addresses -----------------------------------------------------------------------------
    def source_address(self, caller: Caller) -> str:
        """The caller's address: the peer, or the forwarded client when the peer is a proxy."""
        return self._addresses.of(caller)

    def is_trusted_proxy(self, peer: str) -> bool:
        """Whether the TCP peer ``peer`` is a configured trusted proxy, whose forwarded
        headers are believed (the one rule for X-Forwarded-For and the served WSDL alike)."""
        return self._addresses.is_trusted_proxy(peer)

    # --- admission -----------------------------------------------------------------------------
    async def admit(
        self, *, caller: Caller, credentials: Credentials, operation: str, scope: str
    ) -> Principal:
        """The admitted principal, or the refusal (an AccessRefused error)."""
        if isinstance(credentials, UsernameToken):
            return await self._admit_partner(caller, credentials, operation)
        if isinstance(credentials, BearerToken):
            return await self._admit_client(caller, credentials, scope)
        if isinstance(credentials, MalformedToken):
            raise Unauthenticated(credentials.problem, reason="malformed_token")
        raise Unauthenticated("Credentials are required.", reason="missing")

    async def _admit_partner(
        self, caller: Caller, token: UsernameToken, operation: str
    ) -> Principal:
        if len(token.username) > MAX_USERNAME:  # no partner's: never looked up nor remembered
            raise Unauthenticated(
                f"The username is longer than {MAX_USERNAME} characters.",
                reason="malformed_token",
            )
        digest = self._digest_parts(token) if token.password_type is PasswordType.DIGEST else None
        known = await self._known.partner(token.username)
        if digest is not None:
            partner = self._check_digest(known, token.password, digest)
        else:
            partner = await self._check_text(caller, known, token)
        self._check_standing(caller, partner, kind="partner")
        if operation not in partner.operations:
            raise OperationNotAllowed(
                f"Partner {partner.name} may not call {operation}.", operation=operation
            )
        key = ("partner", partner.id)
        if digest is not None and self._replay.seen(partner.id, digest.nonce):
            raise Unauthenticated(reason="replayed_nonce")  # known here: nothing spent on it
        shared = await self._check_rate(key, partner.rate_limit)
        if digest is not None:
            try:
                await self._claim_nonce(partner, digest, operation)
            except Unauthenticated:
                # A replay another instance saw: the rate token goes back, so replaying a
                # captured token, which needs no secret, cannot spend the partner's rate. (A
                # call refused for the ledger's absence keeps its spend: its resends are rated.)
                await self._limiter.give_back(key, partner.rate_limit, shared=shared)
                raise
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
        return _DigestParts(nonce, token.created)

    def _check_digest(
        self, partner: PartnerRecord | None, password: str, parts: _DigestParts
    ) -> PartnerRecord:
        # The same work for a username no partner has: a digest against a secret no one knows.
        secret = self._secret(partner.secret_enc) if partner is not None else self._no_secret
        expected = password_digest(nonce=parts.nonce, created=parts.created, password=secret)
        if not digests_equal(expected, password) or partner is None:
            raise Unauthenticated(reason="bad_password" if partner else "unknown_user")
        return partner

    async def _claim_nonce(
        self, partner: PartnerRecord, parts: _DigestParts, operation: str
    ) -> None:
        # Last, once all else admits the call: only a call about to be admitted consumes its
        # nonce (a forger cannot burn a partner's nonces), and a call refused for its standing,
        # operation or rate writes no row in the fleet's ledger.
        # Its decoded bytes: the same bytes in other Base64 (padding bits) are the same nonce.
        if not await self._replay.first_use(partner.id, parts.nonce, operation=operation):
            raise Unauthenticated(reason="replayed_nonce")

    async def _check_text(
        self, caller: Caller, partner: PartnerRecord | None, token: UsernameToken
    ) -> PartnerRecord:
        allowed = partner is not None and partner.password_text_ok
        holds = await self.checks.holds(
            Presented(
                kind="partner",
                name=token.username,
                address=self.source_address(caller),
                secret=token.password,
                ident=partner.id if partner is not None else None,
                stored_hash=partner.password_hash if partner is not None and allowed else None,
            )
        )
        if partner is None:
            raise Unauthenticated(reason="unknown_user")
        if not allowed:
            raise Unauthenticated(reason="password_text_not_allowed")
        if not holds:
            raise Unauthenticated(reason="bad_password")
        return partner

    async def _admit_client(self, caller: Caller, token: BearerToken, scope: str) -> Principal:
        parts = split_token(token.token)
        if parts is None:
            raise Unauthenticated("The bearer token is malformed.", reason="malformed_token")
        token_id, secret = parts
        client = await self._known.client(token_id)
        holds = await self.checks.holds(
            Presented(
                kind="client",
                name=token_id,
                address=self.source_address(caller),
                secret=secret,
                ident=client.id if client is not None else None,
                stored_hash=client.token_hash if client is not None else None,
            )
        )
        if client is None:
            raise Unauthenticated(reason="unknown_token")
        if not holds:
            raise Unauthenticated(reason="bad_token")
        self._check_standing(caller, client, kind="client")
        if scope not in client.scopes:
            raise ScopeNotAllowed(
                f"This operation needs the {scope!r} scope.",
                scope=scope,
                scopes=sorted(client.scopes),
            )
        await self._check_rate(("client", client.id), client.rate_limit)
        return Principal(client.id, client.name, "client", scopes=client.scopes)

    def _check_standing(
        self, caller: Caller, principal: PartnerRecord | ClientRecord, *, kind: str
    ) -> None:
        """Once the credential holds: the principal is active and calls from its allowlist."""
        if principal.status != "active":
            raise Unauthenticated(f"{principal.name} is disabled.", reason=f"{kind}_disabled")
        source = self.source_address(caller)
        address = parse_address(source)
        if address is None or not any(address in net for net in principal.cidrs):
            raise Unauthenticated(
                f"{source[:64]} is not in the allowlist of {principal.name}.",
                reason="ip_not_allowed",
            )

    async def _check_rate(self, key: tuple[str, int], rate: float) -> bool:
        """RateLimited when over; else whether the token came from the fleet's shared bucket."""
        wait, shared = await self._limiter.take_token(key, rate)
        if wait > 0:
            raise RateLimited(
                f"Rate limit of {rate:g} requests/s exceeded.",
                retry_after_s=max(0.001, round(wait, 3)),
            )
        return shared

    # --- caches --------------------------------------------------------------------------------
    def _secret(self, sealed: bytes) -> str:
        opened = self._opened.get(sealed)
        if opened is None:
            opened = self._box.open(sealed)
            if len(self._opened) > 10_000:
                self._opened.clear()
            self._opened[sealed] = opened
        return opened

    def forget(self, kind: str | None = None, ident: int | None = None) -> None:
        """Drop what this instance remembers of one principal (``kind`` "partner" or "client"
        and its id), else of every one: its record and its verified secrets. The hook for a
        change of a principal, made here or announced by another instance.

        The names known go too (``KnownPrincipals``): the change may be that principal's
        creation, or its token's rotation to a new id, and must not wait for the cache to
        expire."""
        self._known.forget(kind, ident)
        if kind is None or ident is None:
            self._opened.clear()
        self.checks.verified.forget(kind, ident)
