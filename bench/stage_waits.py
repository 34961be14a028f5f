"""Where an inquiry waits inside the gateway: the mean time of each stage, for ``bench.probe
--stages``.

A diagnostic, never part of a figure: ``install()`` wraps five of the gateway's awaitables
with a timer (a few hundred nanoseconds each) in the process it runs in, and a thread writes
their counts and total seconds to a JSON file every second. ``bench.probe --stages`` starts
``ssogw serve`` with ``BENCH_STAGES`` naming that file and ``bench/stage_hook`` first on
``PYTHONPATH``, whose ``sitecustomize`` calls ``install()`` before the gateway starts; the
probe reads the file before and after each run and prints the run's means:

- ``in app``: the HTTP middleware's call, from the request's arrival in the app to its answer;
- ``nonce``: the WS-Security nonce's verdict (``ReplayGuard.first_use``: the fleet's ledger,
  a batch on the primary);
- ``member read``: the inquiry's read (``MemberReads.read``: a batch on a standby), and
  ``read batch``: one such statement, from its send to its rows handed out, with its size;
- ``audit``: the call's record committed (``AuditWriter.record``: a group commit).

With a closed loop of N connections, N = throughput × latency: a stage's wait is latency the
loop cannot hide. Where the names wrapped change, ``install()`` fails at start-up (an
``AttributeError`` in the gateway's log), never silently.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ENV = "BENCH_STAGES"
HOOK_DIR = Path(__file__).resolve().parent / "stage_hook"

#: stage -> [calls, seconds]; "read batch size" holds [batches, reads].
_totals: dict[str, list[float]] = {}


def _add(stage: str, seconds: float) -> None:
    entry = _totals.setdefault(stage, [0, 0.0])
    entry[0] += 1
    entry[1] += seconds


def _timed(owner: type, name: str, stage: str) -> None:
    original: Callable[..., Awaitable[Any]] = getattr(owner, name)

    async def timed(self: object, *args: object, **kwargs: object) -> Any:
        started = time.perf_counter()
        try:
            return await original(self, *args, **kwargs)
        finally:
            _add(stage, time.perf_counter() - started)

    setattr(owner, name, timed)


def _timed_batches(owner: type) -> None:
    original: Callable[..., Awaitable[None]] = owner._one_batch  # type: ignore[attr-defined]

    async def timed(self: object, batch: list[object]) -> None:
        started = time.perf_counter()
        try:
            await original(self, batch)
        finally:
            _add("read batch", time.perf_counter() - started)
            _add("read batch size", float(len(batch)))

    owner._one_batch = timed  # type: ignore[attr-defined]


def _write_every_second(path: Path) -> None:
    part = path.with_suffix(".part")
    while True:
        time.sleep(1.0)
        part.write_text(json.dumps(_totals))
        part.replace(path)  # a reader never sees half a file


def install() -> None:
    """Time the stages in this process and keep writing their totals to ``$BENCH_STAGES``."""
    from app.admission.replay_guard import ReplayGuard
    from app.audit.writer import AuditWriter
    from app.counter.member_reads import MemberReads
    from app.observability.http_metrics import HttpMetricsMiddleware

    _timed(HttpMetricsMiddleware, "__call__", "in app")
    _timed(ReplayGuard, "first_use", "nonce")
    _timed(MemberReads, "read", "member read")
    _timed_batches(MemberReads)
    _timed(AuditWriter, "record", "audit")
    path = Path(os.environ[ENV])
    threading.Thread(target=_write_every_second, args=(path,), daemon=True).start()


def read(path: Path) -> dict[str, list[float]]:
    """The totals written last (empty before the first write)."""
    try:
        found: dict[str, list[float]] = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return found


def means(before: dict[str, list[float]], after: dict[str, list[float]]) -> str:
    """The stages' means between two readings, as one line."""

    def delta(stage: str) -> tuple[float, float]:
        calls, total = after.get(stage, [0, 0.0])
        calls0, total0 = before.get(stage, [0, 0.0])
        return calls - calls0, total - total0

    parts = []
    for stage in ("in app", "nonce", "member read", "audit"):
        calls, seconds = delta(stage)
        if calls:
            parts.append(f"{stage} {1000 * seconds / calls:.2f} ms")
    batches, seconds = delta("read batch")
    _, reads = delta("read batch size")
    if batches:
        parts.append(
            f"read batch {1000 * seconds / batches:.2f} ms ({reads / batches:.1f} reads each)"
        )
    return "waits: " + (", ".join(parts) if parts else "none timed")
