"""What the current call turned out to be (operation, partner, outcome), for metrics and logs.

The HTTP layer opens a context per request; the service layer fills it in as it learns who the
caller is and how the call ended. Values are bounded (operation names, registry names, error
codes, refusal reasons): never a national ID, an address or free text.

What the server tells an endpoint about a request goes in the request's ASGI scope under a key
of the gateway's own (``BODY_WHOLE``), set by ``ssogw serve``'s protocol only: a client's
headers are in ``scope["headers"]``, never at the scope's top level.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

#: In a request's scope once its whole body is in the server's hands
#: (``app.observability.guarded_http``): the body not yet read comes from the server's own
#: ``receive()`` without waiting, so an endpoint's bound on how long the body may take (the
#: SOAP endpoint's ``read_timeout_s``) has nothing left to time. It describes that
#: ``receive()``: a middleware that wraps ``receive`` with waits of its own must drop the key.
BODY_WHOLE: Final = "ssogw.body_whole"

#: A request id a client may give (X-Request-ID): letters, digits and ``._:-``, up to 128
#: characters, as the OpenAPI document says; the call keeps it (answers, logs, the audit
#: trail), and any other is replaced by a fresh one. One bound for the HTTP layer and both
#: adapters.
SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}", re.ASCII)


@dataclass(slots=True)
class CallContext:
    request_id: str
    protocol: str = "http"
    operation: str | None = None
    partner: str | None = None
    outcome: str | None = None
    reason: str | None = None  # why a refused caller was refused (a word of a fixed set)


_current: ContextVar[CallContext | None] = ContextVar("ssogw_call", default=None)


def begin_call(request_id: str, protocol: str) -> CallContext:
    """Open the context of a new call (the HTTP middleware does this)."""
    ctx = CallContext(request_id=request_id, protocol=protocol)
    _current.set(ctx)
    return ctx


def current_call() -> CallContext | None:
    """The context of the call being handled, if any."""
    return _current.get()


def note_call(
    *,
    operation: str | None = None,
    partner: str | None = None,
    outcome: str | None = None,
    reason: str | None = None,
) -> None:
    """Record what is known about the current call (no-op outside a call)."""
    ctx = _current.get()
    if ctx is None:
        return
    if operation is not None:
        ctx.operation = operation
    if partner is not None:
        ctx.partner = partner
    if outcome is not None:
        ctx.outcome = outcome
    if reason is not None:
        ctx.reason = reason
