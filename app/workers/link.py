"""A worker's line to its supervisor (``app.workers.supervisor``): it says when the worker
serves, fetches the group's exposition for a scrape of /metrics, hands over the worker's own
when asked, and notices when the supervisor is gone.

A supervisor that dies without stopping its workers (killed with SIGKILL) leaves them
orphans holding the port: at the end of file on the line, the worker stops at once (its
listener closes, calls in flight finish), so a server started again on the port does not
share it with them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

from app.workers.channel import (
    GROUP_ANSWER,
    GROUP_ASKED,
    GROUP_FAILED,
    OWN_ANSWER,
    OWN_ASKED,
    READY,
    frame,
    read_frame,
)

log = logging.getLogger("ssogw.workers")

#: How long a scrape waits for the group's exposition; then /metrics answers 503.
GROUP_TIMEOUT_S = 8.0


class WorkerLink:
    """Worker ``index`` of ``workers``, on the line inherited as descriptor ``fd``."""

    def __init__(self, *, index: int, workers: int, fd: int) -> None:
        self.index = index
        self.workers = workers
        self._fd = fd
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.Task[None] | None = None
        self._own: Callable[[], Awaitable[bytes]] | None = None
        self._orphaned: Callable[[], None] | None = None
        self._waiting: asyncio.Future[bytes | None] | None = None
        self._asking = asyncio.Lock()
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()

    def when_orphaned(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` if the supervisor goes away while this worker runs."""
        self._orphaned = callback

    async def start(self, own: Callable[[], Awaitable[bytes]]) -> None:
        """Open the line and tell the supervisor this worker serves; ``own`` is its own
        exposition, handed over when the supervisor asks."""
        self._own = own
        reader, self._writer = await asyncio.open_unix_connection(
            sock=socket.socket(fileno=self._fd)
        )
        self._reader = asyncio.create_task(self._listen(reader), name="supervisor-line")
        self._writer.write(frame(READY))

    async def stop(self) -> None:
        """Close the line (the worker is stopping)."""
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def group_exposition(self) -> bytes | None:
        """The whole group's exposition, or None if the supervisor could not give it within
        ``GROUP_TIMEOUT_S`` of the scrape's arrival (its wait for a scrape before it counted)."""
        try:
            async with asyncio.timeout(GROUP_TIMEOUT_S), self._asking:
                writer = self._writer
                if writer is None:
                    return None
                waiting = self._waiting = asyncio.get_running_loop().create_future()
                try:
                    writer.write(frame(GROUP_ASKED))
                    answer: bytes | None = await waiting
                    return answer
                finally:
                    self._waiting = None
        except (TimeoutError, ConnectionError, OSError):
            log.warning("the supervisor did not give the group's metrics in time")
            return None

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        while (got := await read_frame(reader)) is not None:
            kind, payload = got
            if kind == OWN_ASKED:
                task = asyncio.create_task(self._hand_over())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif kind in (GROUP_ANSWER, GROUP_FAILED):
                if kind == GROUP_FAILED:
                    log.error("the group's metrics: %s", payload.decode(errors="replace"))
                waiting = self._waiting
                if waiting is not None and not waiting.done():
                    waiting.set_result(payload if kind == GROUP_ANSWER else None)
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(None)
        if not self._closing:
            log.error("worker %d: the supervisor is gone; stopping", self.index)
            if self._orphaned is not None:
                self._orphaned()

    async def _hand_over(self) -> None:
        assert self._own is not None
        body = await self._own()
        if self._writer is not None and not self._closing:
            self._writer.write(frame(OWN_ANSWER, body))
