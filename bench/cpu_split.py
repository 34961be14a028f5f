"""Where the machine's CPU went during one closed-loop run, per request answered.

Four parts, read from /proc around the run: the service under test (its process and every
descendant: the workers of ``ssogw serve --workers N``), PostgreSQL (the bench pair's two
postmasters and every process they started: backends, the WAL sender and receiver, the startup
process's replay, the writers — not another pair someone else runs on the machine), wrk (this
process's children that ended during the run: ``getrusage``), and the rest (the machine's busy
time minus those three: the kernel's softirqs, other services). Of the rest, the kernel's own
threads (``kthreadd``'s children: page reclaim ``kswapd``, ``kdamond``, workqueues,
``ksoftirqd``) are counted apart: on some hosts they take half a core during a run. With the
machine's busy share this says what limits a figure: a service at one core of its own, or a
machine with no core left over (``--workers 2`` on two cores shared with the database).

A process is known by its pid and start time. Each part is the growth of its processes' times:
one that started during the run counts from nothing, one that ended during it takes its time
with it (a backend that exits, a kernel worker retired; the gateway's pools keep theirs). So a
part is never less than nothing, as a difference of two sums was when a process ended.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
KTHREADD = 2  # the parent of every kernel thread
#: A process: its pid and its start time (clock ticks after boot), so a pid used again is
#: another process.
Process = tuple[int, int]


@dataclass(frozen=True, slots=True)
class CpuMark:
    """CPU seconds so far: of each process of a part, of this process's ended children, of
    the machine; and the moment taken."""

    service: Mapping[Process, float]
    postgres: Mapping[Process, float]
    children: float
    kernel: Mapping[Process, float]
    busy: float
    wall: float


def _processes() -> dict[int, tuple[int, int, float]]:
    """pid -> (parent pid, start time, CPU seconds) of every process readable now."""
    found: dict[int, tuple[int, int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()
        # After the command: state, ppid, ..., utime (14th field of the line), stime (15th),
        # starttime (22nd).
        found[int(entry.name)] = (
            int(fields[1]),
            int(fields[19]),
            (int(fields[11]) + int(fields[12])) / _TICK,
        )
    return found


def _busy_seconds() -> float:
    """The machine's busy time: every CPU's user, nice, system, irq and softirq time."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in first[1:8])
    return (user + nice + system + irq + softirq) / _TICK


def _descendants(processes: dict[int, tuple[int, int, float]], roots: set[int]) -> set[int]:
    tree, grew = set(roots), True
    while grew:
        more = {pid for pid, (parent, _, _) in processes.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return tree


def postmasters(data_dir: Path) -> set[int]:
    """The pids of the pair's two servers under ``data_dir`` (``postmaster.pid``)."""
    found = set()
    for server in ("primary", "replica"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            found.add(int((data_dir / server / "postmaster.pid").read_text().split()[0]))
    return found


def mark(service_pid: int, postgres: set[int]) -> CpuMark:
    """The CPU seconds used so far by the service (``service_pid`` and its descendants), the
    PostgreSQL servers ``postgres`` (postmaster pids) and theirs, this process's ended children
    and the whole machine."""
    processes = _processes()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)

    def cpu(pids: set[int]) -> dict[Process, float]:
        return {(pid, processes[pid][1]): processes[pid][2] for pid in pids if pid in processes}

    return CpuMark(
        service=cpu(_descendants(processes, {service_pid})),
        postgres=cpu(_descendants(processes, postgres)),
        children=children.ru_utime + children.ru_stime,
        kernel=cpu(_descendants(processes, {KTHREADD})),
        busy=_busy_seconds(),
        wall=time.monotonic(),
    )


def grown(before: Mapping[Process, float], after: Mapping[Process, float]) -> float:
    """The CPU seconds the processes of ``after`` used since ``before``: a process new since
    then from nothing, one gone since then not at all."""
    return sum(seconds - before.get(process, 0.0) for process, seconds in after.items())


def split(before: CpuMark, after: CpuMark, requests: int) -> dict[str, float]:
    """µs of CPU per request by part between two marks, and the machine's busy share (%)."""
    per = 1e6 / max(requests, 1)
    service = grown(before.service, after.service)
    postgres = grown(before.postgres, after.postgres)
    wrk = after.children - before.children
    busy = after.busy - before.busy
    wall = after.wall - before.wall
    return {
        "service_us": round(service * per),
        "postgres_us": round(postgres * per),
        "wrk_us": round(wrk * per),
        "other_us": round(max(0.0, busy - service - postgres - wrk) * per),
        "kernel_us": round(grown(before.kernel, after.kernel) * per),  # of other: kernel threads
        "busy_pct": round(100 * busy / (wall * (os.cpu_count() or 1)), 1) if wall else 0.0,
        "service_cores": round(service / wall, 2) if wall else 0.0,
    }
