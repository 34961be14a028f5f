"""How many CPUs this process may use: its affinity, capped by its cgroup's CPU quota.

A container given ``limits: cpu: "2"`` sees every core of its node in ``os.cpu_count()`` but
is throttled to two cores' worth of time a period; a process pinned with ``taskset`` sees its
own cores in ``sched_getaffinity``. The quota counts in whole CPUs, rounded down (a limit of
1.5 runs one worker, not two that are throttled), at least 1. Both cgroup versions are read,
and every level from the process's own group up to the root (a parent's quota caps its
children too); a container with its own cgroup namespace sees its group as the root.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def usable_cpus(*, root: Path = Path("/")) -> int:
    """The CPUs this process may use (``root``: where ``/proc`` and ``/sys`` are, for tests)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root=root)
    if quota is not None:
        count = min(count, int(quota))
    return max(1, count)


def cgroup_cpu_quota(*, root: Path = Path("/")) -> float | None:
    """The tightest CPU quota over this process's cgroups, in CPUs (None: no quota)."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: one unified hierarchy
            for mount in ("sys/fs/cgroup", "sys/fs/cgroup/unified"):
                quotas += _walk(root / mount, path, _v2_quota)
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller's hierarchy
            for mount in ("sys/fs/cgroup/cpu", "sys/fs/cgroup/cpu,cpuacct"):
                quotas += _walk(root / mount, path, _v1_quota)
    return min(quotas) if quotas else None


def _walk(mount: Path, path: str, read: Callable[[Path], float | None]) -> list[float]:
    """The quotas found from ``path`` up to the mount's root, under ``mount``."""
    found: list[float] = []
    parts = [p for p in path.strip("/").split("/") if p]
    for depth in range(len(parts), -1, -1):
        quota = read(mount.joinpath(*parts[:depth]))
        if quota is not None:
            found.append(quota)
    return found


def _v2_quota(group: Path) -> float | None:
    try:
        quota, period = (group / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max" or int(period) <= 0:
        return None
    return int(quota) / int(period)


def _v1_quota(group: Path) -> float | None:
    try:
        quota = int((group / "cpu.cfs_quota_us").read_text())
        period = int((group / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    if quota <= 0 or period <= 0:  # -1: no quota
        return None
    return quota / period
