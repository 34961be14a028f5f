"""Attacks on session 20's protocol fixes (s20e), against the real gateway: XML declarations
naming an encoding, read by ``media_type.declared_codec`` / ``BodyGuard._declared``.

Every test here fails on the code it was written against, for the defect its docstring names.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from app.domain.months import Month
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.reliability.soap_wire import new_request_id, read_answer, security
from tests.support.people import add_person
from tests.support.rest_api import replicas
from tests.unit.soap.envelopes import envelope, operation

pytestmark = pytest.mark.db

THAI_OPERATOR = "สมศรี"


async def _s39_person(gateway: Gateway) -> str:
    async with gateway.db.primary.acquire() as conn:
        return await add_person(
            conn, section=39, coverage_start=Month(2020, 1), replicas=replicas(gateway)
        )


def _inquiry(partner: PartnerCredentials, nid: str, operator: str) -> str:
    """An inquiry envelope (text, no XML declaration) naming ``operator``."""
    body = operation(
        "InquireContribution",
        f"<c:nationalId>{nid}</c:nationalId><c:operatorId>{operator}</c:operatorId>",
    )
    text = envelope(body, header=security(partner.username, partner.password)).decode()
    return text.replace('<?xml version="1.0" encoding="utf-8"?>', "")


async def _post(live_url: str, raw: bytes, request_id: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live_url, timeout=10) as http:
        return await http.post(
            "/soap/v1",
            content=raw,
            headers={"content-type": "text/xml", "x-request-id": request_id},
        )


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
async def test_a_python_client_s_bom_less_utf16_declared_by_its_python_name_is_answered(
    gateway: Gateway, live_url: str, partner: PartnerCredentials, encoding: str
) -> None:
    """Defect: a partner's Python client that writes its envelope with
    ``ET.tostring(root, encoding="utf-16-le")`` (UTF-16LE without a byte order mark, declared
    ``encoding='utf-16-le'``; likewise ``utf-16-be``) and posts it as ``text/xml`` is refused
    with ``client.invalid_envelope``, "The XML declaration names an encoding this endpoint does
    not accept; send UTF-8", although ``utf-16-le`` is on the allow-list and the same body with
    a BOM, or labelled ``charset=utf-16-le``, is answered. Session 20's fix reads a declaration
    in ASCII or after a BOM only (``media_type.declaration_head``); in BOM-less UTF-16 (XML 1.0
    Appendix F: ``3C 00 3F 00`` / ``00 3C 00 3F``) it is never read, so the alias is left to
    expat, which knows only ``UTF-16LE``/``UTF-16BE``.
    Correct: the inquiry is answered, and its audit record names the Thai operator."""
    nid = await _s39_person(gateway)
    text = _inquiry(partner, nid, THAI_OPERATOR)
    raw = ET.tostring(ET.fromstring(text), encoding=encoding)
    assert raw.startswith(f"<?xml version='1.0' encoding='{encoding}'?>".encode(encoding))
    request_id = new_request_id()
    response = await _post(live_url, raw, request_id)
    answer = read_answer(response)
    assert answer.ok, (answer, response.text[:600])
    operators = await gateway.db.primary.fetch(
        "SELECT operator FROM audit_log WHERE request_id = $1", request_id
    )
    assert [r["operator"] for r in operators] == [THAI_OPERATOR]


async def test_a_declared_encoding_outside_the_allow_list_is_refused_by_a_long_name(
    gateway: Gateway, live_url: str, partner: PartnerCredentials
) -> None:
    """Defect: the gateway takes a body in any single-byte encoding Python knows, KOI8-R here,
    when the XML declaration spells the name in more than 40 characters
    (``encoding='koi8-------…-------r'``): ``media_type._DECLARED`` matches names of at most
    40 characters, so ``declared_codec`` reports no declaration, expat gets the body
    undecoded, and pyexpat's fallback asks Python's codec registry, which folds the
    punctuation to ``koi8_r``. The short name ``koi8-r`` is refused (``client.invalid_envelope``,
    reason ``encoding``), as the allow-list (UTF-8, UTF-16, ASCII, Latin-1, TIS-620,
    windows-874; ``media_type._CHARSETS``) says; here the call is admitted and answered, and its
    audit record keeps whatever the bytes meant in KOI8-R.
    Correct: refused with ``client.invalid_envelope``, like the short name, and nothing
    audited as an answered inquiry."""
    nid = await _s39_person(gateway)
    name = "koi8" + "-" * 40 + "r"
    text = _inquiry(partner, nid, "\u0416")  # a Cyrillic Zhe: byte 0xF6 in KOI8-R
    raw = f"<?xml version='1.0' encoding='{name}'?>".encode("ascii") + text.encode("koi8-r")
    request_id = new_request_id()
    response = await _post(live_url, raw, request_id)
    answer = read_answer(response)
    assert not answer.ok and answer.code == "client.invalid_envelope", (
        answer,
        response.text[:600],
    )
