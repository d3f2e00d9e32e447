"""Telemetry on OpenTelemetry (traces, metrics, OTLP) with a Prometheus /metrics view."""

from adapters.telemetry.otel import OtelTelemetry, configure_telemetry

__all__ = ["OtelTelemetry", "configure_telemetry"]
