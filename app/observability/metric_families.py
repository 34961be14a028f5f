"""The two metric families with many series, kept and written out cheaply.

``ssogw_requests_total`` (protocol × operation × outcome × partner) and
``ssogw_request_duration_seconds`` (protocol × operation × outcome, 13 buckets) hold most of a
scrape's series: with 100 partners, every operation and every outcome, 39,000 and 6,700 lines.
prometheus_client writes a sample in several µs (its general path: a Sample tuple, label
escaping and float formatting for each, every scrape); written here, a series' name and labels
are escaped once, when it first appears, a counter's line is kept until its value changes, and
a scrape mostly joins strings: well under 1 µs a line (``bench/scrape_cost.py``). The scrape
hands the loop back every ``CHUNK`` series, so calls in flight wait a fraction of a
millisecond for it at a time.

Each family also is a prometheus_client collector (``collect``, ``describe``): a registry that
holds it sees the same series as a scraper (tests register them on one of their own); the
gateway's registry does not hold them, so that ``generate_latest`` never writes them the slow
way, and ``/metrics`` appends ``write_out`` of them to it.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

#: Series written between two returns to the event loop during a scrape.
CHUNK = 250


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) or abs(value) >= 1e15 else f"{int(value)}.0"


class _CounterCell:
    __slots__ = ("head", "line", "value")

    def __init__(self, head: str) -> None:
        self.head = head  # the series' name and labels and a space, escaped once
        self.value = 0.0
        self.line = ""  # the sample line as last written; "" once the value has changed

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount
        self.line = ""

    def written(self) -> str:
        line = self.line
        if not line:  # most series do not change between two scrapes: written once each
            line = self.line = f"{self.head}{self.value!r}\n"
        return line


class FastCounter(Collector):
    """A counter with labels whose series are written out at the cost of a string join."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], *,
        registry: CollectorRegistry | None = None,
    ) -> None:  # fmt: skip
        self._name = name.removesuffix("_total")
        self._doc = documentation
        self._labelnames = tuple(labelnames)
        self._cells: dict[tuple[str, ...], _CounterCell] = {}
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> _CounterCell:
        """The series of these label values (made on first use)."""
        cell = self._cells.get(values)
        if cell is None:
            head = f"{self._name}_total{_labels(self._labelnames, values)} "
            cell = self._cells[values] = _CounterCell(head)
        return cell

    def header(self) -> str:
        name = f"{self._name}_total"
        return f"# HELP {name} {self._doc}\n# TYPE {name} counter\n"

    def lines(self) -> Iterator[list[str]]:
        """The exposition's sample lines, ``CHUNK`` series at a time."""
        cells = list(self._cells.values())
        for start in range(0, len(cells), CHUNK):
            yield [c.written() for c in cells[start : start + CHUNK]]

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._doc, labels=self._labelnames)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._doc, labels=self._labelnames)
        for values, cell in list(self._cells.items()):
            family.add_metric(list(values), cell.value)
        yield family


class _HistogramCell:
    __slots__ = ("bounds", "counts", "heads", "sum")

    def __init__(self, bounds: tuple[float, ...], heads: list[str]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last is +Inf
        self.heads = heads  # one per bucket, then _count, then _sum
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


class FastHistogram(Collector):
    """A histogram with labels, written out like ``FastCounter``."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], *,
        buckets: Sequence[float], registry: CollectorRegistry | None = None,
    ) -> None:  # fmt: skip
        self._name = name
        self._doc = documentation
        self._labelnames = tuple(labelnames)
        self._bounds = tuple(sorted(float(b) for b in buckets))
        self._les = [_number(b) for b in self._bounds] + ["+Inf"]
        self._cells: dict[tuple[str, ...], _HistogramCell] = {}
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> _HistogramCell:
        cell = self._cells.get(values)
        if cell is None:
            names = self._labelnames
            bucket = f"{self._name}_bucket"
            heads = [bucket + _labels(names, values, 'le="' + le + '"') + " " for le in self._les]
            heads.append(f"{self._name}_count{_labels(names, values)} ")
            heads.append(f"{self._name}_sum{_labels(names, values)} ")
            cell = self._cells[values] = _HistogramCell(self._bounds, heads)
        return cell

    def header(self) -> str:
        return f"# HELP {self._name} {self._doc}\n# TYPE {self._name} histogram\n"

    def lines(self) -> Iterator[list[str]]:
        cells = list(self._cells.values())
        step = max(1, CHUNK // (len(self._les) + 2))
        for start in range(0, len(cells), step):
            out: list[str] = []
            for cell in cells[start : start + step]:
                total = 0
                heads = cell.heads
                for i, count in enumerate(cell.counts):
                    total += count
                    out.append(f"{heads[i]}{total}.0\n")
                out.append(f"{heads[-2]}{total}.0\n")
                out.append(f"{heads[-1]}{cell.sum!r}\n")
            yield out

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self._name, self._doc, labels=self._labelnames)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self._name, self._doc, labels=self._labelnames)
        for values, cell in list(self._cells.items()):
            cumulative, total = [], 0
            for le, count in zip(self._les, cell.counts, strict=True):
                total += count
                cumulative.append((le, float(total)))
            family.add_metric(list(values), cumulative, cell.sum)
        yield family


async def write_out(families: Sequence[FastCounter | FastHistogram]) -> bytes:
    """The exposition text of ``families``, returning to the event loop between chunks."""
    parts: list[bytes] = []
    for family in families:
        parts.append(family.header().encode())
        for chunk in family.lines():
            parts.append("".join(chunk).encode())
            await asyncio.sleep(0)
    return b"".join(parts)
