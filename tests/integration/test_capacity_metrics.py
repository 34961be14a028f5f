"""What an SRE reads at /metrics besides the calls: the loop, the pools, the audit path, the
process, the build; and no partner on the latency histogram."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.main import Gateway
from tests.support.people import new_national_id

pytestmark = pytest.mark.db


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))


async def test_a_scrape_shows_pool_waits_loop_lag_audit_and_process(
    live_url: str, client_token: str, gateway: Gateway
) -> None:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as http:
        before = samples((await http.get("/metrics")).text)
        # Calls that take connections from the replica pool (an inquiry) and the primary.
        auth = {"Authorization": f"Bearer {client_token}"}
        for _ in range(3):  # unknown persons: each still one read on a replica
            await http.get(f"/api/v1/insured/{new_national_id()}/contributions", headers=auth)
        await asyncio.sleep(0.6)  # two ticks of the loop-lag timer
        after = samples((await http.get("/metrics")).text)

    waited = value(after, "ssogw_pool_acquire_seconds_count") - value(
        before, "ssogw_pool_acquire_seconds_count"
    )
    assert waited >= 3, "each call's connection wait is observed"
    assert value(after, "ssogw_pool_connections_max", pool="primary") >= 1
    assert value(after, "ssogw_event_loop_lag_seconds_count") > value(
        before, "ssogw_event_loop_lag_seconds_count"
    )
    assert ("ssogw_audit_queued_records", frozenset()) in after
    assert ("ssogw_audit_spool_bytes", frozenset()) in after
    assert value(after, "ssogw_primary_up") == 1
    assert value(after, "process_resident_memory_bytes") > 10_000_000
    assert value(after, "process_cpu_seconds_total") > 0
    (build,) = [ls for (n, ls), v in after.items() if n == "ssogw_build_info" and v == 1]
    assert {"version", "commit", "python"} == {k for k, _ in build}
    latency = [ls for (n, ls), _ in after.items() if n == "ssogw_request_duration_seconds_count"]
    assert latency and all("partner" not in dict(ls) for ls in latency)
    calls = [ls for (n, ls), _ in after.items() if n == "ssogw_requests_total"]
    assert any("partner" in dict(ls) for ls in calls), "partner stays on the counter"


async def test_a_pool_that_cannot_hand_out_a_connection_counts_a_timeout(
    gateway: Gateway,
) -> None:
    pool = gateway.db.primary
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        with pytest.raises(TimeoutError):
            await pool.acquire(timeout=0.05)
    finally:
        for conn in held:
            await pool.release(conn)
    registry = gateway.metrics.registry
    assert (
        registry.get_sample_value("ssogw_db_errors_total", {"pool": "primary", "kind": "timeout"})
        or 0
    ) >= 1
