"""Partner admission: every failure of admission is the one client.unauthenticated, its reason
in its own audit record; the credential is judged first, so the standing (disabled, address) is
told apart from a wrong password in the audit trail only, never to the caller."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime, timedelta, tzinfo

import pytest

from app.admission.credentials import BearerToken, PasswordType, UsernameToken
from app.admission.records import Caller, Protocol
from app.counter.records import InquiryRequest
from app.domain.calendar import BANGKOK
from app.errors import (
    ClockSkew,
    OperationNotAllowed,
    RateLimited,
    ServiceError,
    Unauthenticated,
)
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.support.refusals import recorded
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db
KNOWN_ID = "3100600445635"


async def inquire(
    gw: Gateway,
    credentials,
    *,
    ip: str = "127.0.0.1",  # type: ignore[no-untyped-def]
    forwarded: str | None = None,
) -> str:
    return (await inquire_why(gw, credentials, ip=ip, forwarded=forwarded))[0]


async def inquire_why(
    gw: Gateway,
    credentials,
    *,
    ip: str = "127.0.0.1",  # type: ignore[no-untyped-def]
    forwarded: str | None = None,
) -> tuple[str, str | None]:
    """The call's outcome and the reason its audit record keeps (None for a success)."""
    rid = uuid.uuid4().hex
    try:
        await gw.counter.inquire(
            caller=Caller(Protocol.SOAP, ip, rid, forwarded_for=forwarded),
            credentials=credentials,
            request=InquiryRequest(KNOWN_ID),
        )
    except ServiceError as exc:
        outcome = exc.code
    else:
        outcome = "ok"
    rows = await recorded(
        gw,
        lambda: gw.db.primary.fetch(
            "SELECT outcome, detail FROM audit_log WHERE request_id = $1", rid
        ),
    )
    assert [r["outcome"] for r in rows] == [outcome], "exactly one audit record per call"
    return outcome, (rows[0]["detail"] or {}).get("reason")


UNAUTHENTICATED = Unauthenticated.code


async def test_wrong_password_is_unauthenticated(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    token = digest_token(partner.username, "wrong")
    assert await inquire_why(gateway, token) == (UNAUTHENTICATED, "bad_password")


async def test_unknown_user_and_missing_credentials(gateway: Gateway) -> None:
    unknown = digest_token(f"nobody-{uuid.uuid4().hex[:8]}", "x")
    assert await inquire_why(gateway, unknown) == (UNAUTHENTICATED, "unknown_user")
    assert await inquire_why(gateway, None) == (UNAUTHENTICATED, "missing")


async def test_a_replayed_nonce_is_refused(gateway: Gateway, partner: PartnerCredentials) -> None:
    nonce = os.urandom(16)
    token = digest_token(partner.username, partner.password, nonce=nonce)
    assert await inquire(gateway, token) in ("ok", "client.person_not_found")
    assert await inquire(gateway, token) == Unauthenticated.code


@pytest.mark.parametrize("skew", [timedelta(minutes=6), timedelta(minutes=-6)])
async def test_a_stale_or_future_created_is_refused(
    gateway: Gateway, partner: PartnerCredentials, skew: timedelta
) -> None:
    token = digest_token(partner.username, partner.password, skew=skew)
    assert await inquire(gateway, token) == ClockSkew.code
    # Judged before the username is looked up, so it tells nothing of who exists.
    assert await inquire(gateway, digest_token("nobody", "x", skew=skew)) == ClockSkew.code


@pytest.mark.parametrize(
    ("zone", "admitted"),
    [
        (BANGKOK, True),  # a counter's wall clock, written without an offset
        (UTC, False),  # UTC written without an offset: read as Bangkok, 7 hours off
    ],
)
async def test_a_created_without_an_offset_is_bangkok_time(
    gateway: Gateway, partner: PartnerCredentials, zone: tzinfo, admitted: bool
) -> None:
    created = datetime.now(zone).strftime("%Y-%m-%dT%H:%M:%S")
    token = digest_token(partner.username, partner.password, created=created)
    outcome = await inquire(gateway, token)
    if admitted:
        assert outcome in ("ok", "client.person_not_found")
    else:
        assert outcome == ClockSkew.code
        with pytest.raises(ClockSkew) as refused:  # 7 hours off: the terminal's clock is wrong
            await gateway.counter.inquire(
                caller=Caller(Protocol.SOAP, "127.0.0.1", uuid.uuid4().hex),
                credentials=digest_token(partner.username, partner.password, created=created),
                request=InquiryRequest(KNOWN_ID),
            )
        assert refused.value.reason == "clock_skew"


async def test_a_wrong_source_address_is_refused(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    token = digest_token(partner.username, partner.password)
    assert await inquire_why(gateway, token, ip="192.0.2.10") == (UNAUTHENTICATED, "ip_not_allowed")


async def test_the_credential_is_judged_before_the_address_and_the_standing(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    """A stranger outside the allowlist, or trying a disabled partner, learns nothing more
    than with any wrong password: the trail says its password was wrong, not the rest."""
    wrong = digest_token(partner.username, "wrong")
    assert await inquire_why(gateway, wrong, ip="192.0.2.10") == (UNAUTHENTICATED, "bad_password")
    issued = await gateway.registry.add_partner(
        name=f"d-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"]
    )
    await gateway.registry.set_partner_status(issued.partner["name"], active=False)
    gateway.admission.forget()
    wrong = digest_token(issued.username, "wrong")
    assert await inquire_why(gateway, wrong) == (UNAUTHENTICATED, "bad_password")


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    gateway: Gateway,
) -> None:
    # A partner allowed only from 192.0.2.0/24 calls from loopback claiming to be 192.0.2.7.
    issued = await gateway.registry.add_partner(
        name=f"x-{uuid.uuid4().hex[:8]}", cidrs=["192.0.2.0/24"]
    )
    token = digest_token(issued.username, issued.password)
    outcome = await inquire_why(gateway, token, forwarded="192.0.2.7")
    assert outcome == (UNAUTHENTICATED, "ip_not_allowed")


async def test_a_disabled_partner_is_refused(gateway: Gateway) -> None:
    issued = await gateway.registry.add_partner(
        name=f"d-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"]
    )
    await gateway.registry.set_partner_status(issued.partner["name"], active=False)
    gateway.admission.forget()
    token = digest_token(issued.username, issued.password)
    assert await inquire_why(gateway, token) == (UNAUTHENTICATED, "partner_disabled")


