"""The large families write the same series prometheus_client would, in the text format."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.observability.metric_families import FastCounter, FastHistogram, write_out
from app.observability.metrics import LATENCY_BUCKETS, Metrics

AWKWARD = ["ok", 'say "hi"', "back\\slash", "two\nlines", "ชำระเงิน"]


def parsed(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def families() -> tuple[FastCounter, FastHistogram, CollectorRegistry]:
    registry = CollectorRegistry()
    counter = FastCounter("t_calls_total", "Calls.", ["op", "partner"], registry=registry)
    histogram = FastHistogram(
        "t_seconds", "Seconds.", ["op"], buckets=LATENCY_BUCKETS, registry=registry
    )
    for i, value in enumerate(AWKWARD):
        counter.labels(value, f"p{i}").inc(i + 0.5)
        cell = histogram.labels(value)
        for amount in (0.0005, 0.001, 0.02, 3.0, 99.0)[: i + 1]:
            cell.observe(amount)
    return counter, histogram, registry


def test_written_out_is_what_prometheus_client_writes() -> None:
    counter, histogram, registry = families()
    ours = asyncio.run(write_out((counter, histogram))).decode()
    theirs = generate_latest(registry).decode()
    assert parsed(ours) == parsed(theirs)
    assert len(parsed(ours)) == len(AWKWARD) * (1 + len(LATENCY_BUCKETS) + 1 + 2)


def test_a_bucket_holds_the_values_up_to_its_bound_and_inf_holds_all() -> None:
    _, histogram, _ = families()
    found = parsed(asyncio.run(write_out((histogram,))).decode())
    op = frozenset({("op", "ชำระเงิน")})
    assert found[("t_seconds_bucket", op | {("le", "0.001")})] == 2  # 0.0005 and 0.001
    assert found[("t_seconds_bucket", op | {("le", "+Inf")})] == 5
    assert found[("t_seconds_count", op)] == 5
    assert found[("t_seconds_sum", op)] == pytest.approx(102.0215)


def test_a_counter_never_goes_down() -> None:
    counter, _, _ = families()
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels("ok", "p0").inc(-1)


def test_the_scrape_holds_both_the_registry_and_the_large_families() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.requests.labels("soap", "InquireContribution", "ok", "p1").inc()
    metrics.request_seconds.labels("soap", "InquireContribution", "ok").observe(0.004)
    found = parsed(asyncio.run(metrics.exposition()).decode())
    labels = {("protocol", "soap"), ("operation", "InquireContribution"), ("outcome", "ok")}
    assert found[("ssogw_requests_total", frozenset(labels | {("partner", "p1")}))] == 1
    assert found[("ssogw_request_duration_seconds_count", frozenset(labels))] == 1
    assert ("ssogw_ready", frozenset()) in found
    assert any(name == "process_cpu_seconds_total" for name, _ in found)


def test_a_scrape_returns_to_the_loop_between_chunks() -> None:
    counter = FastCounter("t_many_total", "Many.", ["n"])
    for n in range(10_000):
        counter.labels(str(n)).inc()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def scrape() -> bytes:
        task = asyncio.create_task(ticker())
        try:
            return await write_out((counter,))
        finally:
            task.cancel()

    text = asyncio.run(scrape())
    assert text.count(b"\n") == 10_000 + 2
    assert ticks >= 4, "other tasks ran while 10,000 series were written"
