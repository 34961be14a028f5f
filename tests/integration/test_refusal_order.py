"""Who may call is settled before what they sent is judged, in SOAP and in REST, over real HTTP
against the real gateway: a caller that is not admitted learns only that, whatever its request
holds; an admitted caller learns what is wrong with its request. A wsu:Created outside the
window is client.clock_skew, saying the gateway's time; every failure of the credential itself
reads the same, its reason kept in the audit trail only.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.error_catalogue import THAI
from app.errors import Unauthenticated
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.reliability.soap_wire import created_now, security
from tests.support.refusals import recorded
from tests.support.rest_api import new_token, problem
from tests.unit.soap.envelopes import CT11, CT12, SSO, envelope, operation

pytestmark = pytest.mark.db

VALID_ID = "3100600445635"  # well-formed (nobody need be insured under it)
BAD_ID = "3100600445636"  # its check digit is wrong
VERSIONS = ["1.1", "1.2"]
NOT_ADMITTED = Unauthenticated.default_message  # the one answer, whatever failed


@dataclass(frozen=True)
class Fault:
    status: int
    code: str
    message: str
    message_th: str
    entries: dict[str, str]
    request_id: str


@pytest.fixture
async def http(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        yield client


async def soap(http: httpx.AsyncClient, content: bytes, *, version: str = "1.1") -> Fault:
    """Send an envelope; the fault it is answered with."""
    rid = f"order-{uuid.uuid4().hex}"
    response = await http.post(
        "/soap/v1",
        content=content,
        headers={"content-type": CT11 if version == "1.1" else CT12, "x-request-id": rid},
    )
    detail = ET.fromstring(response.content).find(f".//{{{SSO}}}GatewayFault")
    assert detail is not None, response.text
    return Fault(
        status=response.status_code,
        code=detail.findtext(f"{{{SSO}}}code", ""),
        message=detail.findtext(f"{{{SSO}}}message", ""),
        message_th=detail.findtext(f"{{{SSO}}}messageTh", ""),
        entries={
            e.findtext(f"{{{SSO}}}key", ""): e.findtext(f"{{{SSO}}}value", "")
            for e in detail.iterfind(f"{{{SSO}}}entry")
        },
        request_id=rid,
    )


def inquiry(national_id: str) -> str:
    return operation("InquireContribution", f"<c:nationalId>{national_id}</c:nationalId>")


def confirm_without_amount(national_id: str) -> str:
    """A ConfirmPayment the XSD refuses: its amount is missing."""
    return operation(
        "ConfirmPayment",
        f"<c:partnerTxnId>ORD-{uuid.uuid4().hex[:12]}</c:partnerTxnId>"
        f"<c:nationalId>{national_id}</c:nationalId><c:section>40</c:section>"
        "<c:months><c:month>2024-06</c:month></c:months>"
        "<c:businessDate>2024-06-12</c:businessDate><c:paidAt>2024-06-12T09:00:00Z</c:paidAt>",
    )


async def audit_of(gateway: Gateway, request_id: str) -> list[dict[str, Any]]:
    rows = await recorded(gateway, lambda: gateway.db.primary.fetch(
        "SELECT protocol, operation, outcome, national_id, detail FROM audit_log"
        " WHERE request_id = $1 ORDER BY seq",
        request_id,
    ))  # fmt: skip
    return [dict(row) for row in rows]


def unauthenticated(fault: Fault, version: str) -> None:
    """``fault`` says only that the caller is not admitted, as every credential failure does."""
    assert fault.code == "client.unauthenticated", fault
    assert fault.status == (500 if version == "1.1" else 400)
    assert fault.message == NOT_ADMITTED
    assert fault.message_th == THAI["client.unauthenticated"]
    assert fault.entries == {}, "no detail may tell one credential failure from another"


# --- SOAP --------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
async def test_soap_a_wrong_password_with_a_bad_national_id_is_unauthenticated(
    http: httpx.AsyncClient, partner: PartnerCredentials, version: str
) -> None:
    header = security(partner.username, "not-the-password")
    fault = await soap(
        http, envelope(inquiry(BAD_ID), version=version, header=header), version=version
    )
    unauthenticated(fault, version)


async def test_soap_good_credentials_with_a_bad_national_id_learn_what_is_wrong(
    http: httpx.AsyncClient, partner: PartnerCredentials
) -> None:
    header = security(partner.username, partner.password)
    fault = await soap(http, envelope(inquiry(BAD_ID), header=header))
    assert fault.code == "client.invalid_national_id", fault
    assert fault.message_th == THAI["client.invalid_national_id"]


async def test_soap_a_body_the_xsd_refuses_is_told_only_to_an_admitted_caller(
    http: httpx.AsyncClient, gateway: Gateway, partner: PartnerCredentials
) -> None:
    body = confirm_without_amount(VALID_ID)
    refused = await soap(
        http, envelope(body, header=security(partner.username, "not-the-password"))
    )
    unauthenticated(refused, "1.1")
    (record,) = await audit_of(gateway, refused.request_id)
    assert (record["operation"], record["outcome"]) == ("ConfirmPayment", "client.unauthenticated")
    assert record["national_id"] == VALID_ID, "a refused call names the well-formed ID it sent"
    assert record["detail"]["reason"] == "bad_password"

    told = await soap(http, envelope(body, header=security(partner.username, partner.password)))
    assert told.code == "client.invalid_input", told
    assert told.entries == {"element": "amount", "problem": "missing"}
    (record,) = await audit_of(gateway, told.request_id)
    assert (record["outcome"], record["national_id"]) == ("client.invalid_input", VALID_ID)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "skew", [timedelta(hours=-1), timedelta(minutes=6)], ids=["behind", "ahead"]
)
async def test_soap_a_created_outside_the_window_is_clock_skew(
    http: httpx.AsyncClient,
    gateway: Gateway,
    settings: Settings,
    partner: PartnerCredentials,
    version: str,
    skew: timedelta,
) -> None:
    header = security(partner.username, partner.password, created=created_now(skew))
    before = datetime.now(UTC)
    fault = await soap(
        http, envelope(inquiry(VALID_ID), version=version, header=header), version=version
    )
    assert fault.code == "client.clock_skew", fault
    assert fault.status == (500 if version == "1.1" else 400)  # Client / Sender
    assert fault.message_th == THAI["client.clock_skew"]
    assert "set the terminal's clock" in fault.message
    gateway_time = datetime.fromisoformat(fault.entries["gatewayTime"])
    assert abs((gateway_time - before).total_seconds()) < 30
    assert fault.entries["allowedSkewS"] == str(settings.wsse_window_s)
    assert abs(int(fault.entries["skewS"]) - skew.total_seconds()) < 30
    (record,) = await audit_of(gateway, fault.request_id)
    assert (record["outcome"], record["national_id"]) == ("client.clock_skew", VALID_ID)


async def test_soap_clock_skew_says_nothing_of_the_username(
    http: httpx.AsyncClient, partner: PartnerCredentials
) -> None:
    """Judged before the username is looked up: a stranger's skewed token reads the same."""
    skewed = created_now(timedelta(hours=-1))
    faults = [
        await soap(
            http, envelope(inquiry(VALID_ID), header=security(name, password, created=skewed))
        )
        for name, password in (
            (partner.username, partner.password),
            (partner.username, "not-the-password"),
            (f"nobody-{uuid.uuid4().hex[:8]}", "whatever"),
        )
    ]
    assert {fault.code for fault in faults} == {"client.clock_skew"}


