"""A SOAP envelope read from a request body: size-capped, hardened, namespace-aware.

Reading happens in one pass over at most ``max_body_bytes``: ``BodyGuard`` checks the
stream as it arrives (size, DOCTYPE, entities, depth, element count, well-formedness) and
builds the tree (``xml_reader.py``, xmltodict's shape) under the fixed prefixes of
``namespaces.py``, so clients may use any prefixes they like. The envelope's namespace must
match the version of the Content-Type; the Body must hold exactly one element, the operation's
request (WS-I BP R2201).

The tree's elements are read strictly by the helpers below (``single``, ``repeated``,
``child_elements``, ``simple_text``, ``attribute``): an element is ``None`` (empty), a ``str``
(text only), a ``dict`` (attributes as ``@name``, text as ``#text``, children by name) or, for
a name that repeats, a ``list``; a shape the schema does not want raises ``Shape``, which each
caller turns into its own error (envelope, payload or credential).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from app.errors import InvalidSoapEnvelope
from app.frozen_records import quick_init
from app.soap.media_type import MediaType
from app.soap.namespaces import WSSE, display_name, split_name
from app.soap.refusals import EnvelopeRefused, FaultKind
from app.soap.versions import SoapVersion
from app.soap.xml_reader import (
    XML_SPACE,
    BodyGuard,
    Document,
    XmlLimits,
    body_too_large,
    parse_document,
)

_TEXT: Final = "#text"
_NIL: Final = "@xsi:nil"


class Shape(Exception):
    """A parsed element is not shaped as expected; ``problem`` is a stable word for it."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


def single(value: object) -> object:
    """An element that may appear once."""
    if isinstance(value, list):
        raise Shape("repeated", "appears more than once")
    return value


def repeated(value: object) -> list[object]:
    """The occurrences of an element that may repeat."""
    return list(value) if isinstance(value, list) else [value]


def child_elements(value: object) -> dict[str, object]:
    """The child elements of an element by parsed name, attributes left out."""
    value = single(value)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Shape("text", "holds text where elements are expected")
    children = {key: child for key, child in value.items() if key[:1] != "@"}
    if _TEXT in children:
        raise Shape("text", "holds text where elements are expected")
    return children


