"""The notification channels: each sends one outbox row to one destination or raises DeliveryFailed.

- Telegram: the Bot API's sendMessage over httpx, at TELEGRAM_API_URL (apprise's Telegram plugin
  has its API base fixed to api.telegram.org, so a local Bot API server or a test fake could not
  be used through it). `disable_notification` for silent kinds; 429's retry_after honoured.
- Discord, Slack, e-mail: apprise (its Discord and Slack webhook plugins, its SMTP plugin), run
  on a thread with the channel's timeout as apprise's own socket timeouts.
- Webhook: JSON POSTed with the operator alerts' HMAC signature (adapters/alerts/channels.py):
  X-Sniper-Signature: sha256=<hex HMAC-SHA256 of the body> when the user set a secret.

No error message carries a token, a webhook URL or a password: only the kind of failure.

A user's webhook URL and own SMTP server are refused at delivery when their host resolves to an
address that is not public (loopback, private, link-local such as 169.254.169.254, ...): a
user must not make the worker reach the deployment's own services (SSRF). The operator allows
them with SNIPER_NOTIFY_ALLOW_PRIVATE=1 (a receiver on the same network, tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from adapters.alerts.channels import SIGNATURE_HEADER, sign
from application.notifications import DeliveryFailed, Destination, OutboxEntry

log = logging.getLogger(__name__)

TELEGRAM_MAX_TEXT = 4096


def _http_failure(channel: str, response: httpx.Response) -> DeliveryFailed:
    status = response.status_code
    retry_after = None
    if status == 429:
        try:
            retry_after = float(response.json().get("parameters", {}).get("retry_after"))
        except (ValueError, TypeError, AttributeError):
            retry_after = float(response.headers.get("retry-after", "1") or 1)
    # A request the service refuses as such will be refused again: bad chat, blocked bot, gone hook.
    permanent = 400 <= status < 500 and status not in (408, 409, 425, 429)
    return DeliveryFailed(f"{channel}: HTTP {status}", permanent=permanent, retry_after=retry_after)


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is no part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def refuse_private_host(channel: str, host: str | None, port: int | None) -> None:
    """Raise DeliveryFailed (permanent) when `host` is, or resolves to, an address that is not
    public; a name that cannot be resolved now is retried. The check is on the names as resolved
    here: the connection resolves again (a name re-pointed in between is not caught)."""
    if not host:
        raise DeliveryFailed(f"{channel}: the URL has no host", permanent=True)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise DeliveryFailed(f"{channel}: the host could not be resolved") from None
    if not found or not all(_public(str(info[4][0])) for info in found):
        raise DeliveryFailed(f"{channel}: the host is a private or local address, refused "
                             "(the operator may allow it: SNIPER_NOTIFY_ALLOW_PRIVATE=1)", permanent=True)


class TelegramSender:
    """sendMessage to the user's chat (Destination.address) with the deployment's bot."""

    def __init__(self, client: httpx.AsyncClient, bot_token: str, api_url: str = "https://api.telegram.org") -> None:
        self._client = client
        self._url = f"{api_url.rstrip('/')}/bot{bot_token}/sendMessage"

    def __repr__(self) -> str:
        return "TelegramSender()"

    @staticmethod
    def message(destination: Destination, entry: OutboxEntry) -> dict[str, Any]:
        # Plain text (no parse_mode): nothing in a symbol or a reason can break Telegram's markup.
        text = f"{entry.title}\n{entry.body}"[:TELEGRAM_MAX_TEXT]
        return {"chat_id": destination.address, "text": text, "disable_notification": entry.silent,
                "disable_web_page_preview": True}

    async def send(self, destination: Destination, entry: OutboxEntry) -> None:
        try:
            response = await self._client.post(self._url, json=self.message(destination, entry))
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"telegram: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise _http_failure("telegram", response)
        try:
            ok = response.json().get("ok") is True
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise DeliveryFailed("telegram: the Bot API did not answer ok")


class WebhookSender:
    """POSTs {id, source, kind, user_id, title, text, silent, at} as JSON to the user's URL,
    signed with the user's secret when they set one. `allow_private`: also to a host that is not
    public (SNIPER_NOTIFY_ALLOW_PRIVATE)."""

    def __init__(self, client: httpx.AsyncClient, *, allow_private: bool = False) -> None:
        self._client, self._allow_private = client, allow_private

    def __repr__(self) -> str:
        return "WebhookSender()"

    @staticmethod
    def body(entry: OutboxEntry) -> bytes:
        return json.dumps({
            "id": entry.id, "source": entry.source, "kind": entry.kind, "user_id": entry.user_id,
            "title": entry.title, "text": entry.body, "silent": entry.silent, "at": entry.created_at.isoformat(),
        }, separators=(",", ":")).encode()

    async def send(self, destination: Destination, entry: OutboxEntry) -> None:
        if not self._allow_private:
            try:
                url = httpx.URL(destination.address)
            except httpx.InvalidURL:
                raise DeliveryFailed("webhook: not a usable URL", permanent=True) from None
            await refuse_private_host("webhook", url.host, url.port)
        body = self.body(entry)
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"{entry.source}:{entry.channel}"}
        if destination.secret:
            headers[SIGNATURE_HEADER] = sign(destination.secret, body)
        try:
            response = await self._client.post(destination.address, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise _http_failure("webhook", response)


def apprise_url(destination: Destination, *, smtp_url: str | None = None, smtp_from: str | None = None,
                timeout: float = 5.0) -> str:
    """The apprise URL of a Discord or Slack webhook (the user's webhook URL, as Discord and Slack
    give it), or of an e-mail to the user's address through an SMTP server (the user's own SMTP
    URL when they gave one, else the deployment's SNIPER_SMTP_URL):
    smtp://user:password@host:port (plain), smtps://... (TLS) or smtp+starttls://..."""
    timeouts = f"cto={timeout:g}&rto={timeout:g}"
    if destination.channel in ("discord", "slack"):
        if not destination.secret:
            raise DeliveryFailed(f"{destination.channel}: no webhook URL", permanent=True)
        joiner = "&" if "?" in destination.secret else "?"
        return f"{destination.secret}{joiner}{timeouts}"
    if destination.channel == "email":
        server = destination.secret or smtp_url
        if not server:
            raise DeliveryFailed("email: no SMTP server on this deployment (SNIPER_SMTP_URL)", permanent=True)
        parts = urlsplit(server)
        mode = {"smtp": "insecure", "smtps": "ssl", "smtp+starttls": "starttls"}.get(parts.scheme)
        if mode is None or not parts.hostname:
            raise DeliveryFailed("email: the SMTP URL must be smtp://, smtps:// or smtp+starttls://host:port",
                                 permanent=True)
        scheme = "mailto" if mode == "insecure" else "mailtos"
        auth = ""
        if parts.username:
            auth = quote(unquote(parts.username), safe="")
            if parts.password:
                auth += ":" + quote(unquote(parts.password), safe="")
            auth += "@"
        port = f":{parts.port}" if parts.port else ""
        sender = smtp_from or (parts.username if parts.username and "@" in parts.username else "sniper@localhost")
        return (f"{scheme}://{auth}{parts.hostname}{port}?to={quote(destination.address, safe='@')}"
                f"&from={quote(sender, safe='@')}&mode={mode}&{timeouts}")
    raise DeliveryFailed(f"{destination.channel}: not an apprise channel", permanent=True)


