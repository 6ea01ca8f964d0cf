"""Counters, gauges and histograms rendered in the Prometheus text exposition format (version 0.0.4).

Small on purpose: a served system needs a request counter and a latency
histogram per version, the gateway a few gauges. Nothing here does I/O, so
it is safe to update from the request path; rendering is a read of plain
dicts, done when Prometheus scrapes ``/metrics``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS_S: tuple[float, ...] = tuple(float(f"{0.0001 * 1.25**i:.3g}") for i in range(56))
"""Upper bounds in seconds, 0.1 ms to about 17 s, each 1.25 times the last: ``histogram_quantile``
interpolates inside one bucket, so a quantile it reports is within about 12 % of the exact one at
any scale (a local service answers in a fraction of a millisecond, a remote one in hundreds)."""

Labels = tuple[tuple[str, str], ...]


def escape_label(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{escape_label(str(v))}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


class Metric:
    """One metric family: a name, its help text, its type and samples per label set."""

    kind = "untyped"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str]):
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)

    def key(self, values: Sequence[str]) -> Labels:
        if len(values) != len(self.label_names):
            raise ValueError(f"{self.name}: labels {self.label_names}, got {tuple(values)}")
        return tuple(zip(self.label_names, (str(v) for v in values), strict=True))

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:  # pragma: no cover - every subclass renders itself
        raise NotImplementedError


class Counter(Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str]):
        super().__init__(name, help_text, label_names)
        self.values: dict[Labels, float] = {}

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        key = self.key(label_values)
        self.values[key] = self.values.get(key, 0.0) + amount

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(k)} {format_value(v)}" for k, v in sorted(self.values.items())]


class Gauge(Metric):
    kind = "gauge"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str]):
        super().__init__(name, help_text, label_names)
        self.values: dict[Labels, float] = {}

    def set(self, value: float, *label_values: str) -> None:
        self.values[self.key(label_values)] = float(value)

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(k)} {format_value(v)}" for k, v in sorted(self.values.items())]


class Histogram(Metric):
    """Cumulative buckets, ``_sum`` and ``_count`` per label set, as ``histogram_quantile`` reads them."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str],
        buckets: Sequence[float] = LATENCY_BUCKETS_S,
    ):
        super().__init__(name, help_text, label_names)
        self.bounds = tuple(sorted(buckets))
        self.counts: dict[Labels, list[int]] = {}
        self.sums: dict[Labels, float] = {}

    def observe(self, value: float, *label_values: str) -> None:
        key = self.key(label_values)
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = [0] * (len(self.bounds) + 1)
            self.sums[key] = 0.0
        counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sums[key] += value

    def lines(self) -> list[str]:
        out = []
        for key in sorted(self.counts):
            running = 0
            for bound, count in zip((*self.bounds, math.inf), self.counts[key], strict=True):
                running += count
                out.append(f"{self.name}_bucket{_labels((*key, ('le', format_value(bound))))} {running}")
            out.append(f"{self.name}_sum{_labels(key)} {format_value(self.sums[key])}")
            out.append(f"{self.name}_count{_labels(key)} {running}")
        return out


def render(metrics: Iterable[Metric]) -> str:
    """The text a ``/metrics`` endpoint returns for these families."""
    lines: list[str] = []
    for metric in metrics:
        lines += metric.header() + metric.lines()
    return "\n".join(lines) + "\n"
