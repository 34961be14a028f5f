"""Who is calling, as an adapter saw it, before admission."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.frozen_records import quick_init


class Protocol(StrEnum):
    SOAP = "soap"
    REST = "rest"
    CLI = "cli"


@quick_init
@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as the adapter saw it, before admission."""

    protocol: Protocol
    source_ip: str  # the TCP peer
    request_id: str
    operator: str | None = None
    terminal: str | None = None
    forwarded_for: str | None = None  # X-Forwarded-For as received; believed only from a proxy
