"""`ssogw serve --workers 2`, as real processes on the session's pair: both workers answer on
one port, /metrics from either reports the group (counters summed), a worker killed with
SIGKILL is started again without the group's counters going back, SIGTERM drains both, and a
start-up that cannot succeed ends the server with status 1."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.db.local_pair import LocalPair, PairRecord, free_port
from app.settings import Settings
from tests.reliability.gateway_process import REPO, GatewayProcess, gateway_env

pytestmark = pytest.mark.db

NOT_FOUND = (
    'ssogw_requests_total{operation="GET /api/v1/{path:path}",outcome="http_404",'
    'partner="anonymous",protocol="rest"}'
)


def group_env(
    pg_pair: tuple[LocalPair, PairRecord], settings: Settings, **overrides: str
) -> dict[str, str]:
    """Two workers, one of the session's instances (its seal key; a spool of its own)."""
    return gateway_env(
        pg_pair[1],
        secret_key=settings.secret_key,
        data_dir=settings.data_dir,
        http_workers="2",
        instance_id=f"workers-{uuid.uuid4().hex[:8]}",
        shutdown_drain_s="1",
        http_keepalive_timeout_s="60",  # the tests keep a connection to each worker
        **overrides,
    )


@pytest.fixture
def group(
    pg_pair: tuple[LocalPair, PairRecord], settings: Settings, tmp_path: Path
) -> Iterator[GatewayProcess]:
    process = GatewayProcess(env=group_env(pg_pair, settings), logs=tmp_path, name="group")
    process.start()
    try:
        yield process
    finally:
        process.kill()  # the supervisor: its workers stop when their line to it closes


@contextmanager
def connected(port: int, workers: int = 2) -> Iterator[dict[str, http.client.HTTPConnection]]:
    """A kept-alive connection to each worker: new ones until every worker has answered."""
    found: dict[str, http.client.HTTPConnection] = {}
    deadline = time.monotonic() + 20
    try:
        while len(found) < workers:
            assert time.monotonic() < deadline, f"only workers {sorted(found)} answered"
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                status, body = get(conn, "/livez")
            except OSError:
                conn.close()
                time.sleep(0.05)
                continue
            worker = json.loads(body)["worker"] if status == 200 else None
            if worker is None or worker in found:
                conn.close()
            else:
                found[worker] = conn
        yield found
    finally:
        for conn in found.values():
            conn.close()


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def samples(conn: http.client.HTTPConnection) -> dict[str, float]:
    status, body = get(conn, "/metrics")
    assert status == 200, body[:300]
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def workers_of(supervisor: int) -> dict[str, int]:
    """The supervisor's worker processes now: worker index -> pid (from /proc)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == supervisor and b"--worker" in argv:
            index = argv[argv.index(b"--worker") + 1].decode().split("/")[0]
            found[index] = int(entry.name)
    return found


def test_two_workers_share_the_port_and_metrics_from_either_count_both(
    group: GatewayProcess, settings: Settings
) -> None:
    pids = workers_of(group.pid)
    assert sorted(pids) == ["0", "1"] and len(set(pids.values())) == 2, pids
    with connected(group.port) as conns:
        for worker, times in (("0", 3), ("1", 4)):
            for _ in range(times):
                assert get(conns[worker], "/api/v1/no-such-resource")[0] == 404
        for worker, conn in conns.items():
            seen = samples(conn)
            assert seen[NOT_FOUND] == 7, f"worker {worker} answered {seen.get(NOT_FOUND)}"
            assert seen["ssogw_workers_serving"] == 2
            # Each worker's own process, labelled; the pools' maximum is the settings' own.
            cpu = {f'process_cpu_seconds_total{{worker="{i}"}}' for i in range(2)}
            assert cpu <= set(seen)
            assert seen['ssogw_pool_connections_max{pool="primary"}'] == settings.primary_pool_max


@pytest.mark.serial
def test_a_worker_killed_is_started_again_and_the_counts_go_on(group: GatewayProcess) -> None:
    with connected(group.port) as conns:
        for _ in range(5):
            assert get(conns["1"], "/api/v1/no-such-resource")[0] == 404
        assert samples(conns["0"])[NOT_FOUND] == 5
    killed = workers_of(group.pid)["1"]
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while workers_of(group.pid).get("1") in (None, killed):
        assert time.monotonic() < deadline, "worker 1 was not started again"
        time.sleep(0.05)
    with connected(group.port) as again:
        assert get(again["1"], "/api/v1/no-such-resource")[0] == 404
        seen = samples(again["1"])
    assert seen[NOT_FOUND] == 6, "the killed worker's counts are kept"
    assert seen["ssogw_worker_restarts_total"] == 1
    assert f"worker 1 (pid {killed}) was killed by SIGKILL; starting it again" in group.log_text()


@pytest.mark.serial
def test_sigterm_drains_both_workers_then_the_server_exits(group: GatewayProcess) -> None:
    pids = workers_of(group.pid)
    with connected(group.port) as conns:
        group.signal(signal.SIGTERM)
        signalled = time.monotonic()
        for worker, conn in conns.items():
            while get(conn, "/readyz")[0] != 503:  # the signal is on its way
                assert time.monotonic() - signalled < 0.5, f"worker {worker} still ready"
                time.sleep(0.01)
            # A balancer that has not noticed yet is still served.
            assert get(conn, "/api/v1/no-such-resource")[0] == 404
    closed = None
    while closed is None and time.monotonic() - signalled < 10:
        probe = http.client.HTTPConnection("127.0.0.1", group.port, timeout=1)
        try:
            get(probe, "/livez")
        except OSError:
            closed = time.monotonic() - signalled
        finally:
            probe.close()
        time.sleep(0.05)
    assert closed is not None and closed >= 0.8, f"the listener closed after {closed} s"
    assert group.wait(15) == 0, group.log_tail()
    alive = [pid for pid in pids.values() if Path(f"/proc/{pid}").exists()]
    assert not alive, f"workers {alive} outlived their supervisor"


def test_workers_that_cannot_start_end_the_server_with_status_1(
    pg_pair: tuple[LocalPair, PairRecord], settings: Settings, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "spool"
    not_a_directory.write_text("")
    env = group_env(pg_pair, settings, audit_spool_dir=str(not_a_directory))
    env["SSOGW_HTTP_PORT"] = str(free_port())
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "serve"],  # as the console script: its status
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    assert "before it served, 3 times in a row: stopping the server" in done.stderr
    refusals = [json.loads(line) for line in done.stderr.splitlines() if "is not writable" in line]
    assert {line.get("worker") for line in refusals} == {0, 1}, "each worker's lines say which"
