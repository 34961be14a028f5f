"""The two SOAP versions and what tells them apart on the wire."""

from __future__ import annotations

from enum import Enum

from app.soap.namespaces import SOAP11_ENVELOPE, SOAP12_ENVELOPE


class SoapVersion(Enum):
    """SOAP 1.1 travels as ``text/xml``, SOAP 1.2 as ``application/soap+xml``."""

    V11 = "1.1"
    V12 = "1.2"

    @property
    def envelope_namespace(self) -> str:
        return SOAP11_ENVELOPE if self is SoapVersion.V11 else SOAP12_ENVELOPE

    @property
    def media_type(self) -> str:
        return "text/xml" if self is SoapVersion.V11 else "application/soap+xml"

    @property
    def content_type(self) -> str:
        """The Content-Type of what the gateway sends in this version."""
        return f"{self.media_type}; charset=utf-8"

    @property
    def read_prefix(self) -> str:
        """The prefix of this version's envelope names after parsing (see namespaces.py)."""
        return "s11" if self is SoapVersion.V11 else "s12"

    @property
    def write_prefix(self) -> str:
        """The prefix the gateway writes this version's envelope names with."""
        return "soap" if self is SoapVersion.V11 else "env"
