"""Serving with a graceful drain: on SIGTERM, /readyz turns 503 first, then uvicorn stops.

A load balancer polling /readyz stops sending new requests during ``drain_s``; then uvicorn
stops accepting connections, lets in-flight requests finish (up to its graceful timeout) and
runs the app's shutdown, which flushes the audit queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import FrameType

import uvicorn


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose first exit signal starts a drain instead of stopping at once."""

    def __init__(
        self, config: uvicorn.Config, *, drain_s: float, begin_drain: Callable[[], None]
    ) -> None:
        super().__init__(config)
        self._drain_s = drain_s
        self._begin_drain = begin_drain
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self._drain_s <= 0:
            if not self._draining:
                self._begin_drain()
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self._begin_drain()
        timer = threading.Timer(self._drain_s, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()
