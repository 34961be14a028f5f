"""A refusal the SOAP layer itself decides, and how its fault must differ from the usual one.

Most errors reach the adapter as a plain ``ServiceError`` and become a Client or Server fault
in the request's SOAP version. A few need more: an envelope of the wrong version is answered
with a VersionMismatch fault in the version the client spoke, an unknown mandatory header with
MustUnderstand, and transport problems with their own HTTP status (413, 415, 405).
"""

from __future__ import annotations

from enum import Enum

from app.errors import ClientError, ServiceError
from app.soap.versions import SoapVersion


class FaultKind(Enum):
    """The fault code family, named after SOAP 1.2 (SOAP 1.1 names in brackets)."""

    SENDER = "Sender"  # (Client)
    RECEIVER = "Receiver"  # (Server)
    VERSION_MISMATCH = "VersionMismatch"
    MUST_UNDERSTAND = "MustUnderstand"

    @classmethod
    def of(cls, error: ServiceError) -> FaultKind:
        """The usual kind of an error: the caller's fault or the gateway's."""
        return cls.SENDER if isinstance(error, ClientError) else cls.RECEIVER


class EnvelopeRefused(Exception):
    """A ``ServiceError`` plus how its fault must be rendered."""

    def __init__(
        self,
        error: ServiceError,
        *,
        kind: FaultKind | None = None,
        version: SoapVersion | None = None,
        http_status: int | None = None,
        not_understood: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.kind = kind or FaultKind.of(error)
        self.version = version  # answer in this version, not the request's
        self.http_status = http_status  # a transport status instead of the SOAP one
        self.not_understood = not_understood  # (namespace, local name) of mandatory headers
