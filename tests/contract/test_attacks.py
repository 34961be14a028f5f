"""Hostile envelopes over real HTTP: each answered with a Client fault, quickly, without
holding the attack in memory."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.contract.conftest import LiveServer
from tests.unit.soap.envelopes import fault_code, fault_entries, soap_fault_code

ATTACKS = Path(__file__).parent / "attacks"
SOAP11 = "text/xml; charset=utf-8"
TEN_MB = 10 * 1024 * 1024
QUICK_S = 0.5  # generous for a loaded CI machine; locally each takes a few milliseconds


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.base_url, timeout=30) as client:
        yield client


def _deep(levels: int, *, closed: bool) -> bytes:
    head = b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    return (
        head + b"<a>" * levels + (b"</a>" * levels + b"</s:Body></s:Envelope>" if closed else b"")
    )


def _send(
    http: httpx.Client, body: bytes | Iterator[bytes], **headers: str
) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = http.post("/soap/v1", content=body, headers={"content-type": SOAP11, **headers})
    return response, time.perf_counter() - started


def _assert_client_fault(response: httpx.Response, code: str, status: int = 500) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert soap_fault_code(response.content) == "soap:Client"
    assert fault_code(response.content) == code


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("billion_laughs", "doctype"),
        ("external_entity", "doctype"),
        ("parameter_entity", "doctype"),
        ("doctype", "doctype"),
        ("undeclared_entity", "not_well_formed"),
    ],
)
@pytest.mark.serial
def test_entity_attacks(
    http: httpx.Client, live_server: LiveServer, name: str, reason: str
) -> None:
    response, elapsed = _send(http, (ATTACKS / f"{name}.xml").read_bytes())
    _assert_client_fault(response, "client.invalid_envelope")
    assert fault_entries(response.content)["reason"] == reason
    assert b"root:" not in response.content  # nothing of /etc/passwd
    assert elapsed < QUICK_S
    assert live_server.fake.calls == []


@pytest.mark.serial
def test_ten_thousand_deep_nesting(http: httpx.Client) -> None:
    response, elapsed = _send(http, _deep(10_000, closed=False))
    _assert_client_fault(response, "client.invalid_envelope")
    assert fault_entries(response.content)["reason"] == "too_deep"
    assert elapsed < QUICK_S


@pytest.mark.serial
def test_ten_thousand_deep_nesting_closed_is_refused_too(http: httpx.Client) -> None:
    # Closed, the document is 70 KB: over the size cap before its depth is even looked at.
    response, elapsed = _send(http, _deep(10_000, closed=True))
    _assert_client_fault(response, "client.payload_too_large", status=413)
    assert elapsed < QUICK_S


@pytest.mark.serial
def test_many_elements(http: httpx.Client) -> None:
    head = b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a>'
    body = head + b"<b/>" * 15_000 + b"</a></s:Body></s:Envelope>"
    response, elapsed = _send(http, body)
    _assert_client_fault(response, "client.invalid_envelope")
    assert fault_entries(response.content)["reason"] == "too_many_elements"
    assert elapsed < QUICK_S


def test_ten_megabytes_with_a_content_length(http: httpx.Client) -> None:
    body = b"<a>" + b"x" * TEN_MB + b"</a>"
    response, elapsed = _send(http, body)
    _assert_client_fault(response, "client.payload_too_large", status=413)
    assert elapsed < 2


def test_ten_megabytes_streamed_without_a_length_and_no_memory_spike(http: httpx.Client) -> None:
    chunk = b"x" * 65_536

    def stream() -> Iterator[bytes]:
        yield b"<a>"
        for _ in range(TEN_MB // len(chunk)):
            yield chunk

    tracemalloc.start()
    try:
        response, elapsed = _send(http, stream())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _assert_client_fault(response, "client.payload_too_large", status=413)
    assert elapsed < 5
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes while 10 MB went by"


def test_the_server_still_answers_after_the_attacks(http: httpx.Client) -> None:
    from tests.unit.soap.envelopes import envelope, inquire

    response, _ = _send(http, envelope(inquire()))
    assert response.status_code == 200
