"""Which SOAP version a Content-Type means, and which are refused with HTTP 415."""

from __future__ import annotations

import pytest

from app.soap.media_type import (
    MediaType,
    codec_of,
    declaration_text,
    declared_codec,
    read_media_type,
    version_of,
)
from app.soap.refusals import EnvelopeRefused
from app.soap.versions import SoapVersion


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("text/xml", MediaType(SoapVersion.V11)),
        ("text/xml; charset=utf-8", MediaType(SoapVersion.V11, "utf-8")),
        ('Text/XML;Charset="UTF-8"', MediaType(SoapVersion.V11, "utf-8")),
        ("text/xml; charset=TIS-620", MediaType(SoapVersion.V11, "cp874")),  # its superset
        # The Thai code page of Windows POS terminals, by its IANA (.NET) and Java names.
        ("text/xml; charset=windows-874", MediaType(SoapVersion.V11, "cp874")),
        ('application/soap+xml; charset="Windows-874"', MediaType(SoapVersion.V12, "cp874")),
        ("text/xml; charset=x-windows-874", MediaType(SoapVersion.V11, "cp874")),
        ("application/soap+xml", MediaType(SoapVersion.V12)),
        (
            'application/soap+xml; charset=utf-8; action="urn:sso:contribution:v1/CancelPayment"',
            MediaType(SoapVersion.V12, "utf-8"),
        ),
        ("application/soap+xml;action=x;charset=latin-1", MediaType(SoapVersion.V12, "iso8859-1")),
    ],
)
def test_soap_content_types(header: str, expected: MediaType) -> None:
    assert read_media_type(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "application/json",
        "application/xml",
        "multipart/related; type=application/xop+xml",
        "text/xml; charset=klingon",
        "text/xml; charset=base64",  # a Python codec, but not a text encoding
        "text/xml; charset=utf-7",  # can hide markup
        "text/xml; charset=windows-1252",  # a Python codec, but not on the allow-list
    ],
)
def test_other_content_types_are_refused_with_415(header: str | None) -> None:
    with pytest.raises(EnvelopeRefused) as refused:
        read_media_type(header)
    assert refused.value.http_status == 415
    assert refused.value.error.code == "client.invalid_envelope"


def test_a_refused_request_is_answered_in_the_version_it_most_likely_speaks() -> None:
    assert version_of("application/soap+xml; charset=klingon") is SoapVersion.V12
    assert version_of("application/json") is SoapVersion.V11
    assert version_of(None) is SoapVersion.V11


@pytest.mark.parametrize(
    ("head", "codec"),
    [
        (b'<?xml version="1.0" encoding="windows-874"?><e:Envelope', "cp874"),
        (b"<?xml version='1.0' encoding='WINDOWS-874' standalone='yes'?>", "cp874"),
        (b'<?xml version="1.0" encoding = "x-windows-874"?>', "cp874"),
        # TIS-620 is read as windows-874, its superset (as the Encoding Standard does).
        (b'<?xml version="1.0" encoding="TIS-620"?>', "cp874"),
        # Names the XML parser reads itself are left to it; its aliases it does not know.
        (b'<?xml version="1.0" encoding="utf-8"?>', None),
        (b'<?xml version="1.0" encoding="UTF-16LE"?>', None),
        (b"<?xml version='1.0' encoding='utf8'?>", "utf-8"),  # ElementTree's, from "utf8"
        (b"<?xml version='1.0' encoding='utf16'?>", "utf-16"),
        (b"<?xml version='1.0' encoding='latin1'?>", "iso8859-1"),
        (b'<?xml version="1.0"?>', None),
        (b"<e:Envelope>", None),
        # Only a declaration at the very start counts, never text further on.
        (b' <?xml version="1.0" encoding="windows-874"?>', None),
        (b'<a>encoding="windows-874"?></a>', None),
    ],
)
def test_an_xml_declaration_naming_windows_874(head: bytes, codec: str | None) -> None:
    assert declared_codec(head) == codec


@pytest.mark.parametrize(
    ("head", "text"),
    [
        (b"<?xml", b"<?xml"),
        ("\ufeff<?xml".encode(), b"<?xml"),
        ("<?xml".encode("utf-16"), b"<?xml"),
        ("\ufeff<?xml".encode("utf-16-be"), b"<?xml"),
        ("<?x".encode("utf-16")[:-1], b"<?"),  # half a unit waits for the rest
        (b"\xff", b""),  # part of a mark
        (b"\xff\x00<", b"\xff\x00<"),  # no mark
    ],
)
def test_a_declaration_is_read_after_a_byte_order_mark(head: bytes, text: bytes) -> None:
    assert declaration_text(head) == text


@pytest.mark.parametrize("name", ["koi8-r", "windows-1252", "iso-8859-11", "utf-7", "base64"])
def test_an_xml_declaration_outside_the_allow_list_is_refused(name: str) -> None:
    with pytest.raises(LookupError):
        declared_codec(f'<?xml version="1.0" encoding="{name}"?>'.encode())


def test_tis_620_is_read_as_its_windows_superset() -> None:
    assert codec_of("TIS-620") == codec_of("windows-874") == "cp874"
    assert "สมชาย…–1".encode("cp874").decode(codec_of("tis-620") or "") == "สมชาย…–1"


def test_a_content_type_is_read_once_and_a_refusal_is_raised_every_time() -> None:
    sent = "text/xml; charset=utf-8; x-once=1"
    assert read_media_type(sent) is read_media_type(sent)  # kept: the same answer
    refused = "text/plain; x-once=1"
    raised = []
    for _ in range(2):
        with pytest.raises(EnvelopeRefused) as error:
            read_media_type(refused)
        raised.append(error.value)
    assert raised[0] is not raised[1]
    long_one = "text/xml; charset=utf-8; x-pad=" + "p" * 300
    assert read_media_type(long_one) == read_media_type(sent)
    assert read_media_type(long_one) is not read_media_type(long_one)  # not kept: too long
