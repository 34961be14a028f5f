"""Attacks on `ssogw serve --workers N` (session 17): what a platform team expects of a worker
group; each test failed on the code before its fix (see each docstring for what it found)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db.local_pair import LocalPair, PairRecord, free_port
from app.settings import Settings
from app.workers.link import GROUP_TIMEOUT_S
from tests.integration.test_serve_workers import connected, get, group_env, samples, workers_of
from tests.reliability.gateway_process import REPO, GatewayProcess

pytestmark = pytest.mark.db


def assert_all_json(log: str) -> None:
    """Every line of ``log`` is a JSON object (the gateway's log lines are)."""
    not_json = []
    for line in log.splitlines():
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not not_json, "\n".join(not_json[-12:])


def started(
    pg_pair: tuple[LocalPair, PairRecord], settings: Settings, tmp_path: Path, **env: str
) -> GatewayProcess:
    base = group_env(pg_pair, settings)
    base.update({f"SSOGW_{key.upper()}": value for key, value in env.items()})
    process = GatewayProcess(env=base, logs=tmp_path, name="group")
    process.start()
    return process


def to_worker(port: int, worker: str, count: int) -> list[http.client.HTTPConnection]:
    """``count`` kept-alive connections that worker ``worker`` answers."""
    found: list[http.client.HTTPConnection] = []
    deadline = time.monotonic() + 20
    while len(found) < count:
        assert time.monotonic() < deadline, "the worker did not answer"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        status, body = get(conn, "/livez")
        if status == 200 and json.loads(body)["worker"] == worker:
            found.append(conn)
        else:
            conn.close()
    return found


@pytest.fixture
def stuck_worker_group(
    pg_pair: tuple[LocalPair, PairRecord], settings: Settings, tmp_path: Path
) -> Iterator[tuple[GatewayProcess, int]]:
    """A group of two whose worker 1 is stopped (SIGSTOP: an event loop that does not run)."""
    group = started(pg_pair, settings, tmp_path, shutdown_drain_s="0.2", shutdown_grace_s="1")
    with connected(group.port):
        pass  # both workers serve (have told the supervisor so)
    stuck = workers_of(group.pid)["1"]
    try:
        yield group, stuck
    finally:
        # A stopped worker would never read its line's end of file: end it ourselves.
        with contextlib.suppress(ProcessLookupError):
            os.kill(stuck, signal.SIGKILL)
        group.kill()


@pytest.mark.serial
def test_a_stuck_worker_does_not_hold_scrapes_past_their_timeout(
    stuck_worker_group: tuple[GatewayProcess, int],
) -> None:
    """app/workers/link.py: a scrape waits GROUP_TIMEOUT_S (8 s) for the group's exposition,
    then answers 503. But scrapes queue behind WorkerLink._asking and Supervisor._merging, each
    waiting OWN_TIMEOUT_S (5 s) for the stuck worker, and the 8 s start only once the lock is
    had: two concurrent scrapes (an HA pair of Prometheus servers) take 5 s and 10 s, three
    15 s, past Prometheus's 10 s scrape timeout."""
    group, stuck = stuck_worker_group
    conns = to_worker(group.port, "0", 2)
    os.kill(stuck, signal.SIGSTOP)
    took: list[tuple[int, float]] = []

    def scrape(conn: http.client.HTTPConnection) -> None:
        began = time.monotonic()
        status, _ = get(conn, "/metrics")
        took.append((status, time.monotonic() - began))

    threads = [threading.Thread(target=scrape, args=(conn,)) for conn in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for conn in conns:
        conn.close()
    slowest = max(seconds for _, seconds in took)
    assert slowest < GROUP_TIMEOUT_S + 1, f"scrapes answered (status, seconds) {took}"


def test_a_stuck_worker_is_not_reported_serving(
    stuck_worker_group: tuple[GatewayProcess, int],
) -> None:
    """ssogw_workers_serving is "worker processes serving now". The supervisor knows worker 1
    did not give its metrics (it logs so), yet counts it serving (Supervisor._own_families counts
    slot.ready, set once at start-up) and merges its last figures as if current
    (ssogw_ready 1 from a worker that answers nothing)."""
    group, stuck = stuck_worker_group
    (conn,) = to_worker(group.port, "0", 1)
    os.kill(stuck, signal.SIGSTOP)
    try:
        seen = samples(conn)  # waits for the supervisor's timeout on worker 1
    finally:
        conn.close()
    assert "worker 1 did not give its metrics" in group.log_text()
    assert seen["ssogw_workers_serving"] == 1, (
        f"workers serving {seen['ssogw_workers_serving']}, ready {seen['ssogw_ready']},"
        " with worker 1 stopped"
    )


def test_a_stop_that_had_to_kill_a_worker_does_not_exit_0(
    stuck_worker_group: tuple[GatewayProcess, int],
) -> None:
    """docs/operations.md, Workers: on SIGTERM "the supervisor exits 0 once all have" drained.
    A worker that does not drain is killed after stop_timeout_s, its calls and audit queue lost,
    and Supervisor.run still returns 0 (only a failed start-up gives 1): the container's exit
    status says the drain was clean."""
    group, stuck = stuck_worker_group
    os.kill(stuck, signal.SIGSTOP)
    group.signal(signal.SIGTERM)
    status = group.wait(19)
    assert status is not None, "the supervisor did not end"
    assert "after the stop: killed" in group.log_text()
    assert status != 0, "worker 1 was killed, not drained, yet the server exited 0"


def test_a_pods_credential_failure_budget_is_not_multiplied_by_its_workers(
    pg_pair: tuple[LocalPair, PairRecord], settings: Settings, tmp_path: Path
) -> None:
    """Each worker keeps its own FailureThrottle (app/admission/credential_checks.py, built per
    worker process), and new connections land on any worker, so one pod of W workers granted W
    budgets: with the default 5 per address and name, 2 workers checked about 10 wrong tokens
    in the window. Shares rounded up (session 17) made it at most 6; the budgets held by the
    database (migration 0021, app/admission/shared_failures.py) make it the budget itself."""
    budget = 5
    group = started(
        pg_pair,
        settings,
        tmp_path,
        credential_failures_per_pair=str(budget),
        argon2_memory_kib="8192",
        argon2_time_cost="1",
        argon2_parallelism="1",
    )
    try:
        for _ in range(16):  # fresh connections: spread over the workers as a botnet's are
            conn = http.client.HTTPConnection("127.0.0.1", group.port, timeout=10)
            conn.request(
                "GET",
                "/api/v1/insured?limit=1",
                headers={"Authorization": "Bearer ssogw_nosuchid_guess"},
            )
            response = conn.getresponse()
            response.read()
            conn.close()
            assert response.status == 401
        conn = http.client.HTTPConnection("127.0.0.1", group.port, timeout=10)
        seen = samples(conn)
        conn.close()
    finally:
        group.kill()
    checked = seen.get('ssogw_admission_refusals_total{protocol="rest",reason="unknown_token"}', 0)
    throttled = seen.get('ssogw_admission_refusals_total{protocol="rest",reason="throttled"}', 0)
    assert checked == budget and throttled == 16 - budget, (
        f"{checked:.0f} guesses checked, {throttled:.0f} throttled"
    )


def test_ctrl_c_stops_every_worker_without_a_traceback(
    pg_pair: tuple[LocalPair, PairRecord], settings: Settings, tmp_path: Path
) -> None:
    """docs/operations.md, Workers: SIGINT (a terminal's Ctrl-C) reaches the supervisor, "which
    passes it on", and each worker drains as on SIGTERM; every log line is JSON. The supervisor
    forwards SIGINT itself (Supervisor._forward); uvicorn re-raises it once drained, asyncio's
    runner turns it into KeyboardInterrupt, and each worker dies printing a plain traceback."""
    group = started(pg_pair, settings, tmp_path, shutdown_drain_s="0.2")
    with connected(group.port):
        pass  # both workers serve
    group.signal(signal.SIGINT)
    assert group.wait(20) == 0, group.log_tail()
    assert_all_json(group.log_text())


@pytest.mark.serial
def test_a_second_ctrl_c_stops_the_workers_at_once(
    pg_pair: tuple[LocalPair, PairRecord], settings: Settings, tmp_path: Path
) -> None:
    """A second signal stops the group at once (docs/operations.md, Workers), although the first
    goes on to the workers as SIGTERM: uvicorn ends its graceful wait for calls in flight only on
    a SIGINT that follows the first signal. Here a call is in flight on every worker (a body
    half sent) and the graceful wait is 20 s; the group must end well before, its log all JSON."""
    group = started(
        pg_pair, settings, tmp_path,
        shutdown_drain_s="0.2", shutdown_grace_s="20", http_body_timeout_s="60",
    )  # fmt: skip
    halves = []
    try:
        with connected(group.port) as kept:
            for conn in kept.values():  # one kept-alive connection a worker: a call on each
                sock = conn.sock
                assert sock is not None
                sock.sendall(
                    b"POST /api/v1/payments HTTP/1.1\r\nHost: gw\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
                )
                halves.append(conn)
            time.sleep(0.3)
            group.signal(signal.SIGINT)
            time.sleep(1.0)
            started_at = time.monotonic()
            group.signal(signal.SIGINT)
            status = group.wait(15)
            took = time.monotonic() - started_at
    finally:
        group.kill()
    assert status is not None, "a second Ctrl-C did not stop the group within 15 s"
    assert took < 10, f"the group took {took:.1f} s after the second Ctrl-C"
    assert_all_json(group.log_text())


def serve_once(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("SSOGW_")}
    environ.update(
        SSOGW_DATA_DIR=str(settings.data_dir),
        SSOGW_PRIMARY_DSN=settings.primary_dsn,
        SSOGW_HTTP_PORT=str(free_port()),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "app.cli.main", "serve", *args],
        env=environ, cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_a_huge_worker_count_is_refused_as_such(settings: Settings) -> None:
    """`--workers 0`, `-1` and `abc` are usage errors (status 2, naming --workers). A huge count
    has no bound at all (app/cli/serve.py `_workers`): the supervisor binds a socket per worker
    until the descriptors run out and says only "error: [Errno 24] Too many open files"; a count
    below the descriptor limit (say 5000 on a 2-CPU host) starts that many interpreters."""
    done = serve_once(settings, "--workers", "100000")
    assert done.returncode == 2, (done.returncode, done.stderr[-400:])
    assert "--workers" in done.stderr, done.stderr[-400:]


def test_ssogw_http_workers_0_is_a_clear_error_not_a_traceback(settings: Settings) -> None:
    """SSOGW_HTTP_WORKERS=0 (or -1, or "auto") is refused by Settings (ge=1), but `ssogw`
    builds Settings outside its error handling (app/cli/main.py), so the operator gets a
    pydantic traceback instead of a one-line error."""
    done = serve_once(settings, SSOGW_HTTP_WORKERS="0")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-600:]
