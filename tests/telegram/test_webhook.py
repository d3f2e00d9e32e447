"""Webhook mode: the API takes Telegram's updates at /api/v1/telegram/webhook, authenticated by
the secret header only, and answers each in the response as a sendMessage call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from application.errors import ConfigurationError
from application.telegram import NOT_LINKED
from entrypoints.config import load_settings, revealed
from tests.http.conftest import api_settings, make_app
from tests.http.support import auth

SECRET = "s3cret_-token-0123456789"
HOOK = "/api/v1/telegram/webhook"
# A closed local port: the bot's name (getMe) is never asked of the real Telegram.
NOWHERE = "http://127.0.0.1:9"


def update(chat: int, text: str, update_id: int = 1, chat_type: str = "private") -> dict[str, Any]:
    return {"update_id": update_id, "message": {"message_id": 5, "date": 0, "text": text,
                                                "chat": {"id": chat, "type": chat_type}}}


def from_telegram(secret: str = SECRET) -> dict[str, str]:
    return {"X-Telegram-Bot-Api-Secret-Token": secret}


async def client_with(secret: str | None) -> AsyncIterator[AsyncTestClient]:
    secret_env = {} if secret is None else {"TELEGRAM_WEBHOOK_SECRET": secret}
    settings = api_settings(TELEGRAM_BOT_TOKEN="123:ABC", TELEGRAM_API_URL=NOWHERE, **secret_env)
    app, container = make_app(settings)
    try:
        async with AsyncTestClient(app=app) as client:
            yield client
    finally:
        await container.close()


@pytest.fixture
async def api() -> AsyncIterator[AsyncTestClient]:
    async for client in client_with(SECRET):
        yield client


async def test_only_telegram_with_the_secret_is_heard(api: AsyncTestClient) -> None:
    for headers in ({}, from_telegram("wrong"), auth("alice")):
        answer = await api.post(HOOK, json=update(1, "/status"), headers=headers)
        assert answer.status_code == 401, answer.text
    assert (await api.post(HOOK, json=update(1, "/status"), headers=from_telegram())).json() == {
        "method": "sendMessage", "chat_id": 1, "text": NOT_LINKED, "disable_web_page_preview": True,
        "reply_parameters": {"message_id": 5, "allow_sending_without_reply": True}}


async def test_a_linked_chat_halts_and_resumes_through_the_webhook(api: AsyncTestClient) -> None:
    link = (await api.post("/api/v1/telegram/link", headers=auth("alice"))).json()
    assert link["bot"] is None  # getMe could not be asked; the code is good all the same

    async def say(text: str, chat: int = 42) -> str:
        answer = await api.post(HOOK, json=update(chat, text), headers=from_telegram())
        assert answer.status_code == 200, answer.text
        return answer.json()["text"]

    assert await say(f"/link {link['code']}") == "Linked: this chat now acts for alice. /help lists the commands."
    assert await say("/halt webhook test") == "Trading halted: webhook test. New orders are refused until you /resume."
    stop = (await api.get("/api/v1/emergency-stop", headers=auth("alice"))).json()
    assert (stop["active"], stop["reason"]) == (True, "emergency stop: webhook test")
    assert await say("/halt", chat=43) == NOT_LINKED
    assert (await say("/status")).startswith("Trading: HALTED (emergency stop pressed by alice at ")
    assert await say("/close p-nope") == "No position p-nope of yours."
    assert await say("/resume") == "Emergency stop cleared.\nTrading: on"
    assert (await api.get("/api/v1/emergency-stop", headers=auth("alice"))).json()["active"] is False


async def test_updates_that_are_not_text_messages_get_no_reply(api: AsyncTestClient) -> None:
    for body in ({"update_id": 7, "edited_message": {}}, update(1, "")):
        answer = await api.post(HOOK, json=body, headers=from_telegram())
        assert (answer.status_code, answer.json()) == (200, {})


async def test_without_a_webhook_secret_the_route_is_not_there() -> None:
    async for api in client_with(None):
        answer = await api.post(HOOK, json=update(1, "/status"), headers=from_telegram())
        assert answer.status_code == 404


@pytest.mark.parametrize("secret", ["hook", "a" * 15, "a" * 257, "sixteen chars ok"])
def test_a_short_or_malformed_secret_is_refused_in_one_line_naming_it(secret: str) -> None:
    """Telegram takes 1-256 characters; fewer than 16 could be guessed, and the header is all that is checked."""
    with pytest.raises(ConfigurationError) as refused:
        load_settings({"TELEGRAM_BOT_TOKEN": "123:ABC", "TELEGRAM_WEBHOOK_SECRET": secret})
    message = str(refused.value)
    assert message.startswith("TELEGRAM_WEBHOOK_SECRET must be 16-256 letters") and "\n" not in message
    assert secret not in message


def test_a_secret_of_16_characters_is_taken() -> None:
    settings = load_settings({"TELEGRAM_BOT_TOKEN": "123:ABC", "TELEGRAM_WEBHOOK_SECRET": "0123456789abcDE_"})
    assert revealed(settings.telegram_webhook_secret) == "0123456789abcDE_"