async def test_soap_every_credential_failure_reads_the_same(
    http: httpx.AsyncClient, gateway: Gateway, partner: PartnerCredentials
) -> None:
    captured = envelope(inquiry(VALID_ID), header=security(partner.username, partner.password))
    await soap(http, captured)  # consumes the nonce
    attempts = {
        "bad_password": envelope(
            inquiry(VALID_ID), header=security(partner.username, "not-the-password")
        ),
        "unknown_user": envelope(
            inquiry(VALID_ID), header=security(f"nobody-{uuid.uuid4().hex[:8]}", "whatever")
        ),
        "replayed_nonce": captured,
    }
    for reason, content in attempts.items():
        fault = await soap(http, content)
        unauthenticated(fault, "1.1")
        (record,) = await audit_of(gateway, fault.request_id)
        assert record["detail"]["reason"] == reason, "the trail keeps what the caller is not told"


async def test_soap_a_body_that_is_not_soap_is_refused_before_authentication(
    http: httpx.AsyncClient,
) -> None:
    """As the contract says: without an envelope there is no credential to check."""
    fault = await soap(http, b"<not-an-envelope/>")
    assert fault.code == "client.invalid_envelope", fault


# --- REST --------------------------------------------------------------------------------------
def forged(token: str) -> str:
    """``token`` with the right id and a wrong secret."""
    return token.rpartition("_")[0] + "_" + uuid.uuid4().hex


