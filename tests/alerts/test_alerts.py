"""Alert channels against local fake HTTP servers, and the fan-out's de-duplication."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from adapters.alerts import AlertDeliveryFailed, FanoutNotifier, SlackNotifier, TelegramNotifier, WebhookNotifier
from adapters.alerts.channels import SIGNATURE_HEADER
from adapters.clock import ManualClock
from application.alerts import Alert, Severity
from tests.alerts.fake_http import FakeHttpServer

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def alert(key: str = "agent-crashed:calendar", severity: Severity = Severity.CRITICAL, text: str = "it stopped",
          user_id: str | None = None) -> Alert:
    return Alert(key, severity, "Calendar agent crashed", text, T0, user_id)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as c:
        yield c


class Recorder:
    """A channel that records what it was given; optionally fails or hangs."""

    def __init__(self, name: str, fail: Exception | None = None, hang: bool = False) -> None:
        self.name, self.fail, self.hang = name, fail, hang
        self.got: list[Alert] = []

    async def deliver(self, a: Alert) -> None:
        self.got.append(a)
        if self.hang:
            await asyncio.sleep(60)
        if self.fail is not None:
            raise self.fail


class CountingTelemetry:
    def __init__(self) -> None:
        self.counts: list[tuple[str, dict[str, object]]] = []

    def count(self, name: str, amount: int = 1, **attributes: object) -> None:
        self.counts.append((name, attributes))


class TestWebhook:
    async def test_posts_the_alert_as_json_signed_with_the_shared_secret(self, client: httpx.AsyncClient) -> None:
        async with FakeHttpServer() as server:
            await WebhookNotifier(client, server.url + "/hook", secret="s3cret").deliver(alert(user_id="alice"))
        [req] = server.requests
        assert (req.method, req.path) == ("POST", "/hook")
        assert req.json() == {"key": "agent-crashed:calendar", "severity": "critical",
                              "title": "Calendar agent crashed", "text": "it stopped",
                              "at": "2025-03-01T12:00:00+00:00", "user_id": "alice"}
        expected = "sha256=" + hmac.new(b"s3cret", req.body, hashlib.sha256).hexdigest()
        assert req.headers[SIGNATURE_HEADER.lower()] == expected
        wrong = "sha256=" + hmac.new(b"other", req.body, hashlib.sha256).hexdigest()
        assert req.headers[SIGNATURE_HEADER.lower()] != wrong

    async def test_without_a_secret_there_is_no_signature(self, client: httpx.AsyncClient) -> None:
        async with FakeHttpServer() as server:
            await WebhookNotifier(client, server.url).deliver(alert())
        assert SIGNATURE_HEADER.lower() not in server.requests[0].headers
        assert server.requests[0].json()["user_id"] is None

    async def test_a_500_is_a_delivery_failure_and_send_swallows_it(self, client: httpx.AsyncClient,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
        async with FakeHttpServer(status=500) as server:
            notifier = WebhookNotifier(client, server.url)
            with pytest.raises(AlertDeliveryFailed, match="HTTP 500"):
                await notifier.deliver(alert())
            with caplog.at_level(logging.WARNING):
                await notifier.send(alert())  # the Notifier port never raises
        assert "not delivered" in caplog.text

    async def test_a_refused_connection_fails_without_naming_the_url(self, client: httpx.AsyncClient) -> None:
        async with FakeHttpServer() as server:
            url = server.url + "/secret-path-token"
        with pytest.raises(AlertDeliveryFailed) as caught:  # the server is gone: connection refused
            await WebhookNotifier(client, url).deliver(alert())
        assert "secret-path-token" not in str(caught.value) and "ConnectError" in str(caught.value)


class TestSlack:
    async def test_posts_text_and_blocks_with_slack_escaping(self, client: httpx.AsyncClient) -> None:
        async with FakeHttpServer(reply=b"ok") as server:
            await SlackNotifier(client, server.url + "/services/T/B/X").deliver(alert(text="spread <5% & rising"))
        [req] = server.requests
        assert req.path == "/services/T/B/X"
        message = req.json()
        assert message["text"].startswith("[CRITICAL] Calendar agent crashed")
        assert "spread &lt;5% &amp; rising" in message["text"]
        header, section, context = message["blocks"]
        assert header["type"] == "header" and header["text"]["type"] == "plain_text"
        assert section["text"] == {"type": "mrkdwn", "text": ":rotating_light: spread &lt;5% &amp; rising"}
        assert "agent-crashed:calendar" in context["elements"][0]["text"]


class TestTelegram:
    async def test_send_message_to_the_chat_through_the_configured_api_url(self, client: httpx.AsyncClient) -> None:
        async with FakeHttpServer(reply=b'{"ok":true,"result":{}}') as server:
            await TelegramNotifier(client, "123:ABC", "-10042", api_url=server.url).deliver(alert(user_id="bob"))
        [req] = server.requests
        assert req.path == "/bot123:ABC/sendMessage"
        body = req.json()
        assert body["chat_id"] == "-10042"
        assert body["text"].splitlines()[0] == "[CRITICAL] Calendar agent crashed"
        assert "it stopped" in body["text"] and "user bob" in body["text"]
        assert "parse_mode" not in body

    async def test_a_bot_api_refusal_is_a_failure_that_does_not_leak_the_token(self, client: httpx.AsyncClient) -> None:
        async with FakeHttpServer(status=401, reply=b'{"ok":false,"description":"Unauthorized"}') as server:
            with pytest.raises(AlertDeliveryFailed) as caught:
                await TelegramNotifier(client, "123:SECRET", "1", api_url=server.url).deliver(alert())
        assert "SECRET" not in str(caught.value) and "401" in str(caught.value)
        async with FakeHttpServer(reply=b'{"ok":false}') as server:
            with pytest.raises(AlertDeliveryFailed, match="not answer ok"):
                await TelegramNotifier(client, "1:X", "1", api_url=server.url).deliver(alert())


class TestFanout:
    async def test_every_channel_gets_the_alert_even_when_one_fails_or_hangs(self) -> None:
        telemetry = CountingTelemetry()
        good, broken, stuck = Recorder("good"), Recorder("broken", fail=RuntimeError("boom")), Recorder(
            "stuck", hang=True
        )
        fanout = FanoutNotifier([broken, stuck, good], ManualClock(T0), timeout=0.1, telemetry=telemetry)  # type: ignore[arg-type]
        started = asyncio.get_running_loop().time()
        await fanout.send(alert())  # does not raise
        elapsed = asyncio.get_running_loop().time() - started
        assert [len(r.got) for r in (good, broken, stuck)] == [1, 1, 1]
        assert elapsed < 1.0  # concurrent, and the hung channel was cut at its timeout
        assert sorted(a["channel"] for _, a in telemetry.counts) == ["broken", "stuck"]
        assert {name for name, _ in telemetry.counts} == {"sniper_alerts_failed_total"}

    async def test_real_channels_with_a_500_and_a_timeout_do_not_raise(self, client: httpx.AsyncClient) -> None:
        # A generous per-channel timeout (a loaded CI machine must still get every request out),
        # and a slow channel far slower than it.
        async with FakeHttpServer(status=500) as failing, FakeHttpServer(delay=10.0) as slow, FakeHttpServer() as fine:
            fanout = FanoutNotifier(
                [
                    WebhookNotifier(client, failing.url), SlackNotifier(client, slow.url),
                    WebhookNotifier(client, fine.url)
                ],
                ManualClock(T0), timeout=1.0,
            )
            await fanout.send(alert())
            assert len(failing.requests) == len(slow.requests) == len(fine.requests) == 1

    async def test_a_burst_of_one_key_sends_once_per_window_and_then_says_how_many_were_held_back(self) -> None:
        clock = ManualClock(T0)
        channel = Recorder("r")
        fanout = FanoutNotifier([channel], clock, window=timedelta(minutes=5))  # type: ignore[list-item]
        for _ in range(20):
            await fanout.send(alert())
            clock.advance(timedelta(seconds=1))
        await fanout.send(alert(key="other"))  # another condition is not held back
        assert [a.key for a in channel.got] == ["agent-crashed:calendar", "other"]
        clock.advance(timedelta(minutes=5))
        await fanout.send(alert())
        assert len(channel.got) == 3
        assert channel.got[-1].text == "it stopped\n(19 similar alerts held back)"

    async def test_a_more_severe_alert_for_the_same_key_is_not_held_back(self) -> None:
        channel = Recorder("r")
        fanout = FanoutNotifier([channel], ManualClock(T0))  # type: ignore[list-item]
        await fanout.send(alert(severity=Severity.WARNING))
        await fanout.send(alert(severity=Severity.WARNING))
        await fanout.send(alert(severity=Severity.CRITICAL))
        await fanout.send(alert(severity=Severity.WARNING))
        assert [a.severity for a in channel.got] == [Severity.WARNING, Severity.CRITICAL]
