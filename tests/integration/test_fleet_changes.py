"""Changes of partners and clients reach every instance within 2 s (the database announces
them; each instance listens), not when its cache expires — even after its listening
connection was cut.

Secrets here are hashed with cheap argon2 parameters: a refused bearer token is checked
before its standing, and what is timed is the change reaching the instance, not argon2 on a
busy machine."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from app.admission.credential_vault import SecretBox
from app.admission.credentials import BearerToken
from app.admission.secret_hashing import SecretHashing
from app.main import Gateway
from app.principals.registry import Registry
from app.principals.repository import PrincipalRepository
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.fleet import instance, seconds_until, verdict
from tests.support.wsse import digest_token

pytestmark = [pytest.mark.db, pytest.mark.serial]  # each waits against PROMPT_S
PROMPT_S = 2.0
CHEAP = {"memory_kib": 8192, "time_cost": 1, "parallelism": 1}


@pytest.fixture(scope="module")
async def other(settings: Settings, clock: PinnedClock) -> AsyncIterator[Gateway]:
    """A second instance on the same database; it remembers principals for a minute."""
    cheap = {f"argon2_{key}": value for key, value in CHEAP.items()}
    async with instance(settings, clock, "changes-b", token_cache_s=60.0, **cheap) as gw:
        yield gw


@pytest.fixture(scope="module")
def registry(gateway: Gateway, settings: Settings) -> Registry:
    """The first instance's registry, hashing cheaply."""
    return Registry(
        store=PrincipalRepository(lambda: gateway.db.primary),
        box=SecretBox(settings.secret_key),
        hashing=SecretHashing(**CHEAP),
    )


async def new_client(registry: Registry) -> tuple[str, BearerToken]:
    name = f"fleet-{uuid.uuid4().hex[:8]}"
    issued = await registry.add_client(name=name, scopes=["admin"])
    return name, BearerToken(issued.token)


def as_admin(gw: Gateway, token: BearerToken):  # type: ignore[no-untyped-def]
    return lambda: verdict(gw, token, operation="ListPartners", scope="admin")


def as_partner(  # type: ignore[no-untyped-def]
    gw: Gateway, username: str, password: str, operation: str = "InquireContribution"
):
    return lambda: verdict(gw, digest_token(username, password), operation=operation)


async def test_a_client_disabled_on_one_instance_is_refused_by_another_within_2_s(
    registry: Registry, other: Gateway
) -> None:
    name, token = await new_client(registry)
    assert await as_admin(other, token)() == "ok"  # remembered there from now on
    await registry.set_client_status(name, active=False)
    assert await seconds_until(as_admin(other, token), "client_disabled") < PROMPT_S
    await registry.set_client_status(name, active=True)
    assert await seconds_until(as_admin(other, token), "ok") < PROMPT_S


async def test_a_rotated_client_token_stops_working_on_every_instance_within_2_s(
    registry: Registry, other: Gateway
) -> None:
    name, old = await new_client(registry)
    assert await as_admin(other, old)() == "ok"
    new = BearerToken((await registry.rotate_client(name)).token)
    assert await seconds_until(as_admin(other, old), "unknown_token") < PROMPT_S
    assert await as_admin(other, new)() == "ok"


async def test_a_partner_disabled_or_rotated_on_one_instance_is_refused_by_another_within_2_s(
    registry: Registry, other: Gateway, partner: PartnerCredentials
) -> None:
    assert await as_partner(other, partner.username, partner.password)() == "ok"
    await registry.set_partner_status(partner.name, active=False)
    refused = as_partner(other, partner.username, partner.password)
    assert await seconds_until(refused, "partner_disabled") < PROMPT_S
    await registry.set_partner_status(partner.name, active=True)
    admitted = as_partner(other, partner.username, partner.password)
    assert await seconds_until(admitted, "ok") < PROMPT_S
    rotated = await registry.rotate_partner(partner.name)
    old_secret = as_partner(other, partner.username, partner.password)
    assert await seconds_until(old_secret, "bad_password") < PROMPT_S
    assert await as_partner(other, partner.username, rotated.password)() == "ok"


async def test_an_operations_change_made_in_sql_reaches_every_instance_within_2_s(
    gateway: Gateway, other: Gateway, partner: PartnerCredentials
) -> None:
    """Whoever changes the row (here an operator's UPDATE), the database tells the fleet."""
    status = as_partner(other, partner.username, partner.password, "GetPaymentStatus")
    assert await status() == "ok"
    await gateway.db.primary.execute(
        "UPDATE partners SET operations = ARRAY['InquireContribution'] WHERE name = $1",
        partner.name,
    )
    assert await seconds_until(status, "client.operation_not_allowed") < PROMPT_S


def changes_forgotten(gw: Gateway) -> float:
    """How often ``gw`` forgot every principal: once per connection of its listener."""
    sample = gw.metrics.registry.get_sample_value("ssogw_principal_changes_total", {"kind": "all"})
    return sample or 0.0


async def test_changes_still_arrive_after_the_listening_connection_is_cut(
    gateway: Gateway, registry: Registry, other: Gateway
) -> None:
    connections = changes_forgotten(other)
    cut = await gateway.db.primary.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'ssogw-principal-changes'"
    )
    assert cut >= 2  # this instance's and the other's, at least

    async def reconnected() -> str:  # and so forgot everything
        return "yes" if changes_forgotten(other) > connections else "not yet"

    await seconds_until(reconnected, "yes", limit_s=10)
    assert other.principal_changes.listening.is_set()
    listening = other.metrics.registry.get_sample_value("ssogw_principal_changes_listening")
    assert listening == 1
    name, token = await new_client(registry)
    assert await as_admin(other, token)() == "ok"
    await registry.set_client_status(name, active=False)
    assert await seconds_until(as_admin(other, token), "client_disabled") < PROMPT_S


async def test_a_partner_created_on_one_instance_is_admitted_by_another_that_was_asked_first(
    registry: Registry, other: Gateway
) -> None:
    """An instance remembers unknown names too (so a flood of them reads the database once
    each): a creation elsewhere must not wait for that to expire."""
    name = f"fleet-{uuid.uuid4().hex[:8]}"
    assert await as_partner(other, name, "not-yet")() == "unknown_user"
    issued = await registry.add_partner(name=name, cidrs=["127.0.0.0/8"], rate_limit=10_000)
    assert await seconds_until(as_partner(other, name, issued.password), "ok") < PROMPT_S
