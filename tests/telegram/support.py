"""Talking to the bot through the fake Bot API: push a message, wait for the bot's reply to it
(a reply threads to its command; the worker's notifications to the same chat are not replies)."""

from __future__ import annotations

import asyncio

from tests.fakes.telegram import FakeTelegram, SentMessage


async def ask(tg: FakeTelegram, chat: int, text: str, *, chat_type: str = "private", timeout: float = 10.0) -> str:
    update = await tg.push_update(chat, text, chat_type=chat_type)
    reply = await reply_to(tg, update["message"]["message_id"], timeout)
    assert reply.chat_id == str(chat)
    return reply.text


async def reply_to(tg: FakeTelegram, message_id: int, timeout: float = 10.0) -> SentMessage:
    async with asyncio.timeout(timeout):
        seen = 0
        while True:
            await tg.wait_for_messages(seen + 1, timeout=timeout)
            for sent in tg.messages[seen:]:
                if (sent.params.get("reply_parameters") or {}).get("message_id") == message_id:
                    return sent
            seen = len(tg.messages)
