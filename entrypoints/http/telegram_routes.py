"""/api/v1/telegram/link: the one-time code that links a Telegram chat to the signed-in user,
and unlinking (entrypoints/telegram.py runs the bot that redeems the code).

/api/v1/telegram/webhook: the bot's webhook mode (TELEGRAM_WEBHOOK_SECRET set). Telegram POSTs each
update here with the secret in X-Telegram-Bot-Api-Secret-Token (no bearer token: the secret is the
authentication); the answer goes back in the response as a sendMessage call, as the Bot API allows.
The commands run on the API's use cases: a halt is recorded here and the worker's safety monitor
cancels the open orders, as for POST /api/v1/emergency-stop.
"""

from __future__ import annotations

import hmac
from typing import Any

from dishka import FromDishka
from litestar import Request, delete, post
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from adapters.telegram.bot_api import parse_update, send_message
from application.errors import NotFound
from application.identity import Identity
from application.telegram import IssueTelegramLinkCode, TelegramCommands, UnlinkTelegram
from entrypoints.config import Settings
from entrypoints.http.errors import error_responses
from entrypoints.http.schemas import TelegramLinkOut
from entrypoints.telegram import TelegramBotProfile, answer_safely

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header's name, not a secret

_AUTH = (400, 401, 429)


@post("/telegram/link", status_code=HTTP_201_CREATED, responses=error_responses(*_AUTH, 422),
      summary="A one-time code (10 minutes, single use) to send to the bot as /link CODE")
async def telegram_link(
    identity: FromDishka[Identity], issue: FromDishka[IssueTelegramLinkCode], bot: FromDishka[TelegramBotProfile],
) -> TelegramLinkOut:
    bot.require()  # no bot on this deployment: refused before a code is recorded
    code = await issue(identity.user_id)
    return TelegramLinkOut(code.code, code.expires_at, await bot.name())


@delete("/telegram/link", status_code=HTTP_204_NO_CONTENT, responses=error_responses(*_AUTH, 404),
        summary="Unlink your Telegram chats: the bot obeys them no more")
async def telegram_unlink(identity: FromDishka[Identity], unlink: FromDishka[UnlinkTelegram]) -> None:
    if not await unlink(identity.user_id):
        raise NotFound("no Telegram chat is linked to you")


@post("/telegram/webhook", status_code=HTTP_200_OK, include_in_schema=False, security=[])
async def telegram_webhook(
    request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]], settings: FromDishka[Settings],
    commands: FromDishka[TelegramCommands],
) -> dict[str, Any]:
    secret = settings.telegram_webhook_secret
    if secret is None:
        raise NotFound("the Telegram webhook is off (TELEGRAM_WEBHOOK_SECRET is not set)")
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), secret.reveal().encode()):
        raise NotAuthorizedException(f"{SECRET_HEADER} does not match")
    message = parse_update(data)
    reply = await answer_safely(commands, message) if message is not None else None
    if message is None or reply is None:
        return {}
    return {"method": "sendMessage", **send_message(message.chat_id, reply, message.message_id)}


TELEGRAM_HANDLERS = [telegram_link, telegram_unlink, telegram_webhook]
