"""The XML namespaces of the SOAP adapter and the fixed prefixes incoming XML is read under.

Clients choose their own prefixes; the parser maps every namespace it knows to the prefix
below, so ``s11:Envelope`` means the SOAP 1.1 envelope whatever the client wrote. Names in a
namespace not listed keep their full URI in Clark notation (``{urn:other}thing``), which no
prefixed name can equal (a namespace URI may well be ``sso``), and so never match.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

SOAP11_ENVELOPE: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENVELOPE: Final = "http://www.w3.org/2003/05/soap-envelope"
CONTRIBUTION: Final = "urn:sso:contribution:v1"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"

#: Namespace URI -> the prefix its names carry after parsing.
READ_PREFIXES: Final[Mapping[str, str]] = MappingProxyType(
    {
        SOAP11_ENVELOPE: "s11",
        SOAP12_ENVELOPE: "s12",
        CONTRIBUTION: "sso",
        WSSE: "wsse",
        WSU: "wsu",
        XSI: "xsi",
    }
)

_URIS: Final[Mapping[str, str]] = MappingProxyType({v: k for k, v in READ_PREFIXES.items()})


def sso(local: str) -> str:
    """The parsed name of an element of the contribution namespace."""
    return f"sso:{local}"


def split_name(name: str) -> tuple[str, str]:
    """A parsed element name as (namespace URI, local name); "" for no namespace."""
    if name[:1] == "{":  # a namespace of no fixed prefix, in Clark notation
        namespace, _, local = name[1:].rpartition("}")  # a URI may hold "}", a name may not
        return namespace, local
    namespace, sep, local = name.rpartition(":")
    if not sep:
        return "", name
    return _URIS.get(namespace, namespace), local


def display_name(name: str) -> str:
    """A parsed element name as people read it in a fault: local name, else Clark notation."""
    namespace, local = split_name(name)
    if namespace == CONTRIBUTION:
        return local
    if not namespace:
        return f"{local} (in no namespace)"
    return f"{{{namespace}}}{local}"
