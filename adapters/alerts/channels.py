"""Alert channels over HTTP: a generic JSON webhook, a Slack incoming webhook, a Telegram bot.

Each channel's `deliver` raises AlertDeliveryFailed when the alert did not arrive; its
`send` (the Notifier port) logs that instead. Error messages never carry the channel's URL:
a Slack webhook URL and a Telegram bot token are credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import httpx

from application.alerts import Alert, Severity

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Sniper-Signature"
_MARK = {Severity.INFO: "INFO", Severity.WARNING: "WARNING", Severity.CRITICAL: "CRITICAL"}
_EMOJI = {Severity.INFO: ":information_source:", Severity.WARNING: ":warning:", Severity.CRITICAL: ":rotating_light:"}


class AlertDeliveryFailed(Exception):
    """The channel did not take the alert (no connection, timeout, non-2xx reply)."""


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "key": alert.key,
        "severity": alert.severity.value,
        "title": alert.title,
        "text": alert.text,
        "at": alert.at.isoformat(),
        "user_id": alert.user_id,
    }


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: "sha256=" + hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _HttpChannel:
    name = "http"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def deliver(self, alert: Alert) -> None:
        raise NotImplementedError

    async def send(self, alert: Alert) -> None:
        try:
            await self.deliver(alert)
        except AlertDeliveryFailed as exc:
            log.warning("alert %s not delivered: %s", alert.key, exc)

    async def _post(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = await self.client.post(
                url, content=body, headers={"Content-Type": "application/json", **(headers or {})}
            )
        except httpx.HTTPError as exc:
            # str(exc) may name the URL: only the kind of failure leaves this method.
            raise AlertDeliveryFailed(f"{self.name}: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise AlertDeliveryFailed(f"{self.name}: HTTP {response.status_code}")
        return response


class WebhookNotifier(_HttpChannel):
    """POSTs the alert as JSON {key, severity, title, text, at, user_id}. With a secret, the
    body is signed (X-Sniper-Signature: sha256=<hex HMAC-SHA256 of the body>) so the receiver
    can tell the alert came from us."""

    name = "webhook"

    def __init__(self, client: httpx.AsyncClient, url: str, secret: str | None = None) -> None:
        super().__init__(client)
        self.url = url
        self._secret = secret or None

    def __repr__(self) -> str:
        return f"WebhookNotifier(signed={self._secret is not None})"

    async def deliver(self, alert: Alert) -> None:
        body = json.dumps(alert_json(alert), separators=(",", ":")).encode()
        headers = {SIGNATURE_HEADER: sign(self._secret, body)} if self._secret else {}
        await self._post(self.url, body, headers)


def _slack_escape(text: str) -> str:
    # Slack's three control characters in mrkdwn and plain text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier(_HttpChannel):
    """A message to a Slack incoming webhook: `text` (notifications, fallbacks) and blocks."""

    name = "slack"

    def __init__(self, client: httpx.AsyncClient, webhook_url: str) -> None:
        super().__init__(client)
        self._url = webhook_url

    def __repr__(self) -> str:
        return "SlackNotifier()"

    @staticmethod
    def message(alert: Alert) -> dict[str, Any]:
        title = _slack_escape(alert.title)
        context = f"{alert.severity.value} · {alert.key} · {alert.at.isoformat()}"
        if alert.user_id:
            context += f" · user {alert.user_id}"
        return {
            "text": f"[{_MARK[alert.severity]}] {title}: {_slack_escape(alert.text)}"[:3000],
            "blocks": [
                {"type": "header",
                 "text": {"type": "plain_text", "text": f"[{_MARK[alert.severity]}] {alert.title}"[:150]}},
                {"type": "section", "text": {"type": "mrkdwn",
                                             "text": f"{_EMOJI[alert.severity]} {_slack_escape(alert.text)}"[:3000]}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(context)[:3000]}]},
            ],
        }

    async def deliver(self, alert: Alert) -> None:
        await self._post(self._url, json.dumps(self.message(alert)).encode())


class TelegramNotifier(_HttpChannel):
    """Bot API sendMessage to one chat. `api_url` is https://api.telegram.org unless a test
    (or a local Bot API server) says otherwise."""

    name = "telegram"

    def __init__(self, client: httpx.AsyncClient, bot_token: str, chat_id: str,
                 api_url: str = "https://api.telegram.org") -> None:
        super().__init__(client)
        self._url = f"{api_url.rstrip('/')}/bot{bot_token}/sendMessage"
        self.chat_id = chat_id

    def __repr__(self) -> str:
        return f"TelegramNotifier(chat_id={self.chat_id!r})"

    def message(self, alert: Alert) -> dict[str, Any]:
        lines = [f"[{_MARK[alert.severity]}] {alert.title}", "", alert.text, "",
                 f"{alert.key} · {alert.at.isoformat()}"]
        if alert.user_id:
            lines[-1] += f" · user {alert.user_id}"
        # Plain text (no parse_mode): nothing in an alert can break Telegram's markup parser.
        return {"chat_id": self.chat_id, "text": "\n".join(lines)[:4096], "disable_web_page_preview": True}

    async def deliver(self, alert: Alert) -> None:
        response = await self._post(self._url, json.dumps(self.message(alert)).encode())
        try:
            ok = response.json().get("ok", False)
        except (ValueError, AttributeError):
            ok = False
        if ok is not True:
            raise AlertDeliveryFailed(f"{self.name}: the Bot API did not answer ok")
