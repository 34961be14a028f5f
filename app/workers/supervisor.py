"""The parent process of ``ssogw serve --workers N``: it starts N workers on the listening
sockets it made, restarts one that exits, stops them all on SIGTERM, and answers their
scrapes of /metrics with the group's exposition.

- **Start**: each worker is a fresh interpreter (``ssogw serve`` itself, told its index and
  handed its socket and its line to the supervisor as inherited descriptors), in a process
  group of its own, so a terminal's Ctrl-C reaches the supervisor alone, which passes it on
  once. A worker says when it serves (its app is up); the supervisor logs it.
- **Restart**: a worker that exits while the group runs is logged (its index, pid and exit
  status) and started again after a short pause, on the same socket: connections that
  arrive meanwhile wait in its backlog. One that exits before it served, ``MAX_START_FAILURES``
  times in a row, is a start-up that cannot succeed (a spool that cannot be written, a
  database that refuses the service role): the supervisor stops the others and exits 1.
- **Stop**: the first SIGTERM or SIGINT closes the supervisor's copies of the sockets and is
  passed to every worker as SIGTERM (a SIGINT would end each worker's drain in a
  KeyboardInterrupt's traceback), which drains as one server does (``/readyz`` 503 first, then
  its listener closes and its calls finish). A second signal stops them at once (passed on as
  SIGINT, on which uvicorn ends its wait for the calls in flight).
  Workers still running ``stop_timeout_s`` after the first are killed, and the supervisor
  then exits 1: its calls and audit queue may be lost, and the exit status says so.
- **Metrics**: a worker's /metrics asks the supervisor, which asks every worker for its own
  exposition, merges them (``app.observability.group_exposition``) and adds its own families:
  ``ssogw_workers_configured``, ``ssogw_workers_serving`` and ``ssogw_worker_restarts_total``.
  The merging runs here, never on a worker's event loop; scrapes that come during a merge
  share it. A worker that does not hand its exposition over within ``OWN_TIMEOUT_S`` (stuck)
  is merged by its last one, not counted serving, and not asked again for ``SILENT_FOR_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from app.observability.group_exposition import Parsed, Retired, merge, parse
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

#: Start-ups in a row that end before the worker serves, after which the server gives up.
MAX_START_FAILURES = 3
#: The pause before a worker that served is started again; one that did not waits twice as
#: long after each failure.
RESTART_PAUSE_S = 0.5
#: How long a worker may take to hand over its own exposition; then its last one is used.
OWN_TIMEOUT_S = 5.0
#: A worker that did not hand it over in time is not asked again for this long (its last one
#: is used, and it is not counted serving), so a stuck worker does not slow every scrape.
SILENT_FOR_S = 30.0

#: (worker index, listening socket's descriptor, line's descriptor) -> the worker's argv.
WorkerCommand = Callable[[int, int, int], list[str]]


def exit_status(code: int) -> str:
    """A worker's exit status in words."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


@dataclass(eq=False)
class _Slot:
    """One worker's place in the group: its socket, and its current process if any."""

    index: int
    listener: socket.socket | None
    process: asyncio.subprocess.Process | None = None
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.Task[None] | None = None
    generation: int = 0  # one more for each process started in this slot
    ready: bool = False
    last: Parsed | None = None  # its latest exposition
    asked: asyncio.Future[bytes] | None = None
    asking: asyncio.Lock = field(default_factory=asyncio.Lock)
    start_failures: int = 0
    silent_since: float | None = None  # when it last failed to hand its exposition over