class AppriseSender:
    """Discord, Slack and e-mail through apprise. `adjust` lets a test point a plugin at a local
    fake (apprise's Discord and Slack plugins have their hosts fixed)."""

    def __init__(self, *, smtp_url: str | None = None, smtp_from: str | None = None, timeout: float = 5.0,
                 adjust: Callable[[Any], None] | None = None, allow_private: bool = False) -> None:
        self._smtp_url, self._smtp_from, self._timeout, self._adjust = smtp_url, smtp_from, timeout, adjust
        self._allow_private = allow_private

    def __repr__(self) -> str:
        return f"AppriseSender(smtp={'set' if self._smtp_url else 'unset'})"

    async def send(self, destination: Destination, entry: OutboxEntry) -> None:
        url = apprise_url(destination, smtp_url=self._smtp_url, smtp_from=self._smtp_from, timeout=self._timeout)
        if destination.channel == "email" and destination.secret and not self._allow_private:
            # The user's own SMTP server (the deployment's SNIPER_SMTP_URL is the operator's choice).
            server = urlsplit(destination.secret)
            try:
                port = server.port
            except ValueError:
                raise DeliveryFailed("email: the SMTP URL has a bad port", permanent=True) from None
            await refuse_private_host("email", server.hostname, port)
        # apprise loads its plugins on first use (most of a second) and sends synchronously
        # (requests, smtplib): all of it on a thread, so the event loop never waits on it.
        outcome = await asyncio.to_thread(self._notify, url, entry.title, entry.body)
        if outcome == "unusable":
            raise DeliveryFailed(f"{destination.channel}: the address is not one apprise can use", permanent=True)
        if outcome != "sent":
            raise DeliveryFailed(f"{destination.channel}: not delivered (apprise)")

    def _notify(self, url: str, title: str, body: str) -> str:
        import apprise

        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if not plugin:
            return "unusable"
        if self._adjust is not None:
            self._adjust(plugin)
        return "sent" if plugin.notify(body=body, title=title) else "failed"
