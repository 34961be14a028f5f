"""One exposition for a group of workers: counters and histograms summed, each gauge by its
rule, each process's own families labelled by worker, and sums that never go back when a
worker is restarted."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from app.observability.group_exposition import GAUGE_RULES, Retired, merge, parse
from app.observability.metrics import Metrics


def values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def worker(*, refusals: int, in_flight: int, lag: float, up: bool, slow: int) -> str:
    """One worker's exposition, as its /metrics would write it."""
    metrics = Metrics(CollectorRegistry())
    for _ in range(refusals):
        metrics.admission_refused("bad_password", "soap")
    metrics.in_flight.labels("soap").set(in_flight)
    metrics.replica_lag("replica-0", seconds=lag, lag_bytes=10, up=True)
    metrics.replica_up.labels("replica-0").set(1 if up else 0)
    metrics.requests.labels("soap", "InquireContribution", "ok", "cvs").inc(slow)
    for _ in range(slow):
        metrics.request_seconds.labels("soap", "InquireContribution", "ok").observe(0.3)
    metrics.primary_up.set(1)
    return asyncio.run(metrics.exposition()).decode()


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_counters_and_histograms_are_summed_and_gauges_follow_their_rules() -> None:
    a = worker(refusals=2, in_flight=3, lag=0.5, up=True, slow=1)
    b = worker(refusals=5, in_flight=4, lag=1.5, up=False, slow=2)
    group = values(merge([(0, parse(a)), (1, parse(b))]))
    assert group[key("ssogw_admission_refusals_total", reason="bad_password", protocol="soap")] == 7
    soap_ok = {"protocol": "soap", "operation": "InquireContribution", "outcome": "ok"}
    assert group[key("ssogw_requests_total", **soap_ok, partner="cvs")] == 3
    assert group[key("ssogw_request_duration_seconds_bucket", **soap_ok, le="0.25")] == 0
    assert group[key("ssogw_request_duration_seconds_bucket", **soap_ok, le="0.5")] == 3
    assert group[key("ssogw_request_duration_seconds_count", **soap_ok)] == 3
    assert group[key("ssogw_requests_in_flight", protocol="soap")] == 7  # summed
    assert group[key("ssogw_replica_lag_seconds", replica="replica-0")] == 1.5  # the worst
    assert group[key("ssogw_replica_up", replica="replica-0")] == 0  # one worker says down
    assert group[key("ssogw_primary_up")] == 1
    # One series per process, labelled; the start of a counter is the earliest.
    assert {key("process_cpu_seconds_total", worker=str(i)) for i in range(2)} <= set(group)
    created = key("ssogw_admission_refusals_created", reason="bad_password", protocol="soap")
    assert group[created] == min(values(a)[created], values(b)[created])


def test_a_restarted_workers_counts_are_kept_so_the_sums_never_go_back() -> None:
    retired = Retired()
    before = parse(worker(refusals=4, in_flight=2, lag=0, up=True, slow=3))
    other = parse(worker(refusals=1, in_flight=0, lag=0, up=True, slow=0))
    first = values(merge([(0, other), (1, before)], retired=retired))
    retired.absorb(before)  # worker 1 exited; its successor starts from zero
    after_text = worker(refusals=1, in_flight=1, lag=0, up=True, slow=0)
    after = parse(after_text)
    second = values(merge([(0, other), (1, after)], retired=retired))
    refusals = key("ssogw_admission_refusals_total", reason="bad_password", protocol="soap")
    assert (first[refusals], second[refusals]) == (5, 6)
    assert second[key("ssogw_requests_in_flight", protocol="soap")] == 1  # gauges: live only
    # A process's own families are the live process's, never added to what a retired one had
    # (every "worker" here is this test's process, whose CPU time is whatever it is by now).
    cpu = key("process_cpu_seconds_total")
    assert second[key("process_cpu_seconds_total", worker="1")] == values(after_text)[cpu]


def test_every_gauge_of_the_gateway_says_how_the_group_shows_it() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    gauges = {
        family.name
        for family in registry.collect()
        if family.type == "gauge" and not family.name.startswith("process_")
    }
    assert gauges == set(GAUGE_RULES), (
        f"no rule: {sorted(gauges - set(GAUGE_RULES))}; "
        f"no such gauge: {sorted(set(GAUGE_RULES) - gauges)}"
    )


def test_the_merge_keeps_empty_families_and_writes_each_header_once() -> None:
    a = worker(refusals=0, in_flight=0, lag=0, up=True, slow=0)
    text = merge([(0, parse(a)), (1, parse(a))])
    assert text.count("# TYPE ssogw_http_connections_cut_total counter") == 1  # no sample yet
    assert text.count("# HELP ssogw_requests_total ") == 1
    assert len(list(text_string_to_metric_families(text))) == len(
        list(text_string_to_metric_families(a))
    )
