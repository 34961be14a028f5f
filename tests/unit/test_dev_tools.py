"""Tools the project's own scripts run, installed by its own files (the dev lock)."""

from __future__ import annotations

import subprocess

from bench.profile import BIN


def test_the_profiler_bench_profile_runs_comes_with_the_dev_dependencies() -> None:
    done = subprocess.run(
        [str(BIN / "py-spy"), "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout.startswith("py-spy "), done.stderr
