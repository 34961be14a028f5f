"""A real Prometheus server scrapes the live app with the shipped config and rules, and
answers with the app's metrics through its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.db.local_pair import free_port
from tests.deploy.deploy_files import PROMETHEUS, load_yaml
from tests.reliability.gateway_process import dies_with_parent

pytestmark = pytest.mark.db
WAIT_S = 30


def scrape_config(target: str, tmp_path: Path) -> Path:
    """deploy/prometheus/local.yml aimed at ``target``, scraping and evaluating every second."""
    config = load_yaml(PROMETHEUS / "local.yml")
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS / pattern) for pattern in config["rule_files"]]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [target]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def prometheus(live_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus server on a free loopback port scraping the live app; its base URL."""
    tmp_path = tmp_path_factory.mktemp("prometheus")
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed: run scripts/ensure-os-tools (Debian package)")
    target = live_url.removeprefix("http://")
    assert target.startswith("127.0.0.1:"), "only ever scrape loopback"
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={scrape_config(target, tmp_path)}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=dies_with_parent(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT_S
        while not _ready(base):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                output = (tmp_path / "prometheus.log").read_text()
                pytest.fail(f"prometheus did not start (exit {process.poll()}):\n{output}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/-/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def eventually(probe: Callable[[], Any], what: str) -> Any:
    """``probe()``'s first truthy answer within WAIT_S seconds."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            answer = probe()
        except httpx.TransportError:
            answer = None
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"within {WAIT_S} s: {what}")
        time.sleep(0.25)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def test_prometheus_reads_the_apps_metrics_back(prometheus: str, live_url: str) -> None:
    instance = live_url.removeprefix("http://")
    with httpx.Client(base_url=live_url, timeout=5) as app:
        assert app.get("/livez").status_code == 200
        assert app.get("/readyz").status_code == 200  # sets ssogw_ready
        for _ in range(3):  # three SOAP calls, whatever their outcome
            app.post("/soap/v1", content=b"not xml", headers={"Content-Type": "text/xml"})

    up = eventually(lambda: query(prometheus, 'up{job="ssogw"} == 1'), "the app scraped")
    assert [s["metric"]["instance"] for s in up] == [instance]

    ready = eventually(lambda: query(prometheus, "ssogw_ready"), "ssogw_ready scraped")
    assert [value(s) for s in ready] == [1.0]
    assert ready[0]["metric"]["job"] == "ssogw"

    pools = {s["metric"]["pool"]: value(s) for s in query(prometheus, "ssogw_pool_connections")}
    assert pools.get("primary", 0) >= 1, pools
    replica = query(prometheus, 'ssogw_replica_up{replica="replica-0"}')
    assert [value(s) for s in replica] == [1.0], "the session's streaming replica is up"
    lag = query(prometheus, "ssogw_replica_lag_seconds")
    assert lag and all(0 <= value(s) < 5 for s in lag), lag

    soap = eventually(
        lambda: query(prometheus, 'sum(ssogw_requests_total{protocol="soap"}) >= 3'),
        "three SOAP calls counted",
    )
    assert value(soap[0]) >= 3


def test_the_shipped_rules_load_and_evaluate_cleanly(prometheus: str) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        response = httpx.get(f"{prometheus}/api/v1/rules", timeout=5)
        groups = response.json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = rules and all(rule.get("health") in {"ok", "err"} for rule in rules)
        return rules if done else None

    rules = eventually(evaluated, "every rule evaluated once")
    shipped = load_yaml(PROMETHEUS / "rules" / "ssogw.rules.yml")["groups"]
    assert sorted(rule["name"] for rule in rules) == sorted(
        rule.get("alert") or rule["record"] for group in shipped for rule in group["rules"]
    )
    broken = [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    assert broken == []
