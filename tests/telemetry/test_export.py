"""Getting telemetry out: OTLP/HTTP to a local fake collector, the worker's /metrics server,
and the settings that switch each part on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from adapters.alerts import FanoutNotifier, SlackNotifier, TelegramNotifier, WebhookNotifier
from adapters.clock import ManualClock
from adapters.paper.scenario import load_scenario
from adapters.telemetry import OtelTelemetry, configure_telemetry
from adapters.telemetry.instrument import InstrumentedExchange
from application.alerts import Alert, NoNotifier, Notifier, Severity
from application.errors import ConfigurationError
from application.ports import ExchangeTrading
from application.telemetry import NO_TELEMETRY, Telemetry
from application.use_cases.snipe import ExecuteSnipe
from entrypoints.config import BUNDLED_SCENARIO, ENV_VARS, SECRET_VARS, load_settings, revealed
from entrypoints.container import paper_trading_container
from entrypoints.observability import build_notifier, build_telemetry, start_metrics_server
from tests.alerts.fake_http import FakeHttpServer

T0 = datetime(2025, 3, 1, tzinfo=UTC)


async def test_spans_and_metrics_reach_a_local_otlp_endpoint_as_protobuf() -> None:
    async with FakeHttpServer(reply=b"") as collector:
        telemetry, shutdown = configure_telemetry("sniper-otlp-test", collector.url, prometheus=False)
        with telemetry.span("agent.tick", agent="strategy"), telemetry.span("use_case.execute_snipe", target_id="t-1"):
            telemetry.count("sniper_orders_total", side="buy", mode="paper")
        # The exporters post from their own threads (blocking HTTP); the fake collector answers on this loop.
        await asyncio.to_thread(shutdown)

    traces = [r for r in collector.requests if r.path == "/v1/traces"]
    assert traces and all(r.method == "POST" for r in traces)
    assert traces[0].headers["content-type"] == "application/x-protobuf"
    request = ExportTraceServiceRequest()
    request.ParseFromString(traces[0].body)
    [resource_spans] = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    assert service == "sniper-otlp-test"
    spans = {s.name: s for scope in resource_spans.scope_spans for s in scope.spans}
    assert set(spans) == {"agent.tick", "use_case.execute_snipe"}
    assert spans["use_case.execute_snipe"].parent_span_id == spans["agent.tick"].span_id
    assert {a.key: a.value.string_value for a in spans["use_case.execute_snipe"].attributes} == {"target_id": "t-1"}

    metrics = [r for r in collector.requests if r.path == "/v1/metrics"]
    assert metrics
    exported = ExportMetricsServiceRequest()
    exported.ParseFromString(metrics[-1].body)
    names = {m.name for rm in exported.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert "sniper_orders_total" in names


async def test_without_an_endpoint_nothing_is_exported_and_prometheus_still_renders() -> None:
    settings = load_settings({})
    assert settings.otel_exporter_otlp_endpoint is None
    telemetry = build_telemetry(settings)
    try:
        assert telemetry.tracer_provider._active_span_processor._span_processors == ()  # no exporter at all
        telemetry.gauge("sniper_agent_healthy", 1, agent="calendar")
        text, _ = telemetry.render_metrics()
        assert 'sniper_agent_healthy{agent="calendar"} 1.0' in text.decode()
    finally:
        telemetry.shutdown()


async def test_the_worker_metrics_server_serves_the_prometheus_text() -> None:
    telemetry = build_telemetry(load_settings({}))
    server = start_metrics_server(telemetry, 0, "127.0.0.1")
    try:
        telemetry.count("sniper_orders_total", side="buy", mode="live")
        telemetry.observe("sniper_snipe_latency_ms", 3.0, mode="live")
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.get(f"http://127.0.0.1:{server.port}/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        assert 'sniper_orders_total{mode="live",side="buy"} 1.0' in response.text
        assert 'sniper_snipe_latency_ms_bucket{le="5.0",mode="live"} 1.0' in response.text
        assert 'sniper_snipe_latency_ms_bucket{le="2.5",mode="live"} 0.0' in response.text
    finally:
        await asyncio.to_thread(server.close)
        telemetry.shutdown()


class TestSettings:
    def test_every_observability_variable_is_listed_and_the_credentials_are_secret(self) -> None:
        names = {v.name for v in ENV_VARS}
        wanted = {"SNIPER_ALERT_WEBHOOK_URL", "SNIPER_ALERT_WEBHOOK_SECRET", "SLACK_WEBHOOK_URL", "TELEGRAM_BOT_TOKEN",
                  "TELEGRAM_CHAT_ID", "TELEGRAM_API_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME",
                  "SNIPER_METRICS_PORT"}
        assert wanted <= names
        assert {"SNIPER_ALERT_WEBHOOK_URL", "SNIPER_ALERT_WEBHOOK_SECRET", "SLACK_WEBHOOK_URL",
                "TELEGRAM_BOT_TOKEN"} <= SECRET_VARS

    def test_defaults_switch_everything_off(self) -> None:
        o = load_settings({})
        assert (o.otel_exporter_otlp_endpoint, o.sniper_metrics_port, o.sniper_alert_webhook_url, o.slack_webhook_url,
                o.telegram_bot_token) == (None, 0, None, None, None)
        assert (o.otel_service_name, o.telegram_api_url) == ("mexc-sniper", "https://api.telegram.org")

    def test_values_are_read(self) -> None:
        o = load_settings({
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/", "OTEL_SERVICE_NAME": "sniper-eu",
            "SNIPER_METRICS_PORT": "9464", "TELEGRAM_BOT_TOKEN": "1:A", "TELEGRAM_CHAT_ID": "-42",
        })
        assert (o.otel_exporter_otlp_endpoint, o.otel_service_name, o.sniper_metrics_port) == (
            "http://127.0.0.1:4318", "sniper-eu", 9464)
        assert (revealed(o.telegram_bot_token), o.telegram_chat_id) == ("1:A", "-42")

    @pytest.mark.parametrize("env, message", [
        ({"SNIPER_METRICS_PORT": "70000"}, "SNIPER_METRICS_PORT must be between 0 and 65535"),
        ({"SNIPER_METRICS_PORT": "x"}, "SNIPER_METRICS_PORT must be a whole number"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT must be a https or http URL"),
        ({"OTEL_SERVICE_NAME": "two words"}, "OTEL_SERVICE_NAME must be"),
        ({"TELEGRAM_BOT_TOKEN": "nocolon"}, "TELEGRAM_BOT_TOKEN must look like"),  # alone: the control bot's
        ({"TELEGRAM_CHAT_ID": "5"}, "TELEGRAM_BOT_TOKEN must be set too"),
        ({"TELEGRAM_BOT_TOKEN": "nocolon", "TELEGRAM_CHAT_ID": "5"}, "TELEGRAM_BOT_TOKEN must look like"),
        ({"SNIPER_ALERT_WEBHOOK_SECRET": "s"}, "SNIPER_ALERT_WEBHOOK_URL is not"),
        ({"TELEGRAM_API_URL": "ftp://x"}, "TELEGRAM_API_URL must be a https or http URL"),
    ])
    def test_bad_values_stop_with_one_line(self, env: dict[str, str], message: str) -> None:
        with pytest.raises(ConfigurationError, match=message):
            load_settings(env)

    def test_a_bad_secret_url_is_refused_without_being_echoed(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            load_settings({"SLACK_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/SECRETPART"})
        assert "SECRETPART" not in str(caught.value) and "SLACK_WEBHOOK_URL" in str(caught.value)


async def test_the_containers_inject_one_telemetry_into_the_use_cases_and_the_exchange() -> None:
    settings = load_settings({"DATABASE_URL": "memory://"})
    container = paper_trading_container(settings, load_scenario(BUNDLED_SCENARIO), ManualClock(T0))
    try:
        telemetry = await container.get(Telemetry)
        assert isinstance(telemetry, OtelTelemetry) and telemetry is await container.get(OtelTelemetry)
        assert (await container.get(ExecuteSnipe)).telemetry is telemetry
        exchange = await container.get(ExchangeTrading)
        assert isinstance(exchange, InstrumentedExchange) and exchange.telemetry is telemetry
        assert isinstance(await container.get(Notifier), NoNotifier)
    finally:
        await container.close()
    assert telemetry._closed  # shut down with the container


class TestNotifierFromSettings:
    async def test_no_channel_configured_means_no_notifier(self) -> None:
        async with httpx.AsyncClient() as client:
            assert isinstance(build_notifier(load_settings({}), client, ManualClock(T0), NO_TELEMETRY), NoNotifier)

    async def test_every_configured_channel_gets_the_alert(self) -> None:
        async with FakeHttpServer(reply=b'{"ok":true}') as server, httpx.AsyncClient(trust_env=False) as client:
            settings = load_settings({
                "SNIPER_ALERT_WEBHOOK_URL": server.url + "/hook", "SNIPER_ALERT_WEBHOOK_SECRET": "k",
                "SLACK_WEBHOOK_URL": server.url + "/slack", "TELEGRAM_BOT_TOKEN": "9:T", "TELEGRAM_CHAT_ID": "7",
                "TELEGRAM_API_URL": server.url,
            })
            notifier = build_notifier(settings, client, ManualClock(T0), NO_TELEMETRY)
            assert isinstance(notifier, FanoutNotifier)
            assert [type(c) for c in notifier.channels] == [WebhookNotifier, SlackNotifier, TelegramNotifier]
            await notifier.send(Alert("k", Severity.WARNING, "title", "text", T0))
        assert sorted(r.path for r in server.requests) == ["/bot9:T/sendMessage", "/hook", "/slack"]
        assert "x-sniper-signature" in next(r for r in server.requests if r.path == "/hook").headers
