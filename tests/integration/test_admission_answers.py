"""One answer for every admission failure, over real HTTP against a gateway behind a trusted
proxy (the tests' own address, 127.0.0.1, so X-Forwarded-For names each caller):

- every way of not being admitted, SOAP and REST, reads the same to the caller, byte for byte
  but for the request id; the reason is in the audit record, the access log line and the
  metrics, never in the answer;
- an unknown username or token id takes as long to refuse as a known one with a wrong secret;
- REST and SOAP believe the same X-Forwarded-For headers, whatever lines they come in.
"""

from __future__ import annotations

import logging
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.admission.credential_vault import SecretBox
from app.admission.secret_hashing import SecretHashing
from app.errors import Unauthenticated
from app.main import Gateway, create_app
from app.principals.registry import Registry
from app.principals.repository import PrincipalRepository
from app.settings import Settings
from tests.reliability.observe import scrape
from tests.reliability.soap_wire import security
from tests.support.clock import PinnedClock
from tests.support.live_server import serve
from tests.support.refusals import recorded
from tests.unit.soap.envelopes import CT11, PROFILE, envelope, operation, text_token

pytestmark = pytest.mark.db

VALID_ID = "3100600445635"  # well-formed; nobody need be insured under it
INSIDE = "198.51.100.7"  # in the allowlist of this module's partners and clients
OUTSIDE = "203.0.113.7"
ALLOWLIST = ["198.51.100.0/24"]
# argon2 as cheap as it goes: what is measured is that both answers do the same work.
CHEAP = {"memory_kib": 8192, "time_cost": 1, "parallelism": 1}
PAIR_BUDGET = 3  # failures one address may make for one name before it is throttled


@pytest.fixture(scope="module")
def proxied(settings: Settings, clock: PinnedClock) -> Iterator[str]:
    """A gateway that trusts 127.0.0.0/8 as its proxy: X-Forwarded-For gives the caller."""
    live = settings.model_copy(
        update={
            "instance_id": f"{settings.instance_id}-proxied",
            "trusted_proxies": ["127.0.0.0/8"],
            "credential_failures_per_pair": PAIR_BUDGET,
            "credential_failures_per_name": 1_000_000,
            "credential_failures_per_address": 1_000_000,
            **{f"argon2_{key}": value for key, value in CHEAP.items()},
        }
    )
    with serve(create_app(live, clock=clock)) as base:
        yield base


@pytest.fixture
async def http(proxied: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=proxied, timeout=30) as client:
        yield client


@pytest.fixture
def registry(gateway: Gateway, settings: Settings) -> Registry:
    """The registry, hashing with the proxied gateway's argon2 parameters."""
    return Registry(
        store=PrincipalRepository(lambda: gateway.db.primary),
        box=SecretBox(settings.secret_key),
        hashing=SecretHashing(**CHEAP),
    )


@dataclass(frozen=True)
class Account:
    name: str
    username: str
    secret: str  # a partner's password, a client's whole token


async def new_partner(registry: Registry, *, text: bool = True) -> Account:
    issued = await registry.add_partner(
        name=f"adm-{uuid.uuid4().hex[:10]}", cidrs=ALLOWLIST, password_text_ok=text
    )
    return Account(issued.partner["name"], issued.username, issued.password)


async def new_client(registry: Registry) -> Account:
    issued = await registry.add_client(
        name=f"adm-{uuid.uuid4().hex[:10]}", scopes=["counter"], cidrs=ALLOWLIST
    )
    return Account(issued.client["name"], issued.client["tokenId"], issued.token)


def forged(token: str) -> str:
    return token.rpartition("_")[0] + "_" + uuid.uuid4().hex


def inquiry(header: str) -> bytes:
    return envelope(
        operation("InquireContribution", f"<c:nationalId>{VALID_ID}</c:nationalId>"),
        header=header,
    )


async def soap(http: httpx.AsyncClient, content: bytes, *, source: str = INSIDE) -> httpx.Response:
    headers = {"content-type": CT11, "x-forwarded-for": source}
    return await http.post("/soap/v1", content=content, headers=headers)


async def rest(
    http: httpx.AsyncClient, token: str | None, *, source: str = INSIDE
) -> httpx.Response:
    headers = {"x-forwarded-for": source}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return await http.get(f"/api/v1/insured/{VALID_ID}/contributions", headers=headers)