async def rest_call(
    http: httpx.AsyncClient, method: str, path: str, token: str | None, **kwargs: Any
) -> httpx.Response:
    headers = {"X-Request-ID": f"order-{uuid.uuid4().hex}"}
    if "content" in kwargs:
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await http.request(method, path, headers=headers, **kwargs)


def rest_unauthenticated(response: httpx.Response) -> None:
    body = problem(response, 401, "client.unauthenticated")
    assert body["detail"] == NOT_ADMITTED
    assert body["messageTh"] == THAI["client.unauthenticated"] and body["retryable"] is False
    assert "reason" not in body


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/insured/{BAD_ID}/contributions",  # the counter's inquiry
        f"/api/v1/insured/{BAD_ID}",  # through the admin gate
        f"/api/v1/audit/lookups?nationalId={BAD_ID}",
    ],
    ids=["inquiry", "person", "lookups"],
)
async def test_rest_a_wrong_token_with_a_bad_national_id_is_unauthenticated(
    http: httpx.AsyncClient, gateway: Gateway, path: str
) -> None:
    token = await new_token(gateway, ["counter", "admin", "audit"])
    rest_unauthenticated(await rest_call(http, "GET", path, forged(token)))
    told = problem(await rest_call(http, "GET", path, token), 422, "client.invalid_national_id")
    assert told["messageTh"] == THAI["client.invalid_national_id"]


@pytest.mark.parametrize(
    ("method", "path", "request_kwargs"),
    [
        ("POST", "/api/v1/payments", {"json": {}}),
        ("POST", "/api/v1/payments", {"json": {"nationalId": BAD_ID, "amount": "x"}}),
        ("POST", "/api/v1/payments", {"content": b"{not json"}),
        ("GET", f"/api/v1/insured/{VALID_ID}/contributions?section=41", {}),
        ("POST", "/api/v1/payments/ORD-1/cancel", {"json": {"why": "?"}}),
        ("POST", "/api/v1/insured", {"json": {"nationalId": 7}}),
        ("GET", "/api/v1/insured?limit=0", {}),
        ("GET", "/api/v1/audit/lookups", {}),
    ],
    ids=[
        "empty-confirm",
        "bad-confirm",
        "not-json",
        "bad-query",
        "bad-cancel",
        "bad-person",
        "bad-listing",
        "audit-without-id",
    ],
)
async def test_rest_a_request_that_does_not_validate_is_told_only_to_an_admitted_caller(
    http: httpx.AsyncClient,
    gateway: Gateway,
    method: str,
    path: str,
    request_kwargs: dict[str, Any],
) -> None:
    token = await new_token(gateway, ["counter", "admin", "audit"])
    for credential in (None, forged(token), "ssogw_no-such-client_secret"):
        response = await rest_call(http, method, path, credential, **request_kwargs)
        rest_unauthenticated(response)
    told = await rest_call(http, method, path, token, **request_kwargs)
    assert told.status_code == 422, told.text
    assert told.json()["code"].startswith("client.invalid_"), told.text


async def test_rest_a_caller_without_the_scope_learns_only_that(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    token = await new_token(gateway, ["audit"])
    response = await rest_call(http, "POST", "/api/v1/payments", token, json={})
    problem(response, 403, "client.scope_not_allowed")


async def test_rest_a_refused_unreadable_confirm_is_audited_with_its_national_id(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    token = await new_token(gateway, ["counter"])
    body = {"partnerTxnId": "ORD-2", "nationalId": VALID_ID, "section": 40}  # no amount, ...
    response = await rest_call(http, "POST", "/api/v1/payments", forged(token), json=body)
    rest_unauthenticated(response)
    (record,) = await audit_of(gateway, response.headers["x-request-id"])
    assert (record["protocol"], record["operation"]) == ("rest", "ConfirmPayment")
    assert (record["outcome"], record["national_id"]) == ("client.unauthenticated", VALID_ID)
    assert record["detail"]["reason"] == "bad_token"
