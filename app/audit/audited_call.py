"""The audited call: the one frame every use case that touches a national ID runs in.

The counter's operations and the internal applications' (through ``AdminGate``) both run
here. The use case admits its caller through its ``CallAudit``, names the IDs it touches and
commits its record with ``ok()`` before it answers (a write: with ``ok_within()``, in the
write's own transaction); a ``ServiceError`` it raises is recorded here as a refusal, and any
other exception (a defect) as ``server.internal`` before it propagates. A record
that cannot be committed fails the call with ``server.audit_unavailable`` — a refusal's record
included, whatever the refusal was — so a call never answers without its record on the trail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import lru_cache
from ipaddress import ip_address
from typing import TypeVar

from app.admission.records import Caller
from app.admission.service import Admission
from app.audit.call_audit import AdmissionEvents, CallAudit
from app.audit.records import AuditSink
from app.errors import AuditUnavailable, ServerError, ServiceError

T = TypeVar("T")


@lru_cache(maxsize=4096)  # a few addresses make every call: parse each once
def valid_ip(text: str) -> str | None:
    """``text`` as a normalised IP address, or None if it is not one."""
    try:
        return str(ip_address(text))
    except ValueError:
        return None


class AuditedCalls:
    """Runs use cases as audited calls: one record each, committed before the answer leaves."""

    def __init__(
        self,
        *,
        admission: Admission,
        sink: AuditSink,
        events: AdmissionEvents | None = None,
        clock: Callable[[], datetime],  # the business clock (app.main)
    ) -> None:
        self._admission = admission
        self._sink = sink
        self._events = events
        self._clock = clock

    async def run(
        self, caller: Caller, operation: str, body: Callable[[CallAudit], Awaitable[T]]
    ) -> T:
        """Run ``body`` with the call's record in the making; record a ServiceError it raises."""
        audit = CallAudit(
            sink=self._sink,
            admission=self._admission,
            caller=caller,
            operation=operation,
            source_ip=valid_ip(self._admission.source_address(caller)),
            clock=self._clock,
            events=self._events,
        )
        try:
            result = await body(audit)
        except ServiceError as error:
            failure = await audit.refused(error)
            if failure is error:
                raise
            raise failure from error
        except Exception as error:
            # A defect, not a refusal: still on the trail (as server.internal) before the
            # adapter answers 500; the record names no more than the call had established.
            failure = await audit.refused(ServerError())
            if isinstance(failure, AuditUnavailable):
                raise failure from error  # the record itself could not be committed
            raise
        # The body returned, so a transaction holding its record has committed (the use case
        # says so itself right after the commit; this covers one that did not).
        audit.committed()
        return result
