"""OtelTelemetry: the Telemetry port on the OpenTelemetry SDK.

Spans nest through contextvars (also across awaits); an exception leaving a span is recorded
on it and sets its status to error. Instruments are made on first use and kept by name.
Nothing here touches OpenTelemetry's global providers: several telemetries (tests, a CLI
command inside a worker) can live side by side.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Status, StatusCode

from adapters.telemetry.prometheus import PrometheusBridge
from application.telemetry import Attribute

SCOPE = "mexc-sniper"

# Milliseconds, for a snipe that should take a few ms from launch to acceptance and may take a second.
MS_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class OtelTelemetry:
    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        buckets: Mapping[str, Sequence[float]] | None = None,
        bridge: PrometheusBridge | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.bridge = bridge
        self._closed = False
        self.meter_provider = meter_provider
        self._tracer = tracer_provider.get_tracer(SCOPE)
        self._meter = meter_provider.get_meter(SCOPE)
        self._buckets = dict(buckets or {})
        self._instruments: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()  # the metrics server thread may scrape while the loop records

    # --- Telemetry -------------------------------------------------------------------------

    @contextmanager
    def span(self, name: str, **attributes: Attribute) -> Iterator[None]:
        # Recorded here rather than by start_as_current_span so the error kind is an attribute too.
        with self._tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield None
            except BaseException as exc:
                _failed(span, exc)
                raise

    @contextmanager
    def deferred_span(self, name: str, **attributes: Attribute) -> Iterator[dict[str, Attribute]]:
        """A span made when the block ends, timed from its start: for the order send, where
        opening a span first (tens of microseconds) would delay the bytes. One the block leaves
        with an error is made later still, at the event loop's next turn (`later`), its error
        recorded by type and message without the stack (whoever handles the error has it): a
        refusal may be followed by a send at once (a 10007 in the bracket around the open), which
        a failed span made first held back by 1.4 ms (the stack formatted from cold source
        files). Nothing inside can be its child; attributes put in the yielded dict are added to it."""
        parent = otel_context.get_current()
        start = time.time_ns()
        extra: dict[str, Attribute] = {}
        try:
            yield extra
        except BaseException as exc:
            self.later(self._failed_span, name, parent, {**attributes, **extra}, start, time.time_ns(), exc)
            raise
        span = self._tracer.start_span(name, context=parent, attributes={**attributes, **extra}, start_time=start)
        span.end()

    def count_later(self, name: str, amount: int = 1, **attributes: Attribute) -> None:
        """`count`, at the event loop's next turn (`later`): for an error of the order send."""
        self.later(functools.partial(self.count, name, amount, **attributes))

    @staticmethod
    def later(callback: Callable[..., object], *args: Any) -> None:
        """Run `callback(*args)` at the running event loop's next turn, once the current task
        waits (for the reply to its next send), so that it holds nothing back; at once when no
        loop runs."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            callback(*args)
            return
        loop.call_soon(callback, *args)

    def annotate(self, **attributes: Attribute) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes(attributes)

    def count(self, name: str, amount: int = 1, **attributes: Attribute) -> None:
        self._instrument("counter", name).add(amount, attributes)

    def observe(self, name: str, value: float, **attributes: Attribute) -> None:
        self._instrument("histogram", name).record(value, attributes)

    def gauge(self, name: str, value: float, **attributes: Attribute) -> None:
        self._instrument("gauge", name).set(value, attributes)

    # --- running it ------------------------------------------------------------------------

    def render_metrics(self) -> tuple[bytes, str]:
        """Prometheus text for /metrics and its content type (empty when Prometheus is off)."""
        if self.bridge is None:
            return b"", "text/plain; version=0.0.4; charset=utf-8"
        return self.bridge.render()

    def shutdown(self) -> None:
        """Flush what is pending (OTLP batches) and stop. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    # --- inside ----------------------------------------------------------------------------

    def _instrument(self, kind: str, name: str) -> Any:
        found = self._instruments.get((kind, name))
        if found is not None:
            return found
        with self._lock:
            found = self._instruments.get((kind, name))
            if found is None:
                found = self._make(kind, name)
                self._instruments[(kind, name)] = found
        return found

    def _failed_span(
        self, name: str, parent: otel_context.Context, attributes: dict[str, Attribute], start: int, end: int,
        error: BaseException,
    ) -> None:
        span = self._tracer.start_span(name, context=parent, attributes=attributes, start_time=start)
        _failed(span, error, stack=False, at=end)
        span.end(end_time=end)

    def _make(self, kind: str, name: str) -> Any:
        unit = "ms" if name.endswith("_ms") else ""
        if kind == "counter":
            return self._meter.create_counter(name)
        if kind == "gauge":
            return self._meter.create_gauge(name, unit=unit)
        buckets = self._buckets.get(name) or (MS_BUCKETS if unit == "ms" else None)
        return self._meter.create_histogram(
            name, unit=unit, explicit_bucket_boundaries_advisory=list(buckets) if buckets else None
        )


def _failed(span: trace.Span, exc: BaseException, *, stack: bool = True, at: int | None = None) -> None:
    if stack:
        span.record_exception(exc)
    else:  # the "exception" event without its costly "exception.stacktrace"
        span.add_event("exception", {"exception.type": type(exc).__name__, "exception.message": str(exc)}, at)
    span.set_attribute("error.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:500]))


def configure_telemetry(
    service_name: str,
    otlp_endpoint: str | None = None,
    prometheus: bool = True,
    span_exporter: SpanExporter | None = None,
    *,
    metric_readers: Sequence[MetricReader] = (),
    export_interval_ms: int = 15_000,
    otlp_timeout_s: float = 5.0,
) -> tuple[OtelTelemetry, Callable[[], None]]:
    """Build the telemetry. OTLP over HTTP (traces to {endpoint}/v1/traces, metrics to
    {endpoint}/v1/metrics) only when `otlp_endpoint` is given; a Prometheus registry when
    `prometheus`; `span_exporter` (tests: an in-memory one) gets every span as it ends.

    Returns (telemetry, shutdown); `telemetry.render_metrics()` serves /metrics.
    """
    resource = Resource.create({"service.name": service_name})
    tracer_provider = TracerProvider(resource=resource)
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    readers: list[MetricReader] = list(metric_readers)
    bridge = PrometheusBridge() if prometheus else None
    if bridge is not None:
        readers.append(bridge)
    if otlp_endpoint:
        # Imported here: the exporter pulls in protobuf and requests, which a run without OTLP never needs.
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        base = otlp_endpoint.rstrip("/")
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=otlp_timeout_s))
        )
        readers.append(PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=otlp_timeout_s),
            export_interval_millis=export_interval_ms,
        ))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    telemetry = OtelTelemetry(tracer_provider, meter_provider, bridge=bridge)
    return telemetry, telemetry.shutdown
