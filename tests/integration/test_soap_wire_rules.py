"""Raw HTTP against the real gateway: a Windows POS terminal's Thai (windows-874) and Created
times written without an offset, the way partners' own stacks send them, and the addresses
the served WSDL names behind a proxy or a public base URL."""

from __future__ import annotations

import re
import uuid
from contextlib import AbstractContextManager
from datetime import UTC, datetime, tzinfo

import httpx
import pytest

from app.domain.calendar import BANGKOK, settlement_day
from app.domain.months import Month
from app.main import Gateway, create_app
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.reliability.soap_wire import (
    SoapAnswer,
    confirm_body,
    inquire_body,
    new_request_id,
    read_answer,
    security,
)
from tests.support.clock import PinnedClock
from tests.support.counter_calls import s40_person, today
from tests.support.live_server import serve
from tests.support.people import add_person
from tests.support.rest_api import replicas
from tests.unit.soap.envelopes import CT11, CT12, envelope, operation

pytestmark = pytest.mark.db

# An operator code as a Thai POS terminal keys it: TIS-620 letters and a mark only
# windows-874 has (the curly quotes).
OPERATOR_874 = "สมศรี “กะดึก”"


async def s39_person(gateway: Gateway) -> str:
    async with gateway.db.primary.acquire() as conn:
        return await add_person(
            conn, section=39, coverage_start=Month(2020, 1), replicas=replicas(gateway)
        )


@pytest.mark.parametrize(
    ("content_type", "declaration"),
    [
        ("text/xml; charset=windows-874", ""),
        ("text/xml", '<?xml version="1.0" encoding="windows-874"?>'),
    ],
)
async def test_a_windows_874_request_keeps_its_thai(
    gateway: Gateway,
    live_url: str,
    partner: PartnerCredentials,
    content_type: str,
    declaration: str,
) -> None:
    nid = await s39_person(gateway)
    body = operation(
        "InquireContribution",
        f"<c:nationalId>{nid}</c:nationalId><c:operatorId>{OPERATOR_874}</c:operatorId>",
    )
    text = envelope(body, header=security(partner.username, partner.password)).decode()
    raw = text.replace('<?xml version="1.0" encoding="utf-8"?>', declaration).encode("cp874")
    assert OPERATOR_874.encode("cp874") in raw  # one byte a character, as the terminal sends
    request_id = new_request_id()
    async with httpx.AsyncClient(base_url=live_url, timeout=10) as http:
        response = await http.post(
            "/soap/v1",
            content=raw,
            headers={"content-type": content_type, "x-request-id": request_id},
        )
    answer = read_answer(response)
    assert answer.ok and answer.fields["nationalId"] == nid, answer
    operators = await gateway.db.primary.fetch(
        "SELECT operator FROM audit_log WHERE request_id = $1", request_id
    )
    assert [r["operator"] for r in operators] == [OPERATOR_874]


@pytest.mark.parametrize(
    ("zone", "code"),
    [
        (BANGKOK, "ok"),  # the counter's wall clock, without an offset: Bangkok time
        (UTC, "client.clock_skew"),  # UTC without an offset is 7 hours off
    ],
)
async def test_a_created_without_an_offset_is_read_as_bangkok_time(
    gateway: Gateway, live_url: str, partner: PartnerCredentials, zone: tzinfo, code: str
) -> None:
    nid = await s39_person(gateway)
    created = datetime.now(zone).strftime("%Y-%m-%dT%H:%M:%S")
    raw = envelope(
        inquire_body(nid), header=security(partner.username, partner.password, created=created)
    )
    async with httpx.AsyncClient(base_url=live_url, timeout=10) as http:
        response = await http.post("/soap/v1", content=raw, headers={"content-type": "text/xml"})
    answer = read_answer(response)
    assert answer.code == code, answer
    if not answer.ok:
        assert answer.reason is None  # why it was refused stays in the audit trail


# --- the served WSDL's addresses ------------------------------------------------------------
FORWARDED = {"x-forwarded-proto": "https", "x-forwarded-host": "partners.sso.example"}


