"""Changes of partners and clients, announced by the database to every serving instance.

A trigger on ``partners`` and ``api_clients`` (migration 0012) sends
``pg_notify('ssogw_principals', '<partner|client>:<id>')`` with every insert, update and
delete, delivered when the change commits, whichever instance or operator's command made it.
Each serving instance listens on a connection of its own to the primary and hands every
notice to ``on_change(kind, id)`` (``Admission.forget``): a disabled partner or client, a
rotated secret, a changed allowlist, limit or operations reach every instance within a
moment, not when its cache expires.

A notice sent while the listener was not connected is lost, so on every (re)connection, once
it listens again, it calls ``on_change(None, None)``: forget everything. A lost connection is
noticed at once when the server closes it (a restart, a failover, ``pg_terminate_backend``),
otherwise by a ``SELECT 1`` every ``health_interval_s``; it reconnects with backoff (0.1 s
doubling to ``max_backoff_s``) for as long as the instance runs, and never fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Protocol

import asyncpg

log = logging.getLogger(__name__)
#: Jitter from a generator of this module's own: the process-wide ``random`` is left to
#: whoever else draws from it (a property-based test running beside a served app, say).
_JITTER = random.Random()

CHANNEL = "ssogw_principals"
KINDS = frozenset({"partner", "client"})


class ChangeEvents(Protocol):
    """What the listener reports (``app.observability.metrics.Metrics``)."""

    def principal_changes_listening(self, listening: bool) -> None: ...

    def principal_change_received(self, kind: str) -> None: ...


def parse_notice(payload: str) -> tuple[str, int] | None:
    """``partner:12`` as ("partner", 12); None for anything else."""
    kind, _, ident = payload.partition(":")
    if kind not in KINDS or not ident.isdigit():
        return None
    return kind, int(ident)


class PrincipalChanges:
    """Listens for changes of partners and clients and passes each to ``on_change``."""

    def __init__(
        self,
        *,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        on_change: Callable[[str | None, int | None], None],
        events: ChangeEvents | None = None,
        health_interval_s: float = 5.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._connect = connect
        self._on_change = on_change
        self._events = events
        self._health_interval_s = health_interval_s
        self._max_backoff_s = max_backoff_s
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while a connection listens

    async def start(self) -> None:
        """Start listening in the background (once); it connects as soon as it can."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="principal-changes")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff, failures = 0.1, 0
        while True:
            try:
                await self._listen()
                backoff, failures = 0.1, 0  # it listened: the next outage starts afresh
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                # One line per outage, not one per attempt.
                (log.warning if failures == 1 else log.debug)(
                    "principal changes: not listening (%s); reconnecting", type(exc).__name__
                )
            await asyncio.sleep(backoff * _JITTER.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _listen(self) -> None:
        """One connection's life: listen, forget everything, deliver notices until it is lost."""
        conn = await self._connect()
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._notice)
            self._forget(None, None)  # notices sent while not listening are lost: forget all
            self._set_listening(True)
            log.info("principal changes: listening")
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._health_interval_s):
                        await lost.wait()
                if not lost.is_set():  # a network gone silent closes nothing: ask
                    await conn.fetchval("SELECT 1", timeout=self._health_interval_s)
            log.warning("principal changes: connection lost; reconnecting")
        finally:
            self._set_listening(False)
            if not conn.is_closed():
                conn.terminate()

    def _notice(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        parsed = parse_notice(payload)
        if parsed is None:
            log.warning("principal changes: a notice of an unknown form; forgetting all")
            self._forget(None, None)
        else:
            self._forget(*parsed)

    def _forget(self, kind: str | None, ident: int | None) -> None:
        try:
            self._on_change(kind, ident)
        except Exception:  # a defect in the hook must not stop the listener
            log.exception("principal changes: forgetting %s %s failed", kind, ident)
        if self._events is not None:
            self._events.principal_change_received(kind or "all")

    def _set_listening(self, listening: bool) -> None:
        (self.listening.set if listening else self.listening.clear)()
        if self._events is not None:
            self._events.principal_changes_listening(listening)
