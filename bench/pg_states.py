"""What the primary's client backends are doing during a probe's run, and whether the
service waited for a core: the two questions session 26 answered by hand (bench/RESULTS.md,
"Session 26").

- ``StateSampler``: ``pg_stat_activity`` of the primary sampled every ``interval_s`` on a
  connection of its own, in a thread; ``summary()`` gives, per sample on average, how many
  client backends were in each state and wait that is not plain idle (``idle in transaction
  (ClientRead)`` is a backend waiting for the gateway's next statement; ``active (CPU)`` one
  working).
- ``run_queue``: the service's threads' time on a core and time runnable but waiting for one
  (``/proc/<pid>/task/*/schedstat``), in seconds a second, between two marks.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

import asyncpg

_SAMPLE = """
SELECT state, coalesce(wait_event, 'CPU') AS wait
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND state <> 'idle'
"""


class StateSampler:
    """Samples the primary's client backends in a thread until ``stop()``."""

    def __init__(self, dsn: str, *, interval_s: float = 0.2) -> None:
        self._dsn = dsn
        self._interval_s = interval_s
        self._counts: Counter[str] = Counter()
        self._samples = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._sample()), daemon=True)

    def __enter__(self) -> StateSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(10)

    async def _sample(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            while not self._stopping.is_set():
                rows = await conn.fetch(_SAMPLE)
                self._counts.update(f"{r['state']} ({r['wait']})" for r in rows)
                self._samples += 1
                await asyncio.sleep(self._interval_s)
        finally:
            await conn.close()

    def summary(self) -> str:
        """Backends not idle, by state and wait, on average per sample."""
        if not self._samples:
            return "no samples"
        parts = ", ".join(
            f"{name} {count / self._samples:.2f}" for name, count in self._counts.most_common(6)
        )
        return f"backends not idle, mean of {self._samples} samples: {parts}"


def run_queue_mark(pid: int) -> tuple[int, int]:
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


def run_queue(before: tuple[int, int], after: tuple[int, int], seconds: float) -> str:
    """The service's threads on a core and waiting for one, in seconds a second."""
    ran = (after[0] - before[0]) / 1e9 / seconds
    waited = (after[1] - before[1]) / 1e9 / seconds
    return f"service on a core {ran:.3f}, runnable and waiting {waited:.3f} (s a second)"
