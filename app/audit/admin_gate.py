"""The gate every non-counter use case passes: admitted by scope, audited when it touches an ID.

Internal applications call the insured-person, rate, partner, audit and statistics use cases
with a bearer token; each use case names the scope it needs (``admin`` or ``audit``). A call
that touches a national ID, or changes who may call the gateway, runs as an audited call
(``app.audit.audited_call``, the counter's frame too): exactly one audit record, refused calls
included, committed before the answer leaves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn, TypeVar

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.admission.service import Admission
from app.audit.audited_call import AuditedCalls
from app.audit.call_audit import AdmissionEvents, CallAudit, refusal
from app.audit.records import AuditSink
from app.domain.national_id import validate_national_id, well_formed_national_id
from app.errors import AccessRefused, ServiceError
from app.observability.call_context import note_call
from app.principals.records import Principal

T = TypeVar("T")

ADMIN_SCOPE = "admin"
AUDIT_SCOPE = "audit"


@dataclass(frozen=True, slots=True)
class Admitted:
    """An admitted call: who it is, its audit record in the making, and the ID it names."""

    principal: Principal
    audit: CallAudit
    national_id: str | None


class AdminGate:
    """Admits internal clients by scope and frames their calls with one audit record."""

    def __init__(
        self,
        *,
        admission: Admission,
        audit: AuditSink,
        prefixes: Mapping[int, frozenset[str]],
        events: AdmissionEvents | None = None,
        clock: Callable[[], datetime],  # the business clock (app.main)
    ) -> None:
        self._admission = admission
        self._prefixes = prefixes
        self._events = events
        self._calls = AuditedCalls(admission=admission, sink=audit, events=events, clock=clock)

    def forget_principals(self) -> None:
        """Drop this instance's cached partners and clients (after one of them changed)."""
        self._admission.forget()

    async def admit(
        self, *, caller: Caller, credentials: Credentials, operation: str, scope: str
    ) -> Principal:
        """Admit a call that touches no national ID (no audit record; refusals are counted)."""
        note_call(operation=operation)
        try:
            principal = await self._admission.admit(
                caller=caller, credentials=credentials, operation=operation, scope=scope
            )
        except AccessRefused as error:
            note_call(outcome=error.code, reason=refusal(error))
            if self._events is not None:
                self._events.admission_refused(refusal(error), caller.protocol.value)
            raise
        note_call(partner=principal.name)
        return principal

    async def audited(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        operation: str,
        scope: str,
        body: Callable[[Admitted], Awaitable[T]],
        national_id: str | None = None,
        section: int | None = None,
    ) -> T:
        """Admit, validate ``national_id`` (if given), run ``body``; one audit record in all.

        ``body`` commits the success record itself (``admitted.audit.ok(...)``) before it
        returns; any ``ServiceError`` is recorded as a refusal by the audited-call frame.
        """

        async def admitted(audit: CallAudit) -> T:
            # Named before admission, so a refused probe of a real ID is recorded with it; what
            # is wrong with the ID is told only to an admitted caller.
            audit.national_id = well_formed_national_id(national_id, prefixes=self._prefixes)
            principal = await audit.admit(credentials, scope=scope)
            nid = None
            if national_id is not None:
                nid = validate_national_id(national_id, section=section, prefixes=self._prefixes)
            return await body(Admitted(principal, audit, nid))

        return await self._calls.run(caller, operation, admitted)

    async def refuse(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        operation: str,
        scope: str,
        error: ServiceError,
        national_id: str | None = None,
    ) -> NoReturn:
        """Refuse a request the adapter could not read with ``error``, once its caller is
        admitted: a caller that is not learns only that. Audited when ``national_id`` (as sent)
        is a valid ID, as every call touching one is."""
        nid = well_formed_national_id(national_id, prefixes=self._prefixes)
        if nid is None:
            await self.admit(
                caller=caller, credentials=credentials, operation=operation, scope=scope
            )
            raise error

        async def refused(audit: CallAudit) -> NoReturn:
            audit.national_id = nid
            await audit.admit(credentials, scope=scope)
            raise error

        await self._calls.run(caller, operation, refused)

    async def people_seen(
        self, admitted: Admitted, *, operation: str, people: Iterable[tuple[str, str]]
    ) -> None:
        """One record per person a listing showed (national ID, name as shown), committed now."""
        await admitted.audit.people_seen(people, operation=operation)
