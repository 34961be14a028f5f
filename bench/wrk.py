"""Running wrk with the Lua scripts of ``bench/lua`` and reading what their ``done()`` prints.

Closed loop (the maximum): ``-t threads -c connections`` for a duration; requests/s and wrk's own
latency percentiles. Open loop (latency at a fixed offered rate): each wrk thread on a fixed
timetable (``common.lua``), latency counted from when each request was due; with more
connections than threads, a thread's connections share its timetable and each request carries
its due time as its ``X-Request-Id`` (the gateway echoes it; the bare endpoint does not, so it
is run with one connection per thread).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True, slots=True)
class WrkResult:
    """What one wrk run measured."""

    script: str
    requests: int
    seconds: float
    errors: dict[str, int]
    latency_ms: dict[str, float]  # wrk's: p50, p90, p99, p999, max, mean (closed loop)
    open_loop: dict[str, Any] | None = None  # ours, from the due time (open loop)
    stdout: str = field(default="", repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def percentile_ms(self, name: str) -> float:
        """p50/p99 of the run: the open-loop figure when there is one, else wrk's."""
        if self.open_loop is not None:
            return float(self.open_loop[f"{name}_us"]) / 1000
        return self.latency_ms[name]


def run_wrk(
    script: str,
    url: str,
    *,
    threads: int,
    connections: int,
    duration_s: float,
    env: dict[str, str],
    rate: float | None = None,
    timeout_s: int = 10,
) -> WrkResult:
    """Run ``bench/lua/<script>.lua`` against ``url``; ``rate`` makes it an open-loop run."""
    full_env = {
        **os.environ,
        **env,
        "LUA_PATH": f"{LUA_DIR}/?.lua;;",
        "BENCH_THREADS": str(threads),
        "BENCH_CONNECTIONS": str(connections),
    }
    if rate is not None:
        full_env["BENCH_RATE"] = f"{rate:.3f}"
    else:
        full_env.pop("BENCH_RATE", None)
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(LUA_DIR / f"{script}.lua"),
        url,
    ]
    done = subprocess.run(args, env=full_env, capture_output=True, text=True, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk {script} failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
            f" {done.stdout.strip()[-2000:]}"
        )
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    if "open_loop" in data:
        warmup_s = float(full_env.get("BENCH_WARMUP_S") or 2)
        _check_open_loop(script, data["open_loop"], max(0.0, duration_s - warmup_s))
    latency = {key: value / 1000 for key, value in data["latency_us"].items()}
    return WrkResult(
        script=script,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["errors"],
        latency_ms=latency,
        open_loop=data.get("open_loop"),
        stdout=done.stdout,
    )


def _check_open_loop(script: str, open_loop: dict[str, Any], counted_s: float) -> None:
    """RuntimeError when the open loop's percentiles would rest on too few latencies: answers
    that came back without the due time their request carried (a server that does not echo
    ``X-Request-Id``), or far fewer answers than the timetable had due."""
    due = open_loop["rate"] * counted_s
    samples, unmatched = open_loop["samples"], open_loop.get("unmatched", 0)
    if unmatched > 0.01 * max(samples, 1) or samples < 0.5 * due:
        raise RuntimeError(
            f"wrk {script}: the open loop timed {samples:,} answers of the {due:,.0f} due, and"
            f" {unmatched:,} answers came back without their request's X-Request-Id: its"
            " percentiles would mean nothing (does the server echo X-Request-Id?)"
        )


def lua_selfcheck(cases: list[str]) -> list[str]:
    """What ``selfcheck.lua`` computes for each case line (see that script)."""
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"ssogw-bench-selfcheck-{os.getpid()}.txt"
    path.write_text("\n".join(cases) + "\n")
    try:
        env = {**os.environ, "LUA_PATH": f"{LUA_DIR}/?.lua;;", "SELFCHECK_INPUT": str(path)}
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                "-c1",
                "-d1s",
                "-s",
                str(LUA_DIR / "selfcheck.lua"),
                "http://127.0.0.1:9/",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        path.unlink(missing_ok=True)
    lines = done.stdout.splitlines()
    if "SELFCHECK" not in lines or "END" not in lines:
        raise RuntimeError(f"selfcheck.lua printed nothing usable: {done.stdout} {done.stderr}")
    return lines[lines.index("SELFCHECK") + 1 : lines.index("END")]
