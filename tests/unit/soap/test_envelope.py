"""Envelopes parsed namespace-aware under fixed prefixes, and refused when malformed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.errors import InvalidSoapEnvelope
from app.soap.envelope import Envelope, child_elements, parse_envelope, read_envelope
from app.soap.media_type import MediaType
from app.soap.refusals import EnvelopeRefused, FaultKind
from app.soap.versions import SoapVersion
from app.soap.xml_reader import Document, XmlLimits
from tests.unit.soap.envelopes import SOAP11, SOAP12, SSO, WSSE, envelope, inquire


def _parse(data: bytes, version: SoapVersion = SoapVersion.V11) -> Envelope:
    return parse_envelope(Document(data, None), expected=version)


def _reason(data: bytes, version: SoapVersion = SoapVersion.V11) -> str:
    with pytest.raises(InvalidSoapEnvelope) as refused:
        _parse(data, version)
    return str(refused.value.details["reason"])


@pytest.mark.parametrize(
    "data",
    [
        # the prefixes a client picks do not matter
        f'<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Body>'
        f'<ns2:InquireContribution xmlns:ns2="{SSO}"><ns2:nationalId>1</ns2:nationalId>'
        "</ns2:InquireContribution></soapenv:Body></soapenv:Envelope>",
        # a default namespace for the payload
        f'<S:Envelope xmlns:S="{SOAP11}"><S:Body><InquireContribution xmlns="{SSO}">'
        "<nationalId>1</nationalId></InquireContribution></S:Body></S:Envelope>",
        # a default namespace for everything, declared on the root
        f'<Envelope xmlns="{SOAP11}"><Body><x:InquireContribution xmlns:x="{SSO}">'
        "<x:nationalId>1</x:nationalId></x:InquireContribution></Body></Envelope>",
        # the same prefix bound to different namespaces at different depths
        f'<a:Envelope xmlns:a="{SOAP11}"><a:Body><a:InquireContribution xmlns:a="{SSO}">'
        "<a:nationalId>1</a:nationalId></a:InquireContribution></a:Body></a:Envelope>",
    ],
)
def test_any_prefixes_read_the_same(data: str) -> None:
    parsed = _parse(data.encode())
    assert parsed.version is SoapVersion.V11
    assert parsed.payload_name == "sso:InquireContribution"
    assert child_elements(parsed.payload) == {"sso:nationalId": "1"}


def test_headers_are_kept_by_their_fixed_prefix_name() -> None:
    parsed = _parse(envelope(inquire(), version="1.2"), SoapVersion.V12)
    assert parsed.version is SoapVersion.V12
    assert set(parsed.headers) == {"wsse:Security"}


def test_a_version_mismatch_is_answered_in_the_version_of_the_envelope() -> None:
    with pytest.raises(EnvelopeRefused) as refused:
        _parse(envelope(inquire(), version="1.2"), SoapVersion.V11)
    assert refused.value.kind is FaultKind.VERSION_MISMATCH
    assert refused.value.version is SoapVersion.V12
    with pytest.raises(EnvelopeRefused) as refused:
        _parse(envelope(inquire(), version="1.1"), SoapVersion.V12)
    assert refused.value.version is SoapVersion.V11


def test_an_unknown_envelope_namespace_is_a_version_mismatch() -> None:
    data = b'<e:Envelope xmlns:e="urn:soap:2.0"><e:Body/></e:Envelope>'
    with pytest.raises(EnvelopeRefused) as refused:
        _parse(data)
    assert refused.value.kind is FaultKind.VERSION_MISMATCH
    assert refused.value.version is None  # answered in the Content-Type's version


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (f'<x:Thing xmlns:x="{SOAP11}"/>', "not_an_envelope"),
        ("<html><body>hello</body></html>", "not_an_envelope"),
        (f'<e:Envelope xmlns:e="{SOAP11}"/>', "no_body"),
        (f'<e:Envelope xmlns:e="{SOAP11}"><e:Header/></e:Envelope>', "no_body"),
        (f'<e:Envelope xmlns:e="{SOAP11}"><e:Body/><e:Header/></e:Envelope>', "header_after_body"),
        (f'<e:Envelope xmlns:e="{SOAP11}"><e:Body/></e:Envelope>', "body_elements"),
        (f'<e:Envelope xmlns:e="{SOAP11}"><e:Body>text</e:Body></e:Envelope>', "text"),
        (f'<e:Envelope xmlns:e="{SOAP11}"><e:Body/><e:Body/></e:Envelope>', "repeated"),
        (
            f'<e:Envelope xmlns:e="{SOAP11}"><e:Body/><e:Trailer/></e:Envelope>',
            "unexpected_element",
        ),
        (
            f'<e:Envelope xmlns:e="{SOAP11}"><e:Body><a xmlns="{SSO}"/><b xmlns="{SSO}"/>'
            "</e:Body></e:Envelope>",
            "body_elements",
        ),
        (
            f'<e:Envelope xmlns:e="{SOAP11}"><e:Body><a xmlns="{SSO}"/><a xmlns="{SSO}"/>'
            "</e:Body></e:Envelope>",
            "body_elements",
        ),
    ],
)
def test_malformed_envelopes(data: str, reason: str) -> None:
    assert _reason(data.encode()) == reason


def _with_header(header: str, version: str = "1.1") -> bytes:
    return envelope(inquire(), version=version, header=header)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_an_unknown_mandatory_header_is_refused_with_must_understand(version: str) -> None:
    ns = SOAP11 if version == "1.1" else SOAP12
    flag = "1" if version == "1.1" else "true"
    header = f'<t:Trace xmlns:t="urn:trace" xmlns:e="{ns}" e:mustUnderstand="{flag}">1</t:Trace>'
    expected = SoapVersion.V11 if version == "1.1" else SoapVersion.V12
    with pytest.raises(EnvelopeRefused) as refused:
        _parse(_with_header(header, version), expected)
    assert refused.value.kind is FaultKind.MUST_UNDERSTAND
    assert refused.value.not_understood == (("urn:trace", "Trace"),)


@pytest.mark.parametrize(
    "header",
    [
        # optional headers are ignored
        '<t:Trace xmlns:t="urn:trace">1</t:Trace>',
        f'<t:Trace xmlns:t="urn:trace" xmlns:e="{SOAP11}" e:mustUnderstand="0">1</t:Trace>',
        # a mandatory header for another actor is not ours to understand
        f'<t:Trace xmlns:t="urn:trace" xmlns:e="{SOAP11}" e:mustUnderstand="1" '
        'e:actor="urn:some-proxy">1</t:Trace>',
        # wsse:Security is understood
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:e="{SOAP11}" e:mustUnderstand="1"/>',
    ],
)
def test_headers_that_need_no_understanding(header: str) -> None:
    assert _parse(_with_header(header)).payload_name == "sso:InquireContribution"


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_read_envelope_refuses_a_declared_length_over_the_cap_without_reading() -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""  # makes this an async generator

    with pytest.raises(EnvelopeRefused) as refused:
        await read_envelope(
            never(),
            media=MediaType(SoapVersion.V11),
            limits=XmlLimits(max_body_bytes=100),
            declared_length=101,
        )
    assert refused.value.http_status == 413


async def test_read_envelope_accepts_a_body_in_many_chunks() -> None:
    data = envelope(inquire())
    parts = [data[i : i + 7] for i in range(0, len(data), 7)]
    parsed = await read_envelope(
        _chunks(*parts), media=MediaType(SoapVersion.V11, "utf-8"), limits=XmlLimits()
    )
    assert parsed.payload_name == "sso:InquireContribution"
