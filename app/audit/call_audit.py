"""Builds the one audit record of a call as the call learns who and what it touches.

Every record a use case leaves is built here, from the caller, the principal, the national
ID(s), the name the caller saw and the outcome; and here a record that cannot be committed
becomes the call's failure (``AuditUnavailable``), whatever the call was about to answer.

A call that writes (a confirm, a cancel, an option change) puts its success record into its own
transaction (``ok_within``), so the record and the write commit together or not at all; once
the transaction has committed, ``committed()`` makes the record the call's and asks the writer
to link it onto the chain. Until then a failure of the call is recorded as a refusal, through
the group commit, as for any other call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from app.admission.credentials import Credentials, UsernameToken
from app.admission.records import Caller
from app.admission.service import Admission
from app.audit.records import AuditRecord, AuditSink, AuditTransaction, commit_together
from app.errors import AccessRefused, AuditUnavailable, ServiceError
from app.observability.call_context import note_call
from app.principals.records import Principal


class AdmissionEvents(Protocol):
    def admission_refused(self, reason: str, protocol: str) -> None: ...


def refusal(error: AccessRefused) -> str:
    """Why ``error`` refused its caller, as one word of a fixed set (for metrics and logs): its
    reason (an ``Unauthenticated``'s, never told the caller), else its code without
    ``client.``."""
    return error.reason or error.code.removeprefix("client.")


class CallAudit:
    """Collects what a call touched; ``ok()`` or ``refused()`` commits its record once."""

    def __init__(
        self,
        *,
        sink: AuditSink,
        admission: Admission,
        caller: Caller,
        operation: str,
        source_ip: str | None,
        clock: Callable[[], datetime],
        events: AdmissionEvents | None = None,
    ) -> None:
        self._sink = sink
        self._admission = admission
        self._caller = caller
        self._operation = operation
        self._clock = clock
        self._events = events
        self._written = False
        self._in_transaction = False  # a success record waits in the call's transaction
        self.source_ip = source_ip
        self.principal: Principal | None = None
        self.principal_hint: str | None = None  # e.g. the username a refused partner gave
        self.national_id: str | None = None
        self.operator: str | None = caller.operator
        self.terminal: str | None = caller.terminal

    async def admit(self, credentials: Credentials, *, scope: str) -> Principal:
        """Admit the caller to this operation; the record names who it is (or claimed to be)."""
        if isinstance(credentials, UsernameToken):
            self.principal_hint = credentials.username[:64]
        principal = await self._admission.admit(
            caller=self._caller, credentials=credentials, operation=self._operation, scope=scope
        )
        self.principal = principal
        return principal

    async def ok(self, *, name_returned: str | None = None, **detail: Any) -> None:
        """Commit the record of a call that succeeded (before its answer leaves)."""
        await self._write("ok", name_returned, detail or None)

    async def ok_within(
        self, tx: AuditTransaction, *, name_returned: str | None = None, **detail: Any
    ) -> None:
        """Write the record of a call that succeeded into ``tx``, the transaction of the call's
        own writes; call ``committed()`` once that transaction has committed."""
        await tx.add_audit_record(self.ok_record(name_returned=name_returned, **detail))

    def ok_record(self, *, name_returned: str | None = None, **detail: Any) -> AuditRecord:
        """The record of a call that succeeded, for the call's own transaction to write in a
        statement of its own writes (``ok_within`` writes it alone); call ``committed()`` once
        that transaction has committed."""
        self._in_transaction = True
        return self._record(self._operation, "ok", self.national_id, name_returned, detail or None)

    def committed(self) -> None:
        """The transaction holding this call's record committed: the record is the call's (its
        chain link follows); a later failure of the call leaves no second record."""
        if not self._in_transaction or self._written:
            return
        self._written = True
        partner = self.principal.name if self.principal else None
        note_call(operation=self._operation, outcome="ok", partner=partner)
        self._sink.link_soon()

    async def refused(self, error: ServiceError) -> ServiceError:
        """Commit the record of a failed call; the error it fails with (AuditUnavailable if
        that record cannot be committed, whatever ``error`` was)."""
        if self._written or isinstance(error, AuditUnavailable):
            note_call(outcome=error.code)
            return error
        if isinstance(error, AccessRefused):
            note_call(reason=refusal(error))
            if self._events is not None:
                self._events.admission_refused(refusal(error), self._caller.protocol.value)
        detail: dict[str, Any] = {"message": error.audit_message[:300]}
        if error.reason is not None:  # a credential's reason is kept here, never told the caller
            detail["reason"] = error.reason
        try:
            await self._write(error.code, None, detail)
        except AuditUnavailable as failure:
            note_call(outcome=failure.code)
            return failure
        return error

    async def step(self, operation: str, *, at: datetime, **detail: Any) -> None:
        """Commit now a further record of this call: ``operation`` done at ``at`` (an export's
        start, before its first byte leaves); the call's own record still follows."""
        record = self._record(operation, "ok", None, None, detail or None)
        await self._sink.record(replace(record, at=at))

    async def people_seen(self, people: Iterable[tuple[str, str]], *, operation: str) -> None:
        """One record per person a listing showed (national ID, name as shown), committed now.

        A listing touches every ID on its page, so "who saw this ID?" must find it too; the
        records go through the group commit together.
        """
        records = [
            self._record(operation, "ok", national_id, name, {"listed": True})
            for national_id, name in people
        ]
        await commit_together(self._sink, records)

    async def _write(self, outcome: str, name: str | None, detail: dict[str, Any] | None) -> None:
        record = self._record(self._operation, outcome, self.national_id, name, detail)
        self._written = True
        partner = self.principal.name if self.principal else None  # never the unchecked hint
        note_call(operation=self._operation, outcome=outcome, partner=partner)
        await self._sink.record(record)

    def _record(
        self,
        operation: str,
        outcome: str,
        national_id: str | None,
        name: str | None,
        detail: dict[str, Any] | None,
    ) -> AuditRecord:
        principal = self.principal
        return AuditRecord(
            at=self._clock(),
            protocol=self._caller.protocol.value,
            operation=operation,
            outcome=outcome,
            request_id=self._caller.request_id,
            principal_kind=principal.kind if principal else "anonymous",
            principal_id=principal.id if principal else None,
            principal_name=principal.name if principal else self.principal_hint,
            operator=self.operator,
            terminal=self.terminal,
            source_ip=self.source_ip,
            national_id=national_id,
            name_returned=name,
            detail=detail,
        )
