"""One exposition for a group of worker processes, from each worker's own (``ssogw serve
--workers N``): what a scrape of /metrics on any worker answers.

How each family of the workers becomes the group's:

- counters, histograms and summaries are **summed** (requests, errors, latency buckets, audit
  commits: the group did all of them);
- a gauge follows ``GAUGE_RULES``: **summed** where the group's figure is the total (requests
  in flight, open connections, pool connections, queued audit records, spooled bytes),
  **max** where every worker sees the same thing and the worst or the latest counts (build
  info, replica lag, open complaints), **min** where every worker must say yes (ready, the
  primary and each replica up, listening for principal changes);
- the process's own families (``process_*``: CPU seconds, resident and virtual memory, open
  and allowed file descriptors, start time) describe one process each: they keep one series
  per worker, labelled ``worker="<index>"`` (summing resident memory would count pages the
  workers share twice; ``sum by (pod)`` adds them up where wanted). So does any gauge
  without a rule (a test keeps every gauge of the gateway's in ``GAUGE_RULES``);
- ``*_created`` gauges (the start of a counter) take the earliest.

A worker that exits and is restarted starts its counters from zero again. So that the group's
sums never go down (which Prometheus would take for a reset, and count everything again), the
supervisor keeps the last exposition it had from every worker and, when one exits, adds its
counters to ``Retired``, which every later merge includes. Increments made after its last
scrape are lost with it; the sums stay monotonic.

The text is the exposition format as the gateway writes it (prometheus_client's and
``metric_families``'): ``# HELP`` and ``# TYPE`` before each family's samples, one sample a
line, no timestamps; label values never end a line, so a sample's value follows its last space.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Rule = Literal["sum", "max", "min", "worker"]

#: How each gauge of the gateway becomes the group's (module docstring).
GAUGE_RULES: Mapping[str, Rule] = {
    "ssogw_requests_in_flight": "sum",
    "ssogw_http_connections_open": "sum",
    "ssogw_pool_connections": "sum",
    "ssogw_pool_connections_in_use": "sum",
    "ssogw_pool_connections_max": "sum",
    "ssogw_audit_queued_records": "sum",
    "ssogw_audit_spool_bytes": "sum",
    "ssogw_build_info": "max",
    "python_info": "max",
    "ssogw_replica_lag_seconds": "max",
    "ssogw_replica_lag_bytes": "max",
    "ssogw_open_complaints": "max",
    "ssogw_primary_up": "min",
    "ssogw_replica_up": "min",
    "ssogw_principal_changes_listening": "min",
    "ssogw_ready": "min",
}


@dataclass(slots=True)
class Family:
    """One metric family of an exposition: its header lines, type and samples."""

    name: str
    head: str  # the "# HELP" and "# TYPE" lines, each ending in a newline
    kind: str = "untyped"
    samples: dict[str, float] = field(default_factory=dict)  # 'name{labels}' -> value


Parsed = dict[str, Family]


def rule(name: str, kind: str) -> Rule:
    """How family ``name`` of type ``kind`` becomes the group's."""
    if name.startswith("process_"):
        return "worker"
    if kind != "gauge":
        return "sum"
    if name in GAUGE_RULES:
        return GAUGE_RULES[name]
    return "min" if name.endswith("_created") else "worker"


def parse(text: str) -> Parsed:
    """The families of one exposition, in order."""
    families: Parsed = {}
    current: Family | None = None
    for line in text.split("\n"):
        if not line:
            continue
        if line[0] == "#":
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[1] not in ("HELP", "TYPE"):
                continue
            name = parts[2]
            if current is None or current.name != name:
                current = families.get(name)
                if current is None:
                    current = families[name] = Family(name, "")
            current.head += line + "\n"
            if parts[1] == "TYPE" and len(parts) == 4:
                current.kind = parts[3].strip()
            continue
        key, _, value = line.rpartition(" ")
        if current is None:  # a sample before any header: a family of its own
            name = key.split("{", 1)[0]
            current = families.setdefault(name, Family(name, ""))
        current.samples[key] = float(value)
    return families


def _with_worker(key: str, worker: int) -> str:
    if key.endswith("}"):
        return f'{key[:-1]},worker="{worker}"}}'
    return f'{key}{{worker="{worker}"}}'


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value)}.0"
    return repr(value)


class Retired:
    """The summed counters of workers that have exited, kept for every later merge."""

    def __init__(self) -> None:
        self.families: Parsed = {}

    def absorb(self, parsed: Parsed) -> None:
        """Add the counters (and histograms) of a worker's last exposition."""
        for name, family in parsed.items():
            if family.kind == "gauge" or rule(name, family.kind) != "sum":
                continue  # what is now, not what was done: a gauge goes with its worker
            kept = self.families.get(name)
            if kept is None:
                kept = self.families[name] = Family(name, family.head, family.kind)
            samples = kept.samples
            for key, value in family.samples.items():
                samples[key] = samples.get(key, 0.0) + value


def merge(workers: Iterable[tuple[int, Parsed]], *, retired: Retired | None = None) -> str:
    """The group's exposition from each worker's (index, parsed exposition)."""
    merged: Parsed = {}
    sources = list(workers)
    if retired is not None and retired.families:
        sources.append((-1, retired.families))
    for index, parsed in sources:
        for name, family in parsed.items():
            how = rule(name, family.kind)
            if index < 0 and how != "sum":
                continue
            into = merged.get(name)
            if into is None:
                into = merged[name] = Family(name, family.head, family.kind)
            samples = into.samples
            if how == "sum":
                for key, value in family.samples.items():
                    samples[key] = samples.get(key, 0.0) + value
            elif how == "worker":
                for key, value in family.samples.items():
                    samples[_with_worker(key, index)] = value
            else:
                pick = max if how == "max" else min
                for key, value in family.samples.items():
                    seen = samples.get(key)
                    samples[key] = value if seen is None else pick(seen, value)
    out: list[str] = []
    for family in merged.values():
        out.append(family.head)
        out.extend(f"{key} {_number(value)}\n" for key, value in family.samples.items())
    return "".join(out)
