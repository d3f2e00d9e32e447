"""The Prometheus view of the OpenTelemetry metrics: a pull reader rendered as Prometheus text.

No OTel Prometheus exporter is installed, and a second set of prometheus_client instruments
would be a second source of truth. So this bridge is an OTel MetricReader (cumulative, like
Prometheus wants) that a prometheus_client registry collects on each scrape: the /metrics
text shows exactly what OTLP exports.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    MetricReader,
    MetricsData,
    Sum,
)
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def prometheus_name(name: str) -> str:
    cleaned = _INVALID.sub("_", name)
    return cleaned if not cleaned[:1].isdigit() else "_" + cleaned


def _labels(attributes: Any) -> dict[str, str]:
    if not attributes:
        return {}
    return {prometheus_name(str(k)): str(v).lower() if isinstance(v, bool) else str(v) for k, v in attributes.items()}


def _bound(value: float) -> str:
    return repr(float(value))


class PrometheusBridge(MetricReader):
    """Register on the MeterProvider; `render()` collects and formats the current values."""

    def __init__(self) -> None:
        super().__init__()
        self._latest: MetricsData | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Scrape(self))  # a Collector is anything with collect()

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        self._latest = metrics_data

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._latest = None

    def families(self) -> list[Metric]:
        """Pull the current values from the SDK, as Prometheus metric families."""
        self.collect()
        data, self._latest = self._latest, None
        return [] if data is None else list(_families(data))

    def render(self) -> tuple[bytes, str]:
        """The text exposition format (0.0.4, what every Prometheus scrapes) and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4


class _Scrape:
    """The registry's collector: each scrape pulls fresh values through the bridge."""

    def __init__(self, bridge: PrometheusBridge) -> None:
        self.bridge = bridge

    def collect(self) -> Iterator[Metric]:
        return iter(self.bridge.families())

    def describe(self) -> list[Metric]:
        return []  # unknown until the first scrape; registering must not collect


def _families(data: MetricsData) -> Iterator[Metric]:
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                family = _family(metric)
                if family is not None:
                    yield family


def _family(metric: Any) -> Metric | None:
    name = prometheus_name(metric.name)
    doc = metric.description or metric.name
    points = metric.data
    if isinstance(points, Sum) and points.is_monotonic:
        base = name[: -len("_total")] if name.endswith("_total") else name
        family = Metric(base, doc, "counter")
        for point in points.data_points:
            family.add_sample(base + "_total", _labels(point.attributes), float(point.value))
        return family
    if isinstance(points, (Sum, Gauge)):
        family = Metric(name, doc, "gauge")
        for point in points.data_points:
            family.add_sample(name, _labels(point.attributes), float(point.value))
        return family
    if isinstance(points, Histogram):
        family = Metric(name, doc, "histogram")
        for histogram in points.data_points:
            labels = _labels(histogram.attributes)
            running = 0
            # One count more than bounds: the last is the +Inf bucket, written from the total below.
            for bound, count in zip(histogram.explicit_bounds, histogram.bucket_counts, strict=False):
                running += count
                family.add_sample(name + "_bucket", {**labels, "le": _bound(bound)}, float(running))
            family.add_sample(name + "_bucket", {**labels, "le": "+Inf"}, float(histogram.count))
            family.add_sample(name + "_count", labels, float(histogram.count))
            family.add_sample(name + "_sum", labels, float(histogram.sum))
        return family
    return None
