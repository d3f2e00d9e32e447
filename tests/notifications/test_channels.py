"""Each channel against a local fake: Telegram (the fake Bot API), the signed webhook, Discord and
Slack through apprise (pointed at a local receiver), e-mail through apprise (the fake SMTP server).
Failures come back as DeliveryFailed naming the kind of failure, never a token or a URL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest

from adapters.notifications import AppriseSender, TelegramSender, WebhookSender
from adapters.notifications.channels import apprise_url
from application.notifications import DeliveryFailed, Destination, OutboxEntry
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram
from tests.fakes.webhook import WebhookReceiver
from tests.notifications.support import WEBHOOK_SECRET, signed

AT = datetime(2026, 11, 25, 10, 0, 27, tzinfo=UTC)


def entry(silent: bool = False) -> OutboxEntry:
    return OutboxEntry(7, "event:42", 42, "carol", "telegram", "snipe_filled", "Bought PUMPUSDT",
                       "PUMPUSDT: bought 436300 at 0.0001146 for 50 USDT", silent, "pending", 0, AT, AT)


async def test_telegram_sends_plain_text_loud_or_silent_and_reads_the_api_errors() -> None:
    async with FakeTelegram() as tg, httpx.AsyncClient() as client:
        sender = TelegramSender(client, tg.token, tg.api_url)
        await sender.send(Destination("telegram", "1001"), entry())
        await sender.send(Destination("telegram", "1001"), entry(silent=True))
        first, second = tg.sent_to("1001")
        assert first.text == "Bought PUMPUSDT\nPUMPUSDT: bought 436300 at 0.0001146 for 50 USDT"
        assert (first.disable_notification, second.disable_notification) == (False, True)
        assert "parse_mode" not in first.params

        tg.fail_with, tg.fail_times, tg.retry_after = 429, 1, 17
        with pytest.raises(DeliveryFailed) as raised:
            await sender.send(Destination("telegram", "1001"), entry())
        failure = raised.value
        assert (failure.reason, failure.retry_after, failure.permanent) == ("telegram: HTTP 429", 17, False)
        tg.fail_with, tg.fail_times = 500, 1
        with pytest.raises(DeliveryFailed) as raised:
            await sender.send(Destination("telegram", "1001"), entry())
        assert not raised.value.permanent
        with pytest.raises(DeliveryFailed) as raised:  # the real API: no such chat is a 400
            await sender.send(Destination("telegram", ""), entry())
        assert raised.value.permanent and tg.token not in raised.value.reason

        wrong = TelegramSender(client, "999:wrong", tg.api_url)
        with pytest.raises(DeliveryFailed) as raised:
            await wrong.send(Destination("telegram", "1001"), entry())
        assert raised.value.reason == "telegram: HTTP 401" and raised.value.permanent

        tg.hang = True
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await sender.send(Destination("telegram", "1001"), entry())


async def test_the_webhook_is_signed_with_the_users_secret() -> None:
    async with WebhookReceiver() as hook, httpx.AsyncClient() as client:
        sender = WebhookSender(client, allow_private=True)  # the receiver is on 127.0.0.1
        await sender.send(Destination("webhook", f"{hook.url}/in", WEBHOOK_SECRET), entry())
        [request] = hook.requests
        assert signed(request.body, request.headers.get("x-sniper-signature"))
        assert request.headers["idempotency-key"] == "event:42:telegram"
        body = json.loads(request.body)
        assert body == {"id": 7, "source": "event:42", "kind": "snipe_filled", "user_id": "carol",
                        "title": "Bought PUMPUSDT", "text": "PUMPUSDT: bought 436300 at 0.0001146 for 50 USDT",
                        "silent": False, "at": "2026-11-25T10:00:27+00:00"}
        hook.status = 410
        with pytest.raises(DeliveryFailed) as raised:
            await WebhookSender(client, allow_private=True).send(Destination("webhook", f"{hook.url}/in"), entry())
        assert raised.value.reason == "webhook: HTTP 410" and raised.value.permanent
        assert "x-sniper-signature" not in hook.requests[-1].headers  # no secret: unsigned


@pytest.mark.parametrize("channel, secret, attribute, prefix", [
    ("discord", "https://discord.com/api/webhooks/417429632418316298/JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o",
     "notify_url", "/api/webhooks"),
    ("slack", "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7", "webhook_url",
     "/services"),
])
async def test_discord_and_slack_go_through_apprise(channel: str, secret: str, attribute: str, prefix: str) -> None:
    # What each service answers: Discord 204 with no body, Slack 200 "ok".
    async with WebhookReceiver(reply=b"" if channel == "discord" else b"ok",
                               status=204 if channel == "discord" else 200) as fake:
        # apprise's plugins have their hosts fixed: this test points the plugin at the local receiver.
        sender = AppriseSender(timeout=2, adjust=lambda plugin: setattr(plugin, attribute, fake.url + prefix))
        await sender.send(Destination(channel, "", secret), entry())
        [request] = fake.requests
        assert request.path.startswith(prefix)
        assert "Bought PUMPUSDT" in request.body.decode() and "436300" in request.body.decode()
        fake.status = 500
        with pytest.raises(DeliveryFailed) as raised:
            await sender.send(Destination(channel, "", secret), entry())
        assert raised.value.reason == f"{channel}: not delivered (apprise)"


@pytest.mark.parametrize("channel, secret", [
    ("discord", "https://discord.com/api/webhooks/417429632418316298/JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o"),
    ("discord", "https://discordapp.com/api/webhooks/417429632418316298/JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o/"),
    ("discord", "discord://417429632418316298/JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o"),
    ("slack", "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"),
    ("slack", "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#general"),
])
def test_each_form_the_settings_take_is_one_apprise_reads_as_that_service(channel: str, secret: str) -> None:
    """The forms PUT /api/v1/notifications takes for Discord and Slack (application/notifications.py)."""
    import apprise

    from application.notifications import ChannelChange, _check_secret

    _check_secret(ChannelChange(channel, secret=secret))  # taken
    plugin = apprise.Apprise.instantiate(apprise_url(Destination(channel, "", secret)), suppress_exceptions=True)
    assert plugin is not None and type(plugin).__name__ == f"Notify{channel.title()}"


async def test_email_goes_through_the_deployments_smtp_server() -> None:
    with FakeSmtp() as smtp:
        sender = AppriseSender(smtp_url=smtp.url, smtp_from="sniper@example.com", timeout=2)
        await sender.send(Destination("email", "carol@example.com"), entry())
        [mail] = smtp.received()
        assert (mail.sender, mail.recipients, mail.subject) == ("sniper@example.com", ("carol@example.com",),
                                                                "Bought PUMPUSDT")
        assert "436300" in mail.body
    with pytest.raises(DeliveryFailed) as raised:
        await AppriseSender().send(Destination("email", "carol@example.com"), entry())
    assert raised.value.permanent and "SNIPER_SMTP_URL" in raised.value.reason


def test_apprise_urls_carry_the_timeouts_and_an_escaped_password() -> None:
    url = apprise_url(Destination("email", "carol@example.com", "smtps://bob:p%40ss@mail.example.com:465"), timeout=3)
    assert url.startswith("mailtos://bob:p%40ss@mail.example.com:465?to=carol@example.com&from=sniper@localhost")
    assert "mode=ssl" in url and "cto=3&rto=3" in url
    assert apprise_url(Destination("slack", "", "https://hooks.slack.com/services/A/B/C"), timeout=5).endswith(
        "C?cto=5&rto=5")
    with pytest.raises(DeliveryFailed):
        apprise_url(Destination("email", "carol@example.com", "ftp://x"))


# --- SSRF: a user's webhook or own SMTP server never reaches the deployment's own services ---------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/in", "http://localhost:{port}/in", "http://[::1]:{port}/in",
    "http://[::ffff:127.0.0.1]:{port}/in", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5:6379/",
    "http://192.168.1.1/", "http://0.0.0.0:{port}/in",
])
async def test_a_webhook_to_a_private_or_local_address_is_refused_unsent(url: str) -> None:
    async with WebhookReceiver() as hook, httpx.AsyncClient() as client:
        port = httpx.URL(hook.url).port
        with pytest.raises(DeliveryFailed) as raised:
            await WebhookSender(client).send(Destination("webhook", url.format(port=port), WEBHOOK_SECRET), entry())
        assert raised.value.permanent and "SNIPER_NOTIFY_ALLOW_PRIVATE" in raised.value.reason
        assert "127.0.0.1" not in raised.value.reason and "169.254" not in raised.value.reason  # no URL echoed
        assert hook.requests == []


async def test_a_users_own_smtp_server_on_a_private_address_is_refused_unsent() -> None:
    with FakeSmtp() as smtp:
        own = smtp.url.replace("smtp://", "smtp://carol:pw@", 1) if "@" not in smtp.url else smtp.url
        with pytest.raises(DeliveryFailed) as raised:
            await AppriseSender(timeout=2).send(Destination("email", "carol@example.com", own), entry())
        assert raised.value.permanent and "pw" not in raised.value.reason
        assert smtp.received() == []
        # The deployment's own SMTP server (SNIPER_SMTP_URL) is the operator's choice: not checked.
        await AppriseSender(smtp_url=smtp.url, smtp_from="sniper@example.com", timeout=2).send(
            Destination("email", "carol@example.com"), entry())
        assert len(smtp.received()) == 1


def test_private_addresses_are_allowed_only_by_the_operator() -> None:
    from entrypoints.config import load_settings

    assert load_settings({}).sniper_notify_allow_private is False
    assert load_settings({"SNIPER_NOTIFY_ALLOW_PRIVATE": "1"}).sniper_notify_allow_private is True


def test_a_debug_log_never_carries_a_discord_webhook_token() -> None:
    """apprise logs the Discord POST URL, token included, at DEBUG: with SNIPER_LOG_LEVEL=DEBUG the
    process's log must still not carry it (the apprise logger is kept at WARNING)."""
    import subprocess
    import sys
    import textwrap

    token = "JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o"
    script = textwrap.dedent(f"""
        import asyncio
        from adapters.notifications import AppriseSender
        from application.notifications import Destination
        from entrypoints.config import log_settings
        from entrypoints.logs import configure_logging
        from tests.fakes.webhook import WebhookReceiver
        from tests.notifications.test_channels import entry

        async def main():
            async with WebhookReceiver(reply=b"", status=204) as fake:
                sender = AppriseSender(timeout=2, adjust=lambda p: setattr(p, "notify_url", fake.url + "/api/webhooks"))
                url = "https://discord.com/api/webhooks/417429632418316298/{token}"
                await sender.send(Destination("discord", "", url), entry())
                assert len(fake.requests) == 1

        configure_logging(log_settings({{"SNIPER_LOG_LEVEL": "DEBUG"}}), long_running=True)
        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert token not in done.stderr and token not in done.stdout
