"""Settlement for SSO's internal applications: admitted with scope admin, audited per call,
each person a page of result lines shows recorded before the answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import BinaryIO

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.admin_gate import ADMIN_SCOPE, AdminGate, Admitted
from app.settlement.service import (
    DEFAULT_LINES,
    IMPORTED,
    REPORTED,
    SettlementReport,
    SettlementService,
)


class SettlementAccess:
    """Settlement for SSO's internal applications: scope ``admin``, one audit record a call."""

    def __init__(self, *, gate: AdminGate, service: SettlementService) -> None:
        self._gate = gate
        self._service = service

    async def import_file(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        receive: Callable[[], Awaitable[tuple[BinaryIO, str | None]]],
        partner: str,
        business_date: date,
        file_format: str | None = None,
    ) -> SettlementReport:
        """Import a partner's file; ``receive`` reads it (and its name) once the caller is in."""

        async def body(call: Admitted) -> SettlementReport:
            source, file_name = await receive()
            report = await self._service.import_file(
                source,
                partner=partner,
                business_date=business_date,
                file_format=file_format,
                file_name=file_name,
                imported_by=f"{call.principal.kind}:{call.principal.name}",
            )
            await self._gate.people_seen(call, operation=IMPORTED, people=report.people())
            await call.audit.ok(settlement=report.record.id, replayed=report.replayed)
            return report

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation="ImportSettlement",
            scope=ADMIN_SCOPE,
            body=body,
        )

    async def report(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        import_id: int,
        limit: int = DEFAULT_LINES,
        cursor: str | None = None,
    ) -> SettlementReport:
        """A stored import's summary and a page of its lines, mismatches first."""

        async def body(call: Admitted) -> SettlementReport:
            report = await self._service.report(import_id, limit=limit, cursor=cursor)
            await self._gate.people_seen(call, operation=REPORTED, people=report.people())
            await call.audit.ok(settlement=import_id, lines=len(report.lines))
            return report

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation="GetSettlement",
            scope=ADMIN_SCOPE,
            body=body,
        )
