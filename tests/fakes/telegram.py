"""A fake Telegram Bot API on 127.0.0.1 for tests: records what the bot sends, hands it updates.

Point the code under test at it with TELEGRAM_API_URL=<fake.url> and TELEGRAM_BOT_TOKEN=<fake.token>.
Requests go to /bot<token>/<method> as JSON, form or query string (as the real API takes them);
a wrong token gets the real API's 401. Methods:

- sendMessage: recorded in `messages` (a SentMessage each, in arrival order) and answered with a
  Message; `fail_with` (an HTTP status, e.g. 500 or 429) fails the next `fail_times` calls
  (429 carries parameters.retry_after = `retry_after`), `hang` holds every call until stopped.
- getMe: the bot.
- getUpdates: the updates queued with `push_update`, from `offset` on (confirming those before it),
  waiting up to `timeout` seconds for one when there are none (long polling).
- anything else: 404 {"ok": false, "description": "Not Found: method not found"}. More methods can
  be added per test or subclass through `methods` (name -> async handler(params) -> result).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.http_server import HttpRequest, LocalHttpServer

DEFAULT_TOKEN = "123456:TEST-fake-bot-token"
Handler = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One sendMessage call as the fake received it."""

    chat_id: str
    text: str
    disable_notification: bool
    params: dict[str, Any]  # everything sent, as parsed
    message_id: int
    at: float = 0.0  # time.monotonic() when it arrived


class TelegramApiError(Exception):
    """Raised by a method handler to answer {"ok": false} with this status and description."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters


@dataclass
class FakeTelegram(LocalHttpServer):
    token: str = DEFAULT_TOKEN
    bot_username: str = "sniper_test_bot"
    messages: list[SentMessage] = field(default_factory=list)
    fail_with: int | None = None
    fail_times: int = 0
    retry_after: int = 1
    hang: bool = False
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (method, params), every call
    updates: list[dict[str, Any]] = field(default_factory=list)
    methods: dict[str, Handler] = field(default_factory=dict)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _next_update_id: int = 1
    _next_message_id: int = 1

    @property
    def api_url(self) -> str:
        """What TELEGRAM_API_URL should be."""
        return self.url

    # --- what tests look at --------------------------------------------------------------

    def sent_to(self, chat_id: str | int) -> list[SentMessage]:
        return [m for m in self.messages if m.chat_id == str(chat_id)]

    async def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[SentMessage]:
        """Wait until at least `count` messages arrived (TimeoutError after `timeout` seconds)."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.messages) >= count)
        return list(self.messages)

    # --- what tests do -------------------------------------------------------------------

    async def push_update(self, chat_id: str | int, text: str, *, user_id: int | None = None,
                          username: str = "trader", chat_type: str = "private") -> dict[str, Any]:
        """Queue a text message from a chat, as getUpdates will hand it to the bot."""
        update_id = self._next_update_id
        self._next_update_id += 1
        sender = user_id if user_id is not None else int(chat_id)
        update = {
            "update_id": update_id,
            "message": {
                "message_id": 10_000 + update_id,
                "date": 0,
                "chat": {"id": int(chat_id), "type": chat_type, "username": username},
                "from": {"id": sender, "is_bot": False, "first_name": username, "username": username},
                "text": text,
                **({"entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}
                   if text.startswith("/") else {}),
            },
        }
        async with self._changed:
            self.updates.append(update)
            self._changed.notify_all()
        return update

    # --- the API -------------------------------------------------------------------------

    async def handle(self, request: HttpRequest) -> tuple[int, bytes]:
        parts = urlsplit(request.path)
        segments = parts.path.strip("/").split("/")
        if len(segments) != 2 or not segments[0].startswith("bot"):
            return _error(404, "Not Found")
        if segments[0] != f"bot{self.token}":
            return _error(401, "Unauthorized")
        method = segments[1]
        params = _params(request, parts.query)
        self.calls.append((method, params))
        # A handler added per test (`methods`) takes the params; a built-in one is a method of this class.
        custom, builtin = self.methods.get(method), _BUILTIN.get(method)
        try:
            if custom is not None:
                result = await custom(params)
            elif builtin is not None:
                result = await builtin(self, params)
            else:
                return _error(404, "Not Found: method not found")
        except TelegramApiError as exc:
            return _error(exc.status, exc.description, exc.parameters)
        return 200, json.dumps({"ok": True, "result": result}).encode()

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.hang:
            await asyncio.Event().wait()  # until the server stops
        if self.fail_with is not None and self.fail_times > 0:
            self.fail_times -= 1
            if self.fail_with == 429:
                raise TelegramApiError(429, f"Too Many Requests: retry after {self.retry_after}",
                                       {"retry_after": self.retry_after})
            raise TelegramApiError(self.fail_with, "Internal Server Error")
        if not str(params.get("chat_id", "")).strip():
            raise TelegramApiError(400, "Bad Request: chat not found")
        if not str(params.get("text", "")).strip():
            raise TelegramApiError(400, "Bad Request: message text is empty")
        message_id = self._next_message_id
        self._next_message_id += 1
        sent = SentMessage(str(params["chat_id"]), str(params["text"]), _flag(params.get("disable_notification")),
                           params, message_id, time.monotonic())
        async with self._changed:
            self.messages.append(sent)
            self._changed.notify_all()
        return {"message_id": message_id, "date": 0, "chat": {"id": _chat_id(params["chat_id"])},
                "text": sent.text}

    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "Sniper test bot",
                "username": self.bot_username}

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", 0) or 0)
        timeout = float(params.get("timeout", 0) or 0)
        limit = int(params.get("limit", 100) or 100)
        async with self._changed:
            if offset:
                # As the real API: asking from `offset` confirms every update before it.
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            if not self.updates and timeout > 0:
                try:
                    async with asyncio.timeout(timeout):
                        await self._changed.wait_for(lambda: bool(self.updates))
                except TimeoutError:
                    pass
            return self.updates[:limit]


_BUILTIN: dict[str, Callable[[FakeTelegram, dict[str, Any]], Awaitable[Any]]] = {
    "sendMessage": FakeTelegram._send_message,
    "getMe": FakeTelegram._get_me,
    "getUpdates": FakeTelegram._get_updates,
}


def _params(request: HttpRequest, query: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(query))
    if not request.body:
        return params
    kind = request.headers.get("content-type", "")
    if "json" in kind:
        body = request.json()
        if isinstance(body, dict):
            params.update(body)
    elif "x-www-form-urlencoded" in kind:
        params.update(parse_qsl(request.body.decode()))
    return params


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _chat_id(value: Any) -> int | str:
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> tuple[int, bytes]:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return status, json.dumps(body).encode()
