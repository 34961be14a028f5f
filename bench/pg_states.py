"""What the primary's client backends are doing during a probe's run, and whether the
service waited for a core: the two questions session 26 answered by hand (bench/RESULTS.md,
"Session 26").

``StateSampler``, around one run:

- ``pg_stat_activity`` of the primary sampled every ``interval_s`` on a connection of its own,
  in a thread: per sample on average, how many client backends were in each state and wait
  that is not plain idle (``idle in transaction (ClientRead)`` is a backend waiting for the
  gateway's next statement; ``active (CPU)`` one working);
- the service's threads' time on a core and time runnable but waiting for one
  (``/proc/<pid>/task/*/schedstat``), in seconds a second.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import asyncpg

_SAMPLE = """
SELECT state, coalesce(wait_event, 'CPU') AS wait
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND state <> 'idle'
"""


class StateSampler:
    """Samples the primary's client backends in a thread, and marks the service's run queue,
    while the ``with`` block runs."""

    def __init__(self, dsn: str, service_pid: int, *, interval_s: float = 0.2) -> None:
        self._dsn = dsn
        self._pid = service_pid
        self._interval_s = interval_s
        self._counts: Counter[str] = Counter()
        self._samples = 0
        self._error: BaseException | None = None
        self._started = (0, 0, 0.0)  # the run queue's marks (ns) and the clock at the start
        self._ran = self._waited = 0.0  # seconds a second, once the block has ended
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._sample()), daemon=True)

    def __enter__(self) -> StateSampler:
        self._started = (*_run_queue(self._pid), time.monotonic())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(10)
        ran, waited = _run_queue(self._pid)
        seconds = 1e9 * (time.monotonic() - self._started[2])
        self._ran = (ran - self._started[0]) / seconds
        self._waited = (waited - self._started[1]) / seconds

    async def _sample(self) -> None:
        try:
            conn = await asyncpg.connect(self._dsn)
            try:
                while not self._stopping.is_set():
                    rows = await conn.fetch(_SAMPLE)
                    self._counts.update(f"{r['state']} ({r['wait']})" for r in rows)
                    self._samples += 1
                    await asyncio.sleep(self._interval_s)
            finally:
                await conn.close()
        except Exception as exc:  # told in the summary, not lost with the thread
            self._error = exc

    def summary(self) -> str:
        """Backends not idle, by state and wait, on average per sample; the service's threads
        on a core and waiting for one, in seconds a second (after the ``with`` block)."""
        if self._samples:
            parts = ", ".join(
                f"{name} {count / self._samples:.2f}" for name, count in self._counts.most_common(6)
            )
            backends = f"backends not idle, mean of {self._samples} samples: {parts}"
        else:
            backends = f"no samples of the backends ({self._error!r})"
        return (
            f"{backends}; service on a core {self._ran:.3f}, runnable and waiting"
            f" {self._waited:.3f}"
            " (s a second)"
        )


def _run_queue(pid: int) -> tuple[int, int]:
    """Nanoseconds the process's threads have run, and waited runnable, so far."""
    ran = waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:  # a thread that ended meanwhile
            continue
        ran += int(fields[0])
        waited += int(fields[1])
    return ran, waited
