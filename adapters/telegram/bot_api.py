"""HttpBotApi: getUpdates (long polling), sendMessage and getMe over httpx.

The token is part of every URL (`/bot<token>/<method>`), so nothing here lets a URL out: an
error names the method and Telegram's description, never the request.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from application.telegram import BotApiRateLimited, BotApiUnavailable, BotMessage

# Telegram's limit on one message's text.
MAX_TEXT = 4096
# Extra time the HTTP client waits beyond a long poll's own timeout.
_POLL_SLACK = 10.0


class HttpBotApi:
    def __init__(self, client: httpx.AsyncClient, token: str, api_url: str = "https://api.telegram.org") -> None:
        self._client = client
        self._base = f"{api_url.rstrip('/')}/bot{token}/"
        self._name: str | None = None

    def __repr__(self) -> str:
        return "HttpBotApi(token=***)"

    # Handed to httpx (and, for getUpdates, the long poll's length): not a deadline of this coroutine.
    async def _call(self, method: str, params: dict[str, Any], timeout: float = 10.0) -> Any:  # noqa: ASYNC109
        try:
            response = await self._client.post(self._base + method, json=params, timeout=timeout)
            body = response.json()
        except httpx.HTTPError as exc:
            raise BotApiUnavailable(f"Telegram {method}: {type(exc).__name__}") from None
        except ValueError:
            raise BotApiUnavailable(f"Telegram {method}: HTTP {response.status_code}, not JSON") from None
        if not isinstance(body, dict) or body.get("ok") is not True:
            description = body.get("description", "") if isinstance(body, dict) else ""
            problem = f"Telegram {method}: HTTP {response.status_code} {str(description)[:200]}".rstrip()
            parameters = body.get("parameters") if isinstance(body, dict) else None
            retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
            if response.status_code == 429 and isinstance(retry_after, int) and retry_after >= 0:
                raise BotApiRateLimited(problem, timedelta(seconds=retry_after))
            raise BotApiUnavailable(problem)
        return body.get("result")

    async def updates(self, offset: int | None, timeout: timedelta) -> list[BotMessage]:  # noqa: ASYNC109
        seconds = max(0, int(timeout.total_seconds()))
        params: dict[str, Any] = {"timeout": seconds, "allowed_updates": ["message"]}
        if offset is not None:
            params["offset"] = offset
        result = await self._call("getUpdates", params, timeout=seconds + _POLL_SLACK)
        return [m for m in (parse_update(u) for u in result or []) if m is not None]

    async def send(self, chat_id: int, text: str, reply_to: int | None = None) -> None:
        await self._call("sendMessage", send_message(chat_id, text, reply_to))

    async def bot_name(self) -> str:
        if self._name is None:
            me = await self._call("getMe", {})
            self._name = "@" + str(me.get("username", "")) if isinstance(me, dict) else "@"
        return self._name


def send_message(chat_id: int, text: str, reply_to: int | None = None) -> dict[str, Any]:
    """sendMessage's parameters. Plain text (no parse_mode): nothing a command answers can break
    Telegram's markup parser. A reply is threaded to the command it answers."""
    params: dict[str, Any] = {"chat_id": chat_id, "text": text[:MAX_TEXT], "disable_web_page_preview": True}
    if reply_to is not None:
        params["reply_parameters"] = {"message_id": reply_to, "allow_sending_without_reply": True}
    return params


def parse_update(update: Any) -> BotMessage | None:
    """A message from an update (getUpdates or a webhook body): its text is empty for a message
    without text or an update of another kind, which the bot skips (its offset still moves on).
    None for something that is not an update at all."""
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        return None
    message = update.get("message")
    if not isinstance(message, dict):
        return BotMessage(update["update_id"], 0, "", private=False)  # skipped, but its offset confirmed
    chat = message.get("chat")
    text = message.get("text")
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        return BotMessage(update["update_id"], 0, "", private=False)
    message_id = message.get("message_id")
    return BotMessage(update["update_id"], chat["id"], text if isinstance(text, str) else "",
                      private=chat.get("type") == "private",
                      message_id=message_id if isinstance(message_id, int) else None,
                      # Bot API 7+ says forward_origin; older replies forward_date (and forward_from...).
                      forwarded=any(key in message for key in ("forward_origin", "forward_date", "forward_from",
                                                               "forward_from_chat", "forward_sender_name")))
