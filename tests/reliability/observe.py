"""What an SRE sees of a gateway process: /metrics samples, /readyz, and waiting for them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    """Every sample of /metrics as ``name{label="value",...}`` (labels sorted) -> value."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text[:300]
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


REPLICA_UP = 'ssogw_replica_up{replica="replica-0"}'
REPLICA_LAG = 'ssogw_replica_lag_seconds{replica="replica-0"}'
READS_PRIMARY = 'ssogw_reads_total{path="primary"}'
READS_REPLICA = 'ssogw_reads_total{path="replica"}'


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    """/readyz: its status and body."""
    response = await client.get("/readyz")
    return response.status_code, response.json()


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float, what: str, every_s: float = 0.1
) -> float:
    """Poll ``check`` until it is true; the seconds it took (TimeoutError after ``timeout_s``)."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what}: not within {timeout_s} s")
        await asyncio.sleep(every_s)
    return time.monotonic() - started
