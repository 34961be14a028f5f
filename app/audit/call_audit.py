"""Builds the one audit record of a call as the call learns who and what it touches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from app.admission.records import Caller
from app.audit.records import AuditRecord, AuditSink
from app.errors import AccessRefused, AuditUnavailable, ServiceError
from app.observability.call_context import note_call
from app.principals.records import Principal


class AdmissionEvents(Protocol):
    def admission_refused(self, reason: str, protocol: str) -> None: ...


class CallAudit:
    """Collects what a call touched; ``ok()`` or ``refused()`` commits its record once."""

    def __init__(
        self,
        *,
        sink: AuditSink,
        caller: Caller,
        operation: str,
        source_ip: str | None,
        clock: Callable[[], datetime],
        events: AdmissionEvents | None = None,
    ) -> None:
        self._sink = sink
        self._caller = caller
        self._operation = operation
        self._source_ip = source_ip
        self._clock = clock
        self._events = events
        self._written = False
        self.principal: Principal | None = None
        self.principal_hint: str | None = None  # e.g. the username a refused partner gave
        self.national_id: str | None = None
        self.operator: str | None = caller.operator
        self.terminal: str | None = caller.terminal

    async def ok(self, *, name_returned: str | None = None, **detail: Any) -> None:
        """Commit the record of a call that succeeded (before its answer leaves)."""
        await self._write("ok", name_returned, detail or None)

    async def refused(self, error: ServiceError) -> AuditUnavailable | None:
        """Commit the record of a failed call; returns AuditUnavailable if that failed too."""
        if self._written or isinstance(error, AuditUnavailable):
            return None
        if isinstance(error, AccessRefused) and self._events is not None:
            self._events.admission_refused(error.code, self._caller.protocol.value)
        detail: dict[str, Any] = {"message": error.message[:300]}
        reason = error.details.get("reason")
        if isinstance(reason, str):
            detail["reason"] = reason
        try:
            await self._write(error.code, None, detail)
        except AuditUnavailable as failure:
            return failure
        return None

    async def _write(self, outcome: str, name: str | None, detail: dict[str, Any] | None) -> None:
        principal = self.principal
        record = AuditRecord(
            at=self._clock(),
            protocol=self._caller.protocol.value,
            operation=self._operation,
            outcome=outcome,
            request_id=self._caller.request_id,
            principal_kind=principal.kind if principal else "anonymous",
            principal_id=principal.id if principal else None,
            principal_name=principal.name if principal else self.principal_hint,
            operator=self.operator,
            terminal=self.terminal,
            source_ip=self._source_ip,
            national_id=self.national_id,
            name_returned=name,
            detail=detail,
        )
        self._written = True
        note_call(
            operation=self._operation,
            outcome=outcome,
            partner=principal.name if principal else None,
        )
        await self._sink.record(record)