class Supervisor:
    """Keeps ``len(listeners)`` workers serving until told to stop (module docstring)."""

    def __init__(
        self, *, listeners: list[socket.socket], command: WorkerCommand, stop_timeout_s: float
    ) -> None:
        self._slots = [_Slot(i, sock) for i, sock in enumerate(listeners)]
        self._command = command
        self._stop_timeout_s = stop_timeout_s
        self._stopping = asyncio.Event()
        self._failed = False
        self._restarts = 0
        self._retired = Retired()
        self._merging: asyncio.Task[bytes] | None = None  # the merge scrapes share now
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> int:
        """Serve until a signal (0; 1 if a worker had to be killed) or a start-up that cannot
        succeed (1)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._signalled, sig)
        keepers = [asyncio.create_task(self._keep(slot)) for slot in self._slots]
        await self._stopping.wait()
        _, running = await asyncio.wait(keepers, timeout=self._stop_timeout_s)
        if running:
            log.error("workers still running %.0f s after the stop: killed", self._stop_timeout_s)
            self._forward(signal.SIGKILL)
            await asyncio.wait(running)
            self._failed = True  # not drained: the exit status must not say it was clean
        return 1 if self._failed else 0

    # --- the workers' lives -----------------------------------------------------------------
    async def _keep(self, slot: _Slot) -> None:
        while not self._stopping.is_set():
            pid, served, status = 0, False, "could not be started"
            try:
                await self._start(slot)
            except OSError as exc:
                status = f"could not be started: {exc}"
            else:
                assert slot.process is not None
                pid = slot.process.pid
                if self._stopping.is_set():  # the stop came while it was being started
                    slot.process.send_signal(signal.SIGTERM)
                status = exit_status(await slot.process.wait())
                served = slot.ready
                await self._gone(slot)
            if self._stopping.is_set():
                return
            slot.start_failures = 0 if served else slot.start_failures + 1
            if slot.start_failures >= MAX_START_FAILURES:
                log.error(
                    "worker %d (pid %d) %s before it served, %d times in a row: stopping the"
                    " server", slot.index, pid, status, slot.start_failures,
                )  # fmt: skip
                self._failed = True
                self._stop(signal.SIGTERM)
                return
            pause = RESTART_PAUSE_S * 2 ** max(0, slot.start_failures - 1)
            log.error(
                "worker %d (pid %d) %s%s; starting it again in %.1f s", slot.index, pid,
                status, "" if served else " before it served", pause,
            )  # fmt: skip
            self._restarts += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    async def _start(self, slot: _Slot) -> None:
        assert slot.listener is not None
        ours, theirs = socket.socketpair()
        try:
            fds = (slot.listener.fileno(), theirs.fileno())
            process = await asyncio.create_subprocess_exec(
                *self._command(slot.index, *fds),
                pass_fds=fds,
                stdin=asyncio.subprocess.DEVNULL,
                process_group=0,  # a terminal's signals reach the supervisor only
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        slot.generation += 1
        slot.process, slot.ready, slot.last, slot.silent_since = process, False, None, None
        reader, slot.writer = await asyncio.open_unix_connection(sock=ours)
        slot.reader = asyncio.create_task(self._listen(slot, reader, slot.generation))

    async def _gone(self, slot: _Slot) -> None:
        """After a worker exited: keep its counters, close its line."""
        if slot.last is not None:
            self._retired.absorb(slot.last)
        slot.process, slot.ready, slot.last = None, False, None
        if slot.writer is not None:
            slot.writer.close()
            slot.writer = None
        if slot.reader is not None:
            slot.reader.cancel()
            await asyncio.gather(slot.reader, return_exceptions=True)
            slot.reader = None

    async def _listen(self, slot: _Slot, reader: asyncio.StreamReader, generation: int) -> None:
        while (got := await read_frame(reader)) is not None:
            kind, payload = got
            if kind == READY:
                slot.ready = True
                pid = slot.process.pid if slot.process else 0
                log.info("worker %d (pid %d) serving", slot.index, pid)
            elif kind == GROUP_ASKED:
                task = asyncio.create_task(self._answer(slot, generation))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif kind == OWN_ANSWER and slot.asked is not None and not slot.asked.done():
                slot.asked.set_result(payload)
        if slot.asked is not None and not slot.asked.done():
            slot.asked.set_exception(ConnectionError("the worker's line closed"))

    # --- stopping ---------------------------------------------------------------------------
    def _signalled(self, sig: int) -> None:
        if self._stopping.is_set():
            # A second signal: stop now. uvicorn ends its wait for calls in flight only on a
            # SIGINT that follows the first signal (a second SIGTERM would not).
            log.warning("%s again: stopping the workers at once", signal.Signals(sig).name)
            self._forward(signal.SIGINT)
            return
        log.info(
            "%s: stopping %d workers, each drains first", signal.Signals(sig).name,
            len(self._slots),
        )  # fmt: skip
        # Each worker drains on SIGTERM; a SIGINT would end its drain in a KeyboardInterrupt.
        self._stop(signal.SIGTERM)

    def _stop(self, sig: int) -> None:
        self._stopping.set()
        for slot in self._slots:
            if slot.listener is not None:  # the workers' own copies close after their drain
                slot.listener.close()
                slot.listener = None
        self._forward(sig)

    def _forward(self, sig: int) -> None:
        for slot in self._slots:
            if slot.process is not None and slot.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(sig)

    # --- the group's metrics ----------------------------------------------------------------
    async def _answer(self, slot: _Slot, generation: int) -> None:
        try:
            kind, body = GROUP_ANSWER, await self._group_exposition()
        except Exception as exc:  # answered as a failed scrape, never left waiting
            log.exception("the group's metrics could not be merged")
            kind, body = GROUP_FAILED, str(exc).encode()
        if slot.writer is not None and slot.generation == generation:
            slot.writer.write(frame(kind, body))

    async def _group_exposition(self) -> bytes:
        # Scrapes that come while a merge runs share it, instead of queuing one behind another
        # (each could wait for a stuck worker in turn, past the scrape's own timeout).
        if self._merging is None or self._merging.done():
            self._merging = asyncio.create_task(self._merge())
        return await asyncio.shield(self._merging)

    async def _merge(self) -> bytes:
        await asyncio.gather(*(self._ask(slot) for slot in self._slots))
        parts = [(slot.index, slot.last) for slot in self._slots if slot.last is not None]
        return (merge(parts, retired=self._retired) + self._own_families()).encode()

    async def _ask(self, slot: _Slot) -> None:
        """Fetch the worker's own exposition into ``slot.last`` (kept as it was if it does
        not answer in time: the sums must not go down)."""
        generation = slot.generation
        loop = asyncio.get_running_loop()
        if slot.silent_since is not None and loop.time() - slot.silent_since < SILENT_FOR_S:
            return
        async with slot.asking:
            writer = slot.writer
            if not slot.ready or writer is None or slot.generation != generation:
                return
            slot.asked = loop.create_future()
            try:
                writer.write(frame(OWN_ASKED))
                payload = await asyncio.wait_for(slot.asked, OWN_TIMEOUT_S)
            except (TimeoutError, ConnectionError, OSError) as exc:
                log.warning("worker %d did not give its metrics: %r", slot.index, exc)
                if slot.generation == generation:
                    slot.silent_since = loop.time()
                return
            finally:
                slot.asked = None
        parsed = parse(payload.decode())
        if slot.generation == generation and slot.process is not None:
            slot.last = parsed
            slot.silent_since = None

    def _own_families(self) -> str:
        serving = sum(1 for slot in self._slots if slot.ready and slot.silent_since is None)
        return (
            "# HELP ssogw_workers_configured Worker processes this server runs (--workers).\n"
            "# TYPE ssogw_workers_configured gauge\n"
            f"ssogw_workers_configured {len(self._slots)}.0\n"
            "# HELP ssogw_workers_serving Worker processes serving now.\n"
            "# TYPE ssogw_workers_serving gauge\n"
            f"ssogw_workers_serving {serving}.0\n"
            "# HELP ssogw_worker_restarts_total Worker processes started again after they"
            " exited unexpectedly.\n"
            "# TYPE ssogw_worker_restarts_total counter\n"
            f"ssogw_worker_restarts_total {self._restarts}.0\n"
        )
