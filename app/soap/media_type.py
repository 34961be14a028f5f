"""Which SOAP version a request speaks according to its Content-Type, and in what charset.

The ``charset`` parameter, when given, decides how the body is decoded and overrides the XML
declaration (RFC 7303); without it the parser detects the encoding from a BOM or the XML
declaration. A Content-Type that is not SOAP is refused with HTTP 415 (WS-I BP R1115).

``windows-874``, the Thai code page of Windows POS terminals, is accepted in both places and
read with Python's ``cp874`` codec: TIS-620 with the euro sign, the ellipsis, curly quotes, a
bullet, dashes and a no-break space in 0x80-0xA0. Python does not know the name itself.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Final, TypeVar

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

# Charset names in use that Python's codec registry does not know, and the codec that reads
# them: windows-874 (IANA; .NET's name) and x-windows-874 (Java's). TIS-620 is read as
# windows-874 too, as the WHATWG Encoding Standard and browsers do: POS terminals label their
# Windows code page TIS-620, and Python's strict tis-620 would turn its ellipsis, dashes and
# quotes (0x80-0x9F) into control characters.
_ALIASES: Final = {
    "windows-874": "cp874",
    "x-windows-874": "cp874",
    "tis-620": "cp874",
    "tis620": "cp874",
    "tis_620": "cp874",
}

# The names expat reads by itself (it compares them ignoring case). Any other declared name of
# an accepted encoding, even Python's alias of one of these (``utf8``, ``utf16``, ``latin1``), is
# decoded by the gateway: expat does not know the aliases, and pyexpat's fallback for an
# unknown name reads single-byte codecs only.
_EXPAT_NATIVE: Final = frozenset(
    ("utf-8", "utf-16", "utf-16le", "utf-16be", "us-ascii", "iso-8859-1")
)

# The byte order marks a declaration may follow, and the codec that reads what follows each.
_MARKS: Final = (
    (codecs.BOM_UTF8, "utf-8", 1),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    (codecs.BOM_UTF16_BE, "utf-16-be", 2),
)
_MARK_STARTS: Final = frozenset(mark[:1] for mark, _, _ in _MARKS)

# The encoding named by an XML declaration at the very start of a body.
# (A name of any length: the head it is read from is bounded, and a name cut short would leave
# the body to expat, whose fallback for a name it does not know asks Python's codec registry.)
_DECLARED: Final = re.compile(
    rb"<\?xml\s[^>]*?\bencoding\s*=\s*[\"']([A-Za-z][A-Za-z0-9._-]*)[\"']"
)
# UTF-16 without a byte order mark: how "<" begins a body in each byte order (XML 1.0,
# Appendix F).
_UNMARKED: Final = ((b"<\x00", "utf-16-le"), (b"\x00<", "utf-16-be"))
_UTF16: Final = {"utf_16": None, "utf_16_le": "utf-16-le", "utf_16_be": "utf-16-be"}

_EXPECTED: Final = "send text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)"

#: Partners send the same few Content-Types on every call: what each says is read once and kept,
#: for this many different headers at most, each of at most ``_KEPT_LENGTH`` characters.
_KNOWN_CONTENT_TYPES: Final = 256
_KEPT_LENGTH: Final = 256

_Read = TypeVar("_Read")


def _kept(read: Callable[[str | None], _Read]) -> Callable[[str | None], _Read]:
    """``read``, with its answers for short Content-Types kept (a refusal is raised anew)."""
    cached = lru_cache(maxsize=_KNOWN_CONTENT_TYPES)(read)

    @wraps(read)
    def kept(content_type: str | None) -> _Read:
        if content_type is not None and len(content_type) > _KEPT_LENGTH:
            return read(content_type)
        return cached(content_type)

    return kept


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


def codec_of(charset: str) -> str | None:
    """The Python codec for a charset name a partner may send, or None when it is refused."""
    name = charset.strip().lower()
    try:
        codec = codecs.lookup(_ALIASES.get(name, name)).name
    except (LookupError, ValueError):  # ValueError: a name codecs cannot hold (a NUL in it)
        return None
    return codec if codec in _CHARSETS else None


def _utf16(head: bytes) -> str | None:
    """The codec of a body that begins in UTF-16: ``utf-16`` after a byte order mark (which it
    reads), ``utf-16-le`` or ``utf-16-be`` without one; None for any other start."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return next((codec for start, codec in _UNMARKED if head.startswith(start)), None)


