"""The bench's CPU split (bench/cpu_split.py): each part is the growth of its processes' times."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

from bench.cpu_split import CpuMark, Process, mark, split


def _mark(kernel: dict[Process, float], *, busy: float, wall: float) -> CpuMark:
    return CpuMark(service={}, postgres={}, children=0.0, kernel=kernel, busy=busy, wall=wall)


def test_a_kernel_thread_that_ends_during_the_run_does_not_make_the_part_negative() -> None:
    # s29-start's spyne JSON loop printed "kernel threads -48 µs": a worker retired mid-run
    # took its whole time out of the second sum.
    before = _mark({(40, 7): 3.0, (41, 8): 0.5}, busy=10.0, wall=0.0)
    after = _mark({(40, 7): 3.2}, busy=11.0, wall=1.0)

    assert split(before, after, requests=1_000)["kernel_us"] == 200


def test_a_pid_used_again_is_another_process_counted_from_nothing() -> None:
    before = _mark({(40, 7): 3.0}, busy=10.0, wall=0.0)
    after = _mark({(40, 900): 0.1, (42, 901): 0.05}, busy=11.0, wall=1.0)

    assert split(before, after, requests=1_000)["kernel_us"] == 150


def test_a_service_child_that_burns_cpu_and_exits_leaves_the_service_part_its_own() -> None:
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    parent = subprocess.Popen(  # a service whose one child burns 0.3 s and ends
        [sys.executable, "-c", f"import subprocess, sys, time\n"
         f"subprocess.run([sys.executable, '-c', {burn!r}])\ntime.sleep(30)"],
    )  # fmt: skip
    try:
        _wait(lambda: bool(_children(parent.pid)))
        time.sleep(0.1)  # the child has burned some of its 0.3 s
        before = mark(parent.pid, set())
        _wait(lambda: not _children(parent.pid))
        after = mark(parent.pid, set())
    finally:
        parent.kill()
        parent.wait()

    assert len(before.service) == 2 and max(before.service.values()) > 0
    assert [pid for pid, _ in after.service] == [parent.pid]
    # The child's time went with it: what is left is the parent's own, never below nothing.
    assert 0 <= split(before, after, requests=1)["service_us"] < 300_000


def _children(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return children.read().split()
    except OSError:
        return []


def _wait(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, "the processes did not get there within 10 s"
        time.sleep(0.02)
