"""Which SOAP version a request speaks according to its Content-Type, and in what charset.

The ``charset`` parameter, when given, decides how the body is decoded and overrides the XML
declaration (RFC 7303); without it the parser detects the encoding from a BOM or the XML
declaration. A Content-Type that is not SOAP is refused with HTTP 415 (WS-I BP R1115).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Final

from app.errors import InvalidSoapEnvelope
from app.soap.refusals import EnvelopeRefused
from app.soap.versions import SoapVersion

# Encodings a partner may declare. Python knows codecs that are not text encodings (base64,
# rot13) or that can hide markup (utf-7); only these are accepted.
_CHARSETS: Final = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8",
        "utf-16",
        "utf-16-le",
        "utf-16-be",
        "us-ascii",
        "iso-8859-1",
        "tis-620",
        "cp874",
    )
)

_EXPECTED: Final = "send text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)"


@dataclass(frozen=True, slots=True)
class MediaType:
    """What a request's Content-Type says: the SOAP version and the charset, if any."""

    version: SoapVersion
    charset: str | None = None  # a Python codec name from the allow-list above


def _essence(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _parameters(content_type: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in content_type.split(";")[1:]:
        name, sep, value = item.partition("=")
        if sep:
            params[name.strip().lower()] = value.strip().strip('"').strip()
    return params


def _unsupported(message: str, **details: str) -> EnvelopeRefused:
    return EnvelopeRefused(InvalidSoapEnvelope(message, **details), http_status=415)


def version_of(content_type: str | None) -> SoapVersion:
    """The SOAP version a Content-Type most likely means, to answer even a bad request."""
    if content_type and _essence(content_type) == SoapVersion.V12.media_type:
        return SoapVersion.V12
    return SoapVersion.V11


def read_media_type(content_type: str | None) -> MediaType:
    """Read a request's Content-Type; refuse (HTTP 415) anything but SOAP 1.1 or 1.2."""
    if not content_type:
        raise _unsupported(f"The Content-Type header is missing; {_EXPECTED}.")
    essence = _essence(content_type)
    versions = {version.media_type: version for version in SoapVersion}
    if essence not in versions:
        raise _unsupported(
            f"The Content-Type {essence[:60]!r} is not supported; {_EXPECTED}.",
            contentType=essence[:60],
        )
    charset = _parameters(content_type).get("charset")
    if charset is None:
        return MediaType(versions[essence])
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        codec = ""
    if codec not in _CHARSETS:
        raise _unsupported(
            f"The charset {charset[:40]!r} is not supported; send UTF-8.", charset=charset[:40]
        )
    return MediaType(versions[essence], codec)