def wsdl_addresses(base_url: str, **headers: str) -> set[str]:
    """Every address the WSDL served at ``base_url`` names: the two ports and the schema."""
    response = httpx.get(f"{base_url}/soap/v1?wsdl", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return set(re.findall(r'(?:location|schemaLocation)="([^"]*)"', response.text))


def served(
    settings: Settings, clock: PinnedClock, **changes: object
) -> AbstractContextManager[str]:
    """The whole app under ``settings`` with ``changes``, checked as the environment would be;
    an instance of its own (its own audit spool, beside the session's gateway)."""
    own = {"instance_id": f"{settings.instance_id}-{uuid.uuid4().hex[:8]}"}
    checked = Settings.model_validate(settings.model_dump() | own | changes)
    return serve(create_app(checked, clock=clock))


def test_an_untrusted_peer_cannot_choose_the_wsdls_addresses(live_url: str) -> None:
    # The session's app trusts no proxy: 127.0.0.1's forwarded headers are ignored.
    assert wsdl_addresses(live_url, **FORWARDED) == {
        f"{live_url}/soap/v1",
        f"{live_url}/soap/v1?xsd",
    }


@pytest.mark.parametrize("path", ["/soap/v1/", "/soap/v1/x", "/soap/v2"])
def test_a_path_beside_the_endpoint_is_a_soap_fault_not_a_redirect(
    live_url: str, path: str
) -> None:
    response = httpx.post(
        f"{live_url}{path}", content=b"<e:Envelope/>", headers={"content-type": CT12}
    )
    assert response.status_code == 404 and "location" not in response.headers
    answer = read_answer(response)  # a SOAP 1.2 envelope, as the request spoke
    assert (answer.version, answer.code) == ("1.2", "client.not_found"), answer


def test_a_trusted_proxy_gives_the_wsdls_scheme_and_host(
    settings: Settings, clock: PinnedClock
) -> None:
    with served(settings, clock, trusted_proxies=["127.0.0.0/8"]) as base:
        assert wsdl_addresses(base, **FORWARDED) == {
            "https://partners.sso.example/soap/v1",
            "https://partners.sso.example/soap/v1?xsd",
        }
        assert wsdl_addresses(base) == {f"{base}/soap/v1", f"{base}/soap/v1?xsd"}


def test_the_public_base_url_wins_over_everything(settings: Settings, clock: PinnedClock) -> None:
    with served(
        settings,
        clock,
        public_base_url="https://gateway.sso.go.th/",
        trusted_proxies=["127.0.0.0/8"],
    ) as base:
        for headers in (FORWARDED, {}):
            assert wsdl_addresses(base, **headers) == {
                "https://gateway.sso.go.th/soap/v1",
                "https://gateway.sso.go.th/soap/v1?xsd",
            }


# --- SOAPAction ------------------------------------------------------------------------------
ACTION = "urn:sso:contribution:v1/{}"


@pytest.mark.parametrize("version", ["1.1", "1.2"])
async def test_a_confirm_sent_as_an_inquiry_is_refused_and_pays_nothing(
    gateway: Gateway,
    live_url: str,
    partner: PartnerCredentials,
    clock: PinnedClock,
    version: str,
) -> None:
    """A proxy that lets calls through by their SOAPAction sees what the gateway does."""
    nid = await s40_person(gateway)
    now = clock()
    txn = f"ACT-{uuid.uuid4().hex[:12]}"
    body = confirm_body(
        txn=txn,
        national_id=nid,
        section=40,
        months=[str(today())],
        amount="70.00",
        business_date=settlement_day(now),
        paid_at=now,
    )

    async def send(action: str) -> SoapAnswer:
        content = envelope(
            body, version=version, header=security(partner.username, partner.password)
        )
        if version == "1.1":
            headers = {"content-type": CT11, "soapaction": f'"{action}"'}
        else:
            headers = {"content-type": f'{CT12}; action="{action}"'}
        async with httpx.AsyncClient(base_url=live_url, timeout=10) as http:
            return read_answer(await http.post("/soap/v1", content=content, headers=headers))

    disguised = await send(ACTION.format("InquireContribution"))
    assert disguised.code == "client.invalid_envelope", disguised
    paid = "SELECT count(*) FROM payments WHERE partner_txn_id = $1"
    assert await gateway.db.primary.fetchval(paid, txn) == 0

    confirmed = await send(ACTION.format("ConfirmPayment"))
    assert confirmed.ok and confirmed.element == "ConfirmPaymentResponse", confirmed
    assert await gateway.db.primary.fetchval(paid, txn) == 1
