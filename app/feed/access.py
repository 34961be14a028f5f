"""The partner feed over the API: admitted with scope admin, streamed, one audit record each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.admin_gate import ADMIN_SCOPE, AdminGate, Admitted
from app.audit.call_audit import CallAudit
from app.errors import ClientError, ServerError, ServiceError
from app.feed.records import OPERATION, START_OPERATION
from app.feed.service import MANIFEST_OPERATION, FeedExport, FeedPlan, FeedService


@dataclass(frozen=True, slots=True)
class FeedDownload:
    """An admitted, checked export: what it is now, its bytes as ``chunks`` is read."""

    plan: FeedPlan
    chunks: AsyncIterator[bytes]


class FeedAccess:
    """The partner feed for SSO's internal applications: scope ``admin``; one record an export.

    The export runs in a task of its own that fills a short queue as the reader empties it:
    a slow reader slows the COPY, and no more than ``buffer`` chunks are ever held.
    """

    def __init__(self, *, gate: AdminGate, service: FeedService, buffer: int = 8) -> None:
        self._gate = gate
        self._service = service
        self._buffer = buffer
        self._running: set[asyncio.Task[None]] = set()

    async def download(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        partner: str,
        section: int | None = None,
        file_format: str = "fixed",
    ) -> FeedDownload:
        """Admit the caller and plan the export; refusals are recorded here, before any byte.

        The export's start record (with its manifest of persons) is committed before the first
        chunk is handed over, its end record (the file's manifest, or why it stopped) before
        the last. A download nobody starts reading exports nothing and leaves no record.
        """

        async def body(call: Admitted) -> FeedDownload:
            plan = await self._service.plan(partner, section=section, file_format=file_format)
            return FeedDownload(plan, self._chunks(plan, call.audit))

        return await self._gate.audited(
            caller=caller, credentials=credentials, operation=OPERATION, scope=ADMIN_SCOPE,
            body=body,
        )  # fmt: skip

    async def latest(self, *, caller: Caller, credentials: Credentials, partner: str) -> FeedExport:
        """The manifest of the partner's newest export (it shows no national ID: no record)."""
        await self._gate.admit(
            caller=caller, credentials=credentials, operation=MANIFEST_OPERATION,
            scope=ADMIN_SCOPE,
        )  # fmt: skip
        return await self._service.latest(partner)

    async def _chunks(self, plan: FeedPlan, audit: CallAudit) -> AsyncIterator[bytes]:
        pipe: asyncio.Queue[bytes | None] = asyncio.Queue(self._buffer)
        producer = asyncio.create_task(self._produce(plan, audit, pipe), name="partner-feed")
        self._running.add(producer)  # a task nobody holds may be collected mid-export
        producer.add_done_callback(self._finished)
        try:
            while (chunk := await pipe.get()) is not None:
                yield chunk
            await producer  # raises what stopped the export
        finally:
            producer.cancel()  # the reader left early (a no-op once the export is over)

    async def _produce(
        self, plan: FeedPlan, audit: CallAudit, pipe: asyncio.Queue[bytes | None]
    ) -> None:
        try:
            # CSV chunks come as asyncpg's bytearrays; a reader wants bytes (free for bytes).
            manifest = await self._service.write(
                plan,
                lambda data: pipe.put(bytes(data)),
                lambda detail: audit.step(START_OPERATION, at=plan.generated_at, **detail),
            )
            await audit.ok(**manifest.audit_detail())
        except asyncio.CancelledError:  # nobody reads the pipe any more
            await audit.refused(ClientError("The reader left before the feed's end.",
                                            reason="abandoned"))  # fmt: skip
            raise
        except Exception as error:
            known = error if isinstance(error, ServiceError) else ServerError()
            failure = await audit.refused(known)
            await pipe.put(None)
            if failure is not known:  # AuditUnavailable: the record of the failure is not kept
                raise failure from error
            raise
        await pipe.put(None)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here; the reader, if still there, raises it
