"""Serving with a graceful drain: on SIGTERM, /readyz turns 503 first, then uvicorn stops; and
room for the connections the server may hold (``allow_open_files``).

A load balancer polling /readyz stops sending new requests during ``drain_s``; then uvicorn
stops accepting connections, lets in-flight requests finish (up to its graceful timeout) and
runs the app's shutdown, which flushes the audit queue.
"""

from __future__ import annotations

import gc
import logging
import resource
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

log = logging.getLogger(__name__)

#: Allocations (net of deallocations) between young-generation collections; Python's default
#: is 700, which a few dozen concurrent requests pass many times a second.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the request path of a long-running server.

    Everything built so far (modules, the app, its routes and schemas: hundreds of thousands
    of objects that live as long as the process) moves to the permanent generation, so no
    collection walks it again; and young collections run less often. Measured under load
    (bench/RESULTS.md), the collector took 13% of the process's CPU before.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def allow_open_files(connections: int, *, besides: int = 256) -> None:
    """Raise this process's open-file limit (``ulimit -n``) so that ``connections`` sockets and
    ``besides`` other files (pools, logs, the spool) fit, as far as the hard limit allows; say
    so when it does not, since past it the server cannot accept anyone, not even /livez."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = connections + besides
    if soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning(
            "only %d open files are allowed (ulimit -n); SSOGW_HTTP_MAX_CONNECTIONS of %d needs"
            " %d: lower it, or raise the limit",
            target,
            connections,
            needed,
        )


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
