"""A gateway process a test started ends with the test session's process, however that ends: a
session stopped with ``kill -9`` runs no teardown, and the gateways it had started went on
polling a database that was gone (bench/RESULTS.md, session 12)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.gateway_process import REPO

pytestmark = pytest.mark.serial  # the reliability suite runs alone (docs/development.md)

# A stand-in for the test session: it starts a child as GatewayProcess does, says its pid and
# waits to be killed.
SESSION = """
import subprocess, sys, time
from tests.reliability.gateway_process import dies_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                         preexec_fn=dies_with_parent())
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_child_started_by_a_killed_session_is_killed_with_it() -> None:
    child: int | None = None
    with subprocess.Popen(
        [sys.executable, "-c", SESSION], cwd=REPO, stdout=subprocess.PIPE, text=True
    ) as session:
        try:
            assert session.stdout is not None
            child = int(session.stdout.readline())
            assert _alive(child)
            os.kill(session.pid, signal.SIGKILL)
            session.wait(timeout=10)
            deadline = time.monotonic() + 10
            while _alive(child) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(child), "the child outlived the session that started it"
        finally:
            session.kill()
            if child is not None and _alive(child):
                os.kill(child, signal.SIGKILL)
