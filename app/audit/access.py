"""The audit trail for auditors over the API: lookups by national ID and chain verification.

Scope ``audit``. A lookup touches a national ID, so it leaves its own audit record (refusals
included) before its answer leaves; ``AuditService`` does the validation, paging and queries.
"""

from __future__ import annotations

from datetime import datetime

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.admin_gate import AUDIT_SCOPE, AdminGate, Admitted
from app.audit.records import VerifyResult
from app.audit.service import AuditService, LookupPage


class AuditAccess:
    """Admitted, audited access to ``AuditService``."""

    def __init__(self, *, gate: AdminGate, service: AuditService) -> None:
        self._gate = gate
        self._service = service

    async def lookups(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        national_id: str,
        from_: datetime | None = None,
        to: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> LookupPage:
        """Who touched ``national_id`` in ``[from_, to)``: one page, newest first."""

        async def body(call: Admitted) -> LookupPage:
            assert call.national_id is not None
            page = await self._service.lookups(
                call.national_id, from_=from_, to=to, limit=limit, cursor=cursor
            )
            await call.audit.ok(name_returned=page.names_shown, records_returned=len(page.records))
            return page

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation="AuditLookups",
            scope=AUDIT_SCOPE,
            body=body,
            national_id=national_id,
        )

    async def verify(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        from_: datetime | None = None,
        to: datetime | None = None,
    ) -> VerifyResult:
        """Recompute the hash chain over ``[from_, to)`` (all of it when unbounded)."""
        await self._gate.admit(
            caller=caller, credentials=credentials, operation="AuditVerify", scope=AUDIT_SCOPE
        )
        return await self._service.verify(from_=from_, to=to)
