"""More app instances on the session's database, as a fleet behind a load balancer has: each
its own ``Gateway`` (pools, caches, nonce memory, listener), spool and instance id."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from app.admission.credentials import Credentials
from app.admission.records import Caller, Protocol
from app.errors import ServiceError, Unauthenticated
from app.main import Gateway, build_gateway, start_gateway, stop_gateway
from app.settings import Settings
from tests.support.clock import PinnedClock


@asynccontextmanager
async def instance(
    settings: Settings, clock: PinnedClock, name: str, **changes: Any
) -> AsyncIterator[Gateway]:
    """A started instance named ``<session id>-<name>``, listening for principal changes."""
    own = settings.model_copy(update={"instance_id": f"{settings.instance_id}-{name}", **changes})
    gw = build_gateway(own, clock=clock)
    await start_gateway(gw)
    try:
        async with asyncio.timeout(10):
            await gw.principal_changes.listening.wait()
        yield gw
    finally:
        await stop_gateway(gw)


async def verdict(
    gw: Gateway,
    credentials: Credentials,
    *,
    operation: str = "InquireContribution",
    scope: str = "counter",
) -> str:
    """``ok`` if ``gw`` admits the call, else why not: an unauthenticated caller's reason (kept
    for the audit trail), another refusal's code."""
    try:
        await gw.admission.admit(
            caller=Caller(Protocol.SOAP, "127.0.0.1", uuid.uuid4().hex),
            credentials=credentials,
            operation=operation,
            scope=scope,
        )
    except Unauthenticated as refused:
        return refused.reason
    except ServiceError as error:  # refused later: client.operation_not_allowed, ...
        return error.code
    return "ok"


async def seconds_until(
    ask: Callable[[], Awaitable[str]], expected: str, *, limit_s: float = 5.0
) -> float:
    """How long until ``ask()`` answers ``expected`` (AssertionError after ``limit_s``)."""
    started = time.monotonic()
    while (answer := await ask()) != expected:
        waited = time.monotonic() - started
        assert waited < limit_s, f"still {answer!r} after {waited:.1f} s, not {expected!r}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started
