"""One audit record: who touched which national ID, when, how, what they saw, and the outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A call that touched a national ID (or was refused before it could)."""

    at: datetime  # aware (UTC)
    protocol: str  # soap | rest | cli
    operation: str  # SOAP operation name or REST operation id
    outcome: str  # "ok" or the error code
    request_id: str
    principal_kind: str  # partner | client | operator | anonymous
    principal_id: int | None = None
    principal_name: str | None = None
    operator: str | None = None
    terminal: str | None = None
    source_ip: str | None = None
    national_id: str | None = None
    name_returned: str | None = None  # the insured person's name as the caller saw it
    detail: dict[str, Any] | None = None


class AuditSink(Protocol):
    """Where use cases put their records; ``record`` returns once the record is committed."""

    async def record(self, record: AuditRecord) -> None:
        """Commit ``record`` (batched with others); raise AuditUnavailable if it cannot be."""
        ...