def simple_text(value: object) -> str | None:
    """The text of a simple-typed element: "" when empty, None when it is xsi:nil."""
    value = single(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise Shape("invalid", "is not a simple value")
    if any(not key.startswith("@") and key != _TEXT for key in value):
        raise Shape("invalid", "holds elements where a simple value is expected")
    text = value.get(_TEXT, "")
    if value.get(_NIL) in ("true", "1"):
        if text:
            raise Shape("invalid", "is xsi:nil but not empty")
        return None
    return str(text)


def attribute(value: object, name: str) -> str | None:
    """An attribute of an element by parsed name (such as ``s11:mustUnderstand``), without
    the white space around it: every attribute read (booleans, URIs) collapses it (XSD)."""
    if isinstance(value, dict):
        found = value.get(f"@{name}")
        if isinstance(found, str):
            return found.strip(XML_SPACE)
    return None


#: Header blocks the gateway processes; any other marked mustUnderstand is refused.
UNDERSTOOD_HEADERS: Final = frozenset({(WSSE, "Security")})

# Who a header block is for when it names an actor (1.1) or a role (1.2): None means us.
_FOR_US: Final[Mapping[SoapVersion, frozenset[str | None]]] = MappingProxyType(
    {
        SoapVersion.V11: frozenset({None, "http://schemas.xmlsoap.org/soap/actor/next"}),
        SoapVersion.V12: frozenset(
            {
                None,
                "http://www.w3.org/2003/05/soap-envelope/role/next",
                "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver",
            }
        ),
    }
)


@quick_init
@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed request: its version, header blocks and the one element of its Body."""

    version: SoapVersion
    headers: Mapping[str, object]  # header blocks by parsed name, such as "wsse:Security"
    payload_name: str  # the Body's element by parsed name, such as "sso:ConfirmPayment"
    payload: object  # that element as xml_reader builds it (xmltodict's shape)

    def blocks_for_us(self, name: str) -> list[object]:
        """The header blocks of a name addressed to the gateway (not to another actor/role)."""
        return [
            block
            for block in repeated(self.headers.get(name))
            if block is not None and is_for_us(block, self.version)
        ]


def is_for_us(block: object, version: SoapVersion) -> bool:
    """Whether a header block is addressed to the gateway, the ultimate receiver."""
    prefix = version.read_prefix
    target = attribute(block, f"{prefix}:actor" if version is SoapVersion.V11 else f"{prefix}:role")
    return target in _FOR_US[version]


def _invalid(message: str, reason: str, **details: object) -> InvalidSoapEnvelope:
    return InvalidSoapEnvelope(message, reason=reason, **details)


async def read_envelope(
    chunks: AsyncIterable[bytes],
    *,
    media: MediaType,
    limits: XmlLimits,
    declared_length: int | None = None,
) -> Envelope:
    """Read a request body as it arrives and parse it as a SOAP envelope of ``media``."""
    if declared_length is not None and declared_length > limits.max_body_bytes:
        raise body_too_large(limits.max_body_bytes)
    guard = BodyGuard(limits, media.charset)
    async for chunk in chunks:
        guard.feed(chunk)
    return parse_envelope(guard.close(), expected=media.version)


def _version(root_name: str, expected: SoapVersion) -> SoapVersion:
    namespace, local = split_name(root_name)
    if local != "Envelope":
        raise _invalid(
            f"The body is not a SOAP envelope; its root element is {display_name(root_name)}.",
            "not_an_envelope",
        )
    for version in SoapVersion:
        if namespace != version.envelope_namespace:
            continue
        if version is not expected:
            # SOAP 1.2 part 2, appendix A: answer in the version the envelope is written in.
            raise EnvelopeRefused(
                _invalid(
                    f"A SOAP {version.value} envelope was sent as {expected.media_type}; "
                    f"SOAP {version.value} is sent as {version.media_type}.",
                    "version_mismatch",
                ),
                kind=FaultKind.VERSION_MISMATCH,
                version=version,
            )
        return version
    raise EnvelopeRefused(
        _invalid(
            f"The envelope namespace {namespace!r} is neither SOAP 1.1 nor SOAP 1.2.",
            "version_mismatch",
        ),
        kind=FaultKind.VERSION_MISMATCH,
    )


def _not_understood(headers: Mapping[str, object], version: SoapVersion) -> list[tuple[str, str]]:
    mandatory = f"{version.read_prefix}:mustUnderstand"
    missed: list[tuple[str, str]] = []
    for name, value in headers.items():
        qname = split_name(name)
        if qname in UNDERSTOOD_HEADERS:
            continue
        for block in repeated(value):
            if attribute(block, mandatory) in ("1", "true") and is_for_us(block, version):
                missed.append(qname)
                break
    return missed


def _children(value: object, where: str) -> dict[str, object]:
    try:
        return child_elements(value)
    except Shape as shape:
        raise _invalid(f"The {where} {shape.message}.", shape.problem) from None


def _structure(root: object, version: SoapVersion) -> Envelope:
    prefix = version.read_prefix
    header_name, body_name = f"{prefix}:Header", f"{prefix}:Body"
    children = _children(root, "Envelope")
    names = list(children)
    for name in names:
        if name not in (header_name, body_name):
            raise _invalid(
                f"The Envelope may hold only a Header and a Body, not {display_name(name)}.",
                "unexpected_element",
            )
    if body_name not in children:
        raise _invalid("The envelope has no Body.", "no_body")
    if header_name in children and names.index(header_name) > names.index(body_name):
        raise _invalid("The Header must come before the Body.", "header_after_body")
    headers = _children(children.get(header_name), "Header")
    payload = _children(children[body_name], "Body")
    if len(payload) != 1 or isinstance(next(iter(payload.values())), list):
        count = sum(len(repeated(value)) for value in payload.values())
        raise _invalid(
            f"The Body must hold exactly one element, the operation's request; it holds {count}.",
            "body_elements",
            count=count,
        )
    missed = _not_understood(headers, version)
    if missed:
        names_text = ", ".join(f"{{{ns}}}{local}" for ns, local in missed)
        raise EnvelopeRefused(
            _invalid(
                f"The mandatory header {names_text} is not understood by the gateway.",
                "must_understand",
                headers=names_text,
            ),
            kind=FaultKind.MUST_UNDERSTAND,
            not_understood=tuple(missed),
        )
    (payload_name, payload_value), *_ = payload.items()
    return Envelope(version, MappingProxyType(headers), payload_name, payload_value)


def parse_envelope(document: Document, *, expected: SoapVersion) -> Envelope:
    """Parse an accepted body as a SOAP envelope of the version its Content-Type names."""
    (root_name, root), *_ = parse_document(document).items()
    return _structure(root, _version(root_name, expected))