async def test_an_operation_not_allowed_is_refused(gateway: Gateway) -> None:
    issued = await gateway.registry.add_partner(
        name=f"s-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"], operations=["GetPaymentStatus"]
    )
    assert (
        await inquire(gateway, digest_token(issued.username, issued.password))
        == OperationNotAllowed.code
    )


async def test_password_text_only_when_configured(gateway: Gateway) -> None:
    plain = await gateway.registry.add_partner(
        name=f"t-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"]
    )
    text = UsernameToken(plain.username, plain.password, PasswordType.TEXT)
    assert await inquire_why(gateway, text) == (UNAUTHENTICATED, "password_text_not_allowed")
    allowed = await gateway.registry.add_partner(
        name=f"u-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"], password_text_ok=True
    )
    text = UsernameToken(allowed.username, allowed.password, PasswordType.TEXT)
    assert await inquire(gateway, text) != Unauthenticated.code


async def test_the_rate_limit_refuses_the_excess(gateway: Gateway) -> None:
    issued = await gateway.registry.add_partner(
        name=f"r-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"], rate_limit=2
    )
    outcomes = [
        await inquire(gateway, digest_token(issued.username, issued.password)) for _ in range(4)
    ]
    assert outcomes.count(RateLimited.code) >= 1


async def test_a_bearer_token_needs_the_counter_scope(gateway: Gateway) -> None:
    auditor = await gateway.registry.add_client(name=f"a-{uuid.uuid4().hex[:8]}", scopes=["audit"])
    assert await inquire(gateway, BearerToken(auditor.token)) == "client.scope_not_allowed"
    unknown = BearerToken("ssogw_nope_nope")
    assert await inquire_why(gateway, unknown) == (UNAUTHENTICATED, "unknown_token")
    forged = BearerToken(auditor.token.rpartition("_")[0] + "_" + uuid.uuid4().hex)
    assert await inquire_why(gateway, forged) == (UNAUTHENTICATED, "bad_token")


def test_nonce_is_base64_in_tokens() -> None:
    token = digest_token("u", "p")
    assert token.nonce_b64 is not None and len(base64.b64decode(token.nonce_b64)) == 16