# A refusal of a caller never admitted is counted and written when its window ends, in one
# record for the calls alike (their request ids in its detail): found by the call's own id.
OF_THE_CALL = (
    "SELECT host(source_ip) AS ip, detail->>'reason' AS reason FROM audit_records"
    " WHERE request_id = $1 OR detail->'request_ids' ? $1"
)


async def record_of(gateway: Gateway, response: httpx.Response) -> dict[str, Any] | None:
    rid = response.headers["x-request-id"]
    rows = await recorded(gateway, lambda: gateway.db.primary.fetch(OF_THE_CALL, rid))
    return dict(rows[0]) if rows else None


async def reason_of(gateway: Gateway, response: httpx.Response) -> str | None:
    row = await record_of(gateway, response)
    return row["reason"] if row is not None else None


def as_told(response: httpx.Response) -> tuple[int, str, str]:
    """What the caller is told, its request id taken out: status, Content-Type, body."""
    request_id = response.headers["x-request-id"]
    body = response.text.replace(request_id, "<request-id>")
    return response.status_code, response.headers["content-type"], body


# --- one answer ---------------------------------------------------------------------------------
async def test_every_soap_admission_failure_reads_the_same(
    http: httpx.AsyncClient,
    gateway: Gateway,
    registry: Registry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ssogw.access")
    partner = await new_partner(registry)
    digest_only = await new_partner(registry, text=False)
    disabled = await new_partner(registry)
    await registry.set_partner_status(disabled.name, active=False)
    throttled = await new_partner(registry)
    captured = inquiry(security(partner.username, partner.secret))
    assert (await soap(http, captured)).status_code in (200, 500)  # consumes the nonce
    good_digest = security(partner.username, partner.secret)
    no_nonce = re.sub(r"<wsse:Nonce[^>]*>[^<]*</wsse:Nonce>", "", good_digest)
    bad_nonce = re.sub(r"(<wsse:Nonce[^>]*>)[^<]*(</wsse:Nonce>)", r"\1!!\2", good_digest)
    odd_type = text_token(partner.username, partner.secret).replace(
        f"{PROFILE}#PasswordText", f"{PROFILE}#PasswordSomethingElse"
    )
    attempts: list[tuple[str, Callable[[], Awaitable[httpx.Response]]]] = [
        ("missing", lambda: soap(http, inquiry(""))),
        ("malformed_token", lambda: soap(http, inquiry(odd_type))),
        ("missing_nonce_or_created", lambda: soap(http, inquiry(no_nonce))),
        ("bad_nonce", lambda: soap(http, inquiry(bad_nonce))),
        ("unknown_user", lambda: soap(http, inquiry(security(f"nobody-{uuid.uuid4().hex}", "x")))),
        ("bad_password", lambda: soap(http, inquiry(security(partner.username, "wrong")))),
        ("bad_password", lambda: soap(http, inquiry(text_token(partner.username, "wrong")))),
        (
            "password_text_not_allowed",
            lambda: soap(http, inquiry(text_token(digest_only.username, digest_only.secret))),
        ),
        ("replayed_nonce", lambda: soap(http, captured)),
        (
            "partner_disabled",
            lambda: soap(http, inquiry(security(disabled.username, disabled.secret))),
        ),
        ("ip_not_allowed", lambda: soap(http, inquiry(good_digest), source=OUTSIDE)),
    ]
    for _ in range(PAIR_BUDGET):  # wrong, from one address for one name: then not checked
        wrong = await soap(http, inquiry(text_token(throttled.username, "wrong")), source=OUTSIDE)
        assert await reason_of(gateway, wrong) == "bad_password"
    right = text_token(throttled.username, throttled.secret)
    attempts.append(("throttled", lambda: soap(http, inquiry(right), source=OUTSIDE)))

    told: dict[tuple[int, str, str], list[str]] = {}
    for reason, send in attempts:
        response = await send()
        assert await reason_of(gateway, response) == reason, response.text
        told.setdefault(as_told(response), []).append(reason)
    assert len(told) == 1, f"{len(told)} different answers: {list(told.values())}"
    ((status, _, body),) = told
    assert status == 500 and "<sso:code>client.unauthenticated</sso:code>" in body
    assert f"<sso:message>{Unauthenticated.default_message}</sso:message>" in body
    assert "<sso:entry>" not in body, "nothing tells one failure from another"

    # The reasons are for SSO: the access log line and the metrics say them.
    logged = {getattr(r, "reason", None) for r in caplog.records if r.name == "ssogw.access"}
    assert {reason for reason, _ in attempts} <= logged
    assert all(VALID_ID not in str(vars(r)) for r in caplog.records), "no national ID in logs"
    samples = await scrape(http)
    for reason, _ in attempts:
        key = f'ssogw_admission_refusals_total{{protocol="soap",reason="{reason}"}}'
        assert samples.get(key, 0) >= 1, key
    labels = " ".join(k for k in samples if k.startswith("ssogw_admission_refusals"))
    assert VALID_ID not in labels and "198.51.100" not in labels and "203.0.113" not in labels


async def test_every_rest_admission_failure_reads_the_same(
    http: httpx.AsyncClient, gateway: Gateway, registry: Registry
) -> None:
    client = await new_client(registry)
    disabled = await new_client(registry)
    await registry.set_client_status(disabled.name, active=False)
    throttled = await new_client(registry)
    attempts: list[tuple[str, Callable[[], Awaitable[httpx.Response]]]] = [
        ("missing", lambda: rest(http, None)),
        ("malformed_token", lambda: rest(http, "not-one-of-ours")),
        ("unknown_token", lambda: rest(http, f"ssogw_nope{uuid.uuid4().hex[:6]}_secret")),
        ("bad_token", lambda: rest(http, forged(client.secret))),
        ("client_disabled", lambda: rest(http, disabled.secret)),
        ("ip_not_allowed", lambda: rest(http, client.secret, source=OUTSIDE)),
    ]
    for _ in range(PAIR_BUDGET):
        wrong = await rest(http, forged(throttled.secret), source=OUTSIDE)
        assert await reason_of(gateway, wrong) == "bad_token"
    attempts.append(("throttled", lambda: rest(http, throttled.secret, source=OUTSIDE)))

    told: dict[tuple[int, str, str], list[str]] = {}
    for reason, send in attempts:
        response = await send()
        assert await reason_of(gateway, response) == reason, response.text
        assert response.headers["www-authenticate"] == 'Bearer realm="ssogw"'
        told.setdefault(as_told(response), []).append(reason)
    assert len(told) == 1, f"{len(told)} different answers: {list(told.values())}"
    ((status, media, body),) = told
    assert (status, media) == (401, "application/problem+json")
    assert Unauthenticated.default_message in body and '"code":"client.unauthenticated"' in body

    # And an admitted caller is told what it may not do: it leaks nothing to an outsider.
    assert (await rest(http, client.secret)).status_code in (200, 404)
    samples = await scrape(http)
    for reason, _ in attempts:
        key = f'ssogw_admission_refusals_total{{protocol="rest",reason="{reason}"}}'
        assert samples.get(key, 0) >= 1, key


# --- the same time ------------------------------------------------------------------------------
@dataclass
class Timing:
    known: list[float]
    unknown: list[float]

    @property
    def medians(self) -> tuple[float, float]:
        return statistics.median(self.known), statistics.median(self.unknown)

    @property
    def difference(self) -> float:
        known, unknown = self.medians
        return abs(known - unknown) / min(known, unknown)


TRIES = 200


async def timed(send: Callable[[str], Awaitable[httpx.Response]], sources: Iterator[str]) -> float:
    started = time.perf_counter()
    response = await send(next(sources))
    spent = time.perf_counter() - started
    assert response.status_code in (401, 500), response.text  # refused, as every other try
    assert "client.unauthenticated" in response.text
    return spent


async def compare(
    known: Callable[[str], Awaitable[httpx.Response]],
    unknown: Callable[[str], Awaitable[httpx.Response]],
) -> Timing:
    """``TRIES`` of each, interleaved (each pair in turn order), each from its own address."""
    sources = (f"198.18.{n // 250}.{n % 250 + 1}" for n in range(10 * TRIES))
    timing = Timing([], [])
    for n in range(TRIES):
        first, second = (known, unknown) if n % 2 else (unknown, known)
        a = await timed(first, sources)
        b = await timed(second, sources)
        timing.known.append(a if first is known else b)
        timing.unknown.append(b if first is known else a)
    return timing


@pytest.mark.serial
async def test_an_unknown_user_takes_as_long_to_refuse_as_a_known_one(
    http: httpx.AsyncClient, registry: Registry
) -> None:
    partner = await new_partner(registry)
    client = await new_client(registry)
    stranger = f"nobody-{uuid.uuid4().hex[:10]}"
    stranger_token = f"ssogw_nope{uuid.uuid4().hex[:8]}_{uuid.uuid4().hex}"

    def soap_as(header: Callable[[], str]) -> Callable[[str], Awaitable[httpx.Response]]:
        return lambda source: soap(http, inquiry(header()), source=source)

    def rest_as(token: Callable[[], str]) -> Callable[[str], Awaitable[httpx.Response]]:
        return lambda source: rest(http, token(), source=source)

    arms = {
        "PasswordDigest": (
            soap_as(lambda: security(partner.username, "wrong")),
            soap_as(lambda: security(stranger, "wrong")),
        ),
        "PasswordText": (
            soap_as(lambda: text_token(partner.username, "wrong")),
            soap_as(lambda: text_token(stranger, "wrong")),
        ),
        "bearer token": (
            rest_as(lambda: forged(client.secret)),
            rest_as(lambda: stranger_token),
        ),
    }
    figures: dict[str, Timing] = {}
    for arm, (known, unknown) in arms.items():
        figures[arm] = await compare(known, unknown)
    for arm, timing in figures.items():
        known_ms, unknown_ms = (m * 1000 for m in timing.medians)
        print(
            f"\n{arm}: {TRIES} tries each, median known {known_ms:.2f} ms,"
            f" unknown {unknown_ms:.2f} ms, difference {timing.difference:.1%}"
        )
    slow = {arm: f"{t.difference:.1%}" for arm, t in figures.items() if t.difference >= 0.10}
    assert not slow, f"known and unknown users differ by 10% or more: {slow}"


# --- one reading of X-Forwarded-For ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("lines", "believed"),
    [
        ([], "127.0.0.1"),  # no header: the peer (a proxy's address, in no allowlist)
        ([INSIDE], INSIDE),
        ([OUTSIDE], OUTSIDE),
        # A proxy that writes its own line after what the client sent: the client's line is
        # whatever it chose to write; the proxy's is the address it saw.
        ([INSIDE, OUTSIDE], OUTSIDE),
        ([OUTSIDE, INSIDE], INSIDE),
        ([f"{INSIDE}, {OUTSIDE}"], OUTSIDE),
        ([f"{OUTSIDE}, {INSIDE}"], INSIDE),
        ([f"{INSIDE}, 127.0.0.9"], INSIDE),  # a trusted hop is passed over
        ([INSIDE, "127.0.0.9"], INSIDE),
        ([f"{OUTSIDE}, {INSIDE}", "127.0.0.9, 127.0.0.10"], INSIDE),
        (["garbage"], "127.0.0.1"),  # a hop that is no address ends the walk at the peer
        ([INSIDE, "garbage"], "127.0.0.1"),
        ([f"{INSIDE}:4711"], "127.0.0.1"),  # with a port: not an address
        (["2001:db8::7"], "2001:db8::7"),
    ],
)
async def test_rest_and_soap_believe_the_same_forwarded_for(
    http: httpx.AsyncClient,
    gateway: Gateway,
    registry: Registry,
    lines: list[str],
    believed: str,
) -> None:
    partner = await new_partner(registry)
    client = await new_client(registry)
    headers: list[tuple[str, str]] = [("x-forwarded-for", line) for line in lines]
    soap_answer = await http.post(
        "/soap/v1",
        content=inquiry(security(partner.username, partner.secret)),
        headers=[("content-type", CT11), *headers],
    )
    rest_answer = await http.get(
        f"/api/v1/insured/{VALID_ID}/contributions",
        headers=[("authorization", f"Bearer {client.secret}"), *headers],
    )
    admitted = believed == INSIDE
    verdicts = {
        "soap": "client.unauthenticated" not in soap_answer.text,
        "rest": rest_answer.status_code != 401,
    }
    assert verdicts == {"soap": admitted, "rest": admitted}, (soap_answer.text, rest_answer.text)
    for answer in (soap_answer, rest_answer):
        row = await record_of(gateway, answer)
        assert row is not None and row["ip"] == believed, dict(row or {})
        assert row["reason"] == (None if admitted else "ip_not_allowed"), dict(row)
