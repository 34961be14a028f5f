"""Raw SOAP against the real gateway: a Windows POS terminal's Thai (windows-874) and Created
times written without an offset, the way partners' own stacks send them."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

import httpx
import pytest

from app.domain.calendar import BANGKOK
from app.domain.months import Month
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.reliability.soap_wire import inquire_body, new_request_id, read_answer, security
from tests.support.people import add_person
from tests.support.rest_api import replicas
from tests.unit.soap.envelopes import envelope, operation

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
        (UTC, "client.unauthenticated"),  # UTC without an offset is 7 hours off
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
        assert answer.reason == "stale_created"  # the refusal of any Created too far off
