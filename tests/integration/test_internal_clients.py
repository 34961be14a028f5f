"""SSO's internal clients: where they may call from (their own allowlist, else SSO's private
networks only), their rate limit, from the command line and REST; and who may hand out the
audit scope (only a caller that has it)."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.cli import main as cli
from app.counter.records import InquiryRequest
from app.errors import RateLimited, ServiceError, Unauthenticated
from app.main import Gateway
from app.settings import Settings
from tests.support.rest_api import audit_rows, bearer, new_token, problem, rest

pytestmark = pytest.mark.db
VALID_ID = "3100600445635"


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def called_from(gateway: Gateway, token: str, address: str) -> str:
    """The outcome of a REST inquiry with ``token`` from ``address`` (ok: admitted)."""
    try:
        await gateway.counter.inquire(
            caller=Caller(Protocol.REST, address, uuid.uuid4().hex),
            credentials=BearerToken(token),
            request=InquiryRequest(VALID_ID),
        )
    except ServiceError as error:
        return error.code if error.code != "client.person_not_found" else "ok"
    return "ok"


async def ssogw(monkeypatch: pytest.MonkeyPatch, settings: Settings, *argv: str) -> int:
    monkeypatch.setenv("SSOGW_PRIMARY_DSN", settings.primary_dsn or "")
    return await asyncio.to_thread(cli.main, list(argv))


# --- where a client may call from -------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "admitted"),
    [
        ("127.0.0.1", True),
        ("10.20.30.40", True),
        ("172.16.5.1", True),
        ("192.168.1.20", True),
        ("fd12:3456::7", True),
        ("203.0.113.7", False),  # the internet
        ("8.8.8.8", False),
        ("2001:db8::1", False),
    ],
)
async def test_a_client_registered_without_an_allowlist_calls_from_private_networks_only(
    gateway: Gateway, address: str, admitted: bool
) -> None:
    token = await new_token(gateway, ["counter"])
    outcome = await called_from(gateway, token, address)
    assert outcome == ("ok" if admitted else Unauthenticated.code), address


async def test_ssogw_client_add_takes_an_allowlist_and_a_rate_limit(
    gateway: Gateway,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = name("cli")
    argv = ["client", "add", client, "--scopes", "counter", "--json"]
    options = ["--cidr", "198.51.100.0/24", "--cidr", "2001:db8:5::/48", "--rate-limit", "2"]
    assert await ssogw(monkeypatch, settings, *argv, *options) == 0
    issued = json.loads(capsys.readouterr().out)
    assert issued["client"]["cidrs"] == ["198.51.100.0/24", "2001:db8:5::/48"]
    assert issued["client"]["rateLimit"] == 2
    token = issued["token"]

    assert await called_from(gateway, token, "127.0.0.1") == Unauthenticated.code
    assert await called_from(gateway, token, "2001:db8:5::9") == "ok"
    outcomes = [await called_from(gateway, token, "198.51.100.9") for _ in range(4)]
    assert RateLimited.code in outcomes, outcomes  # 2 requests/s

    assert await ssogw(monkeypatch, settings, "client", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)["clients"]
    (mine,) = [c for c in listed if c["name"] == client]
    assert mine["cidrs"] == issued["client"]["cidrs"] and mine["rateLimit"] == 2


async def test_ssogw_client_add_refuses_a_bad_block(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["client", "add", name("cli"), "--scopes", "counter", "--cidr", "not-a-block"]
    assert await ssogw(monkeypatch, settings, *argv) == 2
    assert "client.invalid_input" in capsys.readouterr().err


@pytest.mark.parametrize("rate", ["1e-50", "0", "1e12", "inf", "nan"])
async def test_ssogw_refuses_a_rate_limit_out_of_bounds_as_rest_does(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    rate: str,
) -> None:
    # 0.001 to 100,000/s: below, the column stores 0 and fails its CHECK (a 500, not the
    # caller's error); above, a lease overflows the bucket statement.
    for kind, extra in (("client", ["--scopes", "counter"]), ("partner", ["--cidr", "::1/128"])):
        argv = [kind, "add", name("cli"), *extra, "--rate-limit", rate]
        assert await ssogw(monkeypatch, settings, *argv) == 2, (kind, rate)
        assert "client.invalid_input" in capsys.readouterr().err


async def test_rest_registers_a_client_with_its_allowlist_and_rate_limit(
    live_url: str, gateway: Gateway
) -> None:
    admin = await new_token(gateway, ["admin"])
    async with rest(live_url, admin) as api:
        created = await api.post(
            "/api/v1/clients",
            json={"name": name("c"), "scopes": ["counter"], "cidrs": ["198.51.100.0/24"],
                  "rateLimit": 5},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        assert created.json()["client"]["cidrs"] == ["198.51.100.0/24"]
        assert created.json()["client"]["rateLimit"] == 5
        default = await api.post("/api/v1/clients", json={"name": name("c"), "scopes": ["admin"]})
        assert default.json()["client"]["cidrs"] == [
            "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"
        ]  # fmt: skip
    assert await called_from(gateway, created.json()["token"], "198.51.100.1") == "ok"
    assert await called_from(gateway, created.json()["token"], "10.0.0.1") == Unauthenticated.code


# --- who may hand out the audit scope --------------------------------------------------------
async def test_an_admin_token_cannot_mint_an_audit_client(live_url: str, gateway: Gateway) -> None:
    admin = await new_token(gateway, ["admin"])
    client = name("a")
    refused: list[str] = []
    async with rest(live_url, admin) as api:
        for scopes in (["audit"], ["admin", "audit"]):
            response = await api.post("/api/v1/clients", json={"name": client, "scopes": scopes})
            assert problem(response, 403, "client.scope_not_allowed")["scope"] == "audit"
            refused.append(response.headers["x-request-id"])
        listed = await api.get("/api/v1/clients")
        assert client not in listed.text, "no client was created"
        allowed = await api.post("/api/v1/clients", json={"name": client, "scopes": ["counter"]})
        assert allowed.status_code == 201, allowed.text
    for request_id in refused:  # the attempts are in the audit trail
        (row,) = await audit_rows(gateway, request_id)
        assert (row["operation"], row["outcome"]) == ("AddClient", "client.scope_not_allowed")


async def test_an_audit_client_is_created_and_rotated_only_by_a_caller_with_the_audit_scope(
    live_url: str, gateway: Gateway
) -> None:
    auditor_admin = await new_token(gateway, ["admin", "audit"])
    admin = await new_token(gateway, ["admin"])
    client = name("a")
    async with rest(live_url, auditor_admin) as api:
        created = await api.post("/api/v1/clients", json={"name": client, "scopes": ["audit"]})
        assert created.status_code == 201, created.text
    async with rest(live_url) as anonymous:
        refused = await anonymous.post(f"/api/v1/clients/{client}/rotate", headers=bearer(admin))
        problem(refused, 403, "client.scope_not_allowed")
        audit_token = created.json()["token"]
        still = await anonymous.get(
            f"/api/v1/audit/lookups?nationalId={VALID_ID}", headers=bearer(audit_token)
        )
        assert still.status_code == 200, "the refused rotation left the token working"
        rotated = await anonymous.post(
            f"/api/v1/clients/{client}/rotate", headers=bearer(auditor_admin)
        )
        assert rotated.status_code == 200, rotated.text
        # Disabling needs only admin: it takes nothing into the audit trail.
        disabled = await anonymous.post(f"/api/v1/clients/{client}/disable", headers=bearer(admin))
        assert disabled.status_code == 200


async def test_rotating_a_client_that_does_not_exist_is_not_found(
    live_url: str, gateway: Gateway
) -> None:
    admin = await new_token(gateway, ["admin"])
    async with httpx.AsyncClient(base_url=live_url, headers=bearer(admin)) as api:
        response = await api.post(f"/api/v1/clients/{name('none')}/rotate")
        problem(response, 404, "client.not_found")
