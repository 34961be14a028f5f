"""The gateway as a real server process (`ssogw serve`), started, signalled and killed by tests.

Each process listens on its own free loopback port, writes its stdout and stderr to files in the
test's temporary directory and is always killed when the test is done with it, or when the test
session's process ends without saying so (``dies_with_parent``).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from app.db.local_pair import PairRecord, free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
SERVE = "import sys; from app.cli.main import main; sys.exit(main(['serve']))"

#: Settings of every test gateway: quick probes and timeouts, a short drain (see the issue).
BASE_SETTINGS: Mapping[str, str] = {
    "SSOGW_HTTP_HOST": "127.0.0.1",
    "SSOGW_REPLICA_PROBE_INTERVAL_S": "0.2",
    "SSOGW_REPLICA_MAX_LAG_S": "2",
    "SSOGW_CONNECT_TIMEOUT_S": "2",
    "SSOGW_COMMAND_TIMEOUT_S": "3",
    "SSOGW_SHUTDOWN_DRAIN_S": "1",
    # Above the slowloris clients' 3 s of trickling, below the stalled-request test's wait.
    "SSOGW_SOAP_READ_TIMEOUT_S": "4.5",
    "SSOGW_SHUTDOWN_GRACE_S": "10",
    "SSOGW_LOG_LEVEL": "WARNING",
    # One process, whose pid is the server's: what these tests signal, kill and measure (the
    # default is a worker per CPU; tests/integration/test_serve_workers.py runs a group).
    "SSOGW_HTTP_WORKERS": "1",
    "SSOGW_PRIMARY_POOL_MIN": "1",
    "SSOGW_REPLICA_POOL_MIN": "1",
    # Refusals of callers never admitted are written per window: a short one, for the tests.
    "SSOGW_AUDIT_REFUSAL_WINDOW_S": "0.2",
    # Every test calls from 127.0.0.1, many with wrong secrets on purpose.
    "SSOGW_CREDENTIAL_FAILURES_PER_ADDRESS": "1000000",
}


_PR_SET_PDEATHSIG = 1


def dies_with_parent(
    also: Callable[[], None] | None = None,
) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel kill the child (SIGKILL) when the test session's
    process ends, however it ends: a session stopped with ``kill`` runs no teardown, and its
    gateways went on polling a database that was gone (they disturbed a benchmark run,
    bench/RESULTS.md, session 12). ``also``: more to do in the child first.

    The kernel sends it when the *thread* that started the child ends; off the main thread
    (a worker thread of a pool, which may end before the child should) only ``also`` is
    done."""
    if threading.current_thread() is not threading.main_thread():
        return also
    parent = os.getpid()
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it

    def in_child() -> None:
        if also is not None:
            also()
        if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent ended before the request took hold
            os._exit(1)

    return in_child


def gateway_env(
    record: PairRecord, *, secret_key: str, data_dir: Path, **overrides: str
) -> dict[str, str]:
    """The environment of a gateway on ``record``'s pair: no inherited SSOGW_* setting."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SSOGW_")}
    env.update(BASE_SETTINGS)
    env.update(
        SSOGW_PRIMARY_DSN=record.primary_dsn,
        SSOGW_REPLICA_DSNS=record.replica_dsn,
        SSOGW_SECRET_KEY=secret_key,
        SSOGW_DATA_DIR=str(data_dir),
    )
    env.update({f"SSOGW_{key.upper()}": value for key, value in overrides.items()})
    return env


#: Clients kept across tests drop an idle connection before the gateway does (it closes one
#: after ``SSOGW_HTTP_KEEPALIVE_TIMEOUT_S``, 5 s): reusing one at that very moment meets the
#: server's close, a reset that httpx does not retry for a POST.
CLIENT_LIMITS = httpx.Limits(keepalive_expiry=2.0)


class GatewayProcess:
    """One `ssogw serve` process on 127.0.0.1."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        logs: Path,
        name: str,
        max_open_files: int | None = None,
    ) -> None:
        self._env = dict(env)
        self._max_open_files = max_open_files
        self._logs = logs
        self.name = name
        self.port = int(self._env.get("SSOGW_HTTP_PORT") or free_port())
        self._env["SSOGW_HTTP_PORT"] = str(self.port)
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "the gateway was not started"
        return self._process.pid

    def start(self) -> None:
        """Start the process (again, on the same port) and wait until it answers /livez."""
        assert self._process is None or self._process.poll() is not None, "already running"
        self._starts += 1
        self._logs.mkdir(parents=True, exist_ok=True)
        stem = self._logs / f"{self.name}-{self._starts}"
        with stem.with_suffix(".out").open("wb") as out, stem.with_suffix(".err").open("wb") as err:
            self._process = subprocess.Popen(
                [sys.executable, "-c", SERVE],
                env=self._env,
                cwd=REPO,
                stdout=out,
                stderr=err,
                preexec_fn=dies_with_parent(
                    self._limit_open_files if self._max_open_files else None
                ),
            )
        self._wait_live()

    def _limit_open_files(self) -> None:
        """In the child, before it runs: at most ``max_open_files`` descriptors, as a
        container with a low ``ulimit -n`` would allow."""
        assert self._max_open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self._max_open_files, self._max_open_files))

    def _wait_live(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"gateway {self.name} exited at start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/livez", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway {self.name} did not start in time:\n{self.log_tail()}")

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        assert self._process is not None
        self._process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no drain, no flush, nothing."""
        if self.running():
            assert self._process is not None
            self._process.kill()
        self.wait(10)

    def wait(self, timeout_s: float) -> int | None:
        """The exit status once the process has ended, or None if it still runs after the wait."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within its grace time (for teardown)."""
        if self.running():
            self.signal(signal.SIGTERM)
            if self.wait(15) is None:
                self.kill()

    def rss_bytes(self) -> int:
        """The process's resident set size, from /proc/<pid>/status."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")

    def log_text(self) -> str:
        """The whole of the latest stderr log."""
        path = self._logs / f"{self.name}-{self._starts}.err"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        """The end of the latest stderr log (for failure messages)."""
        path = self._logs / f"{self.name}-{self._starts}.err"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