def declaration_head(head: bytes, *, whole: bool) -> bytes | None:
    """The start of a body as an XML declaration is read from it (``declaration_text``); None
    while a declaration has begun and is not whole, unless the head is (``whole``: the body
    has ended or the head's bound is reached), when a declaration still open is refused
    (LookupError): its encoding could not be checked."""
    text = declaration_text(head)
    declaring = text.startswith(b"<?xml") or b"<?xml".startswith(text)
    if not declaring or b"?>" in text:
        return text
    if not whole:
        return None
    if text.startswith(b"<?xml"):
        raise LookupError("an XML declaration that does not end within the head")
    return text


def declaration_text(head: bytes) -> bytes:
    """After a byte order mark, or in UTF-16 without one, the head decoded (a declaration is
    ASCII); empty while a mark has not all arrived."""
    for start, codec in _UNMARKED:
        if head.startswith(start):
            return (
                head[: len(head) - len(head) % 2]
                .decode(codec, "replace")
                .encode("ascii", "replace")
            )
    if head[:1] not in _MARK_STARTS:
        return head
    for mark, codec, unit in _MARKS:
        if head.startswith(mark):
            whole = len(head) - (len(head) - len(mark)) % unit  # half a UTF-16 unit waits
            return head[len(mark) : whole].decode(codec, "replace").encode("ascii", "replace")
        if mark.startswith(head):
            return b""
    return head


def declared_codec(text: bytes, body: bytes = b"") -> str | None:
    """The codec the gateway decodes a body with when an XML declaration at the start of
    ``text`` (``declaration_head`` of the body's first bytes, ``body``) names an accepted
    encoding by a name expat does not read itself (TIS-620, windows-874, utf8, utf-16-le);
    None when there is no declaration or expat reads the name. LookupError when the declared
    encoding is not one a partner may send (the same allow-list as the Content-Type's), or is
    a UTF-16 whose byte order the body's first bytes contradict. A UTF-16 is read in the byte
    order the body begins with."""
    match = _DECLARED.match(text)
    if match is None:
        return None
    name = match[1].decode("ascii")
    codec = codec_of(name)
    if codec is None:
        raise LookupError(name)
    if name.lower() in _EXPAT_NATIVE:
        return None
    if codec in _UTF16 and (found := _utf16(body)) is not None:
        order = _UTF16[codec]
        if order is not None and found not in ("utf-16", order):
            raise LookupError(name)  # declared one byte order, written in the other
        return found if order is None or found != "utf-16" else codec
    return codec


def _unsupported(message: str, **details: str) -> EnvelopeRefused:
    return EnvelopeRefused(InvalidSoapEnvelope(message, **details), http_status=415)


@_kept
def version_of(content_type: str | None) -> SoapVersion:
    """The SOAP version a Content-Type most likely means, to answer even a bad request."""
    if content_type and _essence(content_type) == SoapVersion.V12.media_type:
        return SoapVersion.V12
    return SoapVersion.V11


@_kept
def action_parameter(content_type: str | None) -> str | None:
    """The SOAP 1.2 ``action`` parameter of a Content-Type, if it has one."""
    return _parameters(content_type).get("action") if content_type else None


@_kept
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
    codec = codec_of(charset)
    if codec is None:
        raise _unsupported(
            f"The charset {charset[:40]!r} is not supported; send UTF-8.", charset=charset[:40]
        )
    return MediaType(versions[essence], codec)
