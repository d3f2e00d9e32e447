"""Telemetry and alerts built from Settings, for the worker, the HTTP app and the CLI.

- `build_telemetry`: OpenTelemetry traces and metrics, OTLP/HTTP export when
  OTEL_EXPORTER_OTLP_ENDPOINT is set, and a Prometheus view (`telemetry.render_metrics()`,
  which the HTTP app mounts at /metrics).
- `start_metrics_server`: the worker's own /metrics server on SNIPER_METRICS_PORT.
- `build_notifier`: every configured alert channel (webhook, Slack, Telegram) behind one
  de-duplicating fan-out; NoNotifier when none is configured.
- `ObservabilityProvider`: both for the dishka containers, shut down with them.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from wsgiref.simple_server import WSGIServer

import httpx
from dishka import AnyOf, Provider, Scope, from_context, provide
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import start_http_server

from adapters.alerts import FanoutNotifier, SlackNotifier, TelegramNotifier, WebhookNotifier
from adapters.alerts.fanout import AlertChannel
from adapters.telemetry import OtelTelemetry, configure_telemetry
from application.alerts import NoNotifier, Notifier
from application.errors import ConfigurationError
from application.ports import Clock
from application.telemetry import Telemetry
from entrypoints.config import Settings, revealed

ALERT_TIMEOUT_SECONDS = 5.0
ALERT_WINDOW = timedelta(minutes=5)


def build_telemetry(
    settings: Settings, *, prometheus: bool = True, span_exporter: SpanExporter | None = None
) -> OtelTelemetry:
    """The process's telemetry; call `.shutdown()` when done (flushes OTLP batches)."""
    telemetry, _ = configure_telemetry(settings.otel_service_name, settings.otel_exporter_otlp_endpoint, prometheus,
                                       span_exporter)
    return telemetry


def alert_channels(settings: Settings, client: httpx.AsyncClient) -> list[AlertChannel]:
    s = settings
    channels: list[AlertChannel] = []
    if s.sniper_alert_webhook_url:
        channels.append(WebhookNotifier(client, s.sniper_alert_webhook_url.reveal(),
                                        revealed(s.sniper_alert_webhook_secret) or None))
    if s.slack_webhook_url:
        channels.append(SlackNotifier(client, s.slack_webhook_url.reveal()))
    if s.telegram_bot_token and s.telegram_chat_id:
        channels.append(TelegramNotifier(client, s.telegram_bot_token.reveal(), s.telegram_chat_id, s.telegram_api_url))
    return channels


def build_notifier(settings: Settings, client: httpx.AsyncClient, clock: Clock, telemetry: Telemetry) -> Notifier:
    """Alerts to every configured channel, a burst of one condition collapsed into one message."""
    channels = alert_channels(settings, client)
    if not channels:
        return NoNotifier()
    return FanoutNotifier(channels, clock, window=ALERT_WINDOW, timeout=ALERT_TIMEOUT_SECONDS, telemetry=telemetry)


def alert_http_client() -> httpx.AsyncClient:
    # No proxies from the environment, no redirects: an alert goes exactly where it was configured.
    return httpx.AsyncClient(timeout=httpx.Timeout(ALERT_TIMEOUT_SECONDS), trust_env=False, follow_redirects=False)


class MetricsServer:
    """Prometheus text on every path of host:port, served from a daemon thread."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server, self._thread = server, thread

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# All interfaces by default: the metrics port is scraped from outside the container.
def start_metrics_server(telemetry: OtelTelemetry, port: int, host: str = "0.0.0.0") -> MetricsServer:  # noqa: S104
    """Serve `telemetry`'s Prometheus view (port 0 picks a free port: tests)."""
    if telemetry.bridge is None:
        raise ConfigurationError("the metrics server needs telemetry built with prometheus=True")
    try:
        server, thread = start_http_server(port, host, registry=telemetry.bridge.registry)
    except OSError as exc:
        raise ConfigurationError(f"SNIPER_METRICS_PORT {port} cannot be served: {exc.strerror or exc}") from None
    return MetricsServer(server, thread)


class ObservabilityProvider(Provider):
    """Telemetry (shut down with the container) and the Notifier (its HTTP client closed with it)."""

    scope = Scope.APP
    clock = from_context(provides=Clock, scope=Scope.APP)

    @provide
    def telemetry(self, settings: Settings) -> Iterator[AnyOf[OtelTelemetry, Telemetry]]:
        telemetry = build_telemetry(settings)
        try:
            yield telemetry
        finally:
            telemetry.shutdown()

    @provide
    async def notifier(self, settings: Settings, clock: Clock, telemetry: Telemetry) -> AsyncIterator[Notifier]:
        async with alert_http_client() as client:
            yield build_notifier(settings, client, clock, telemetry)
