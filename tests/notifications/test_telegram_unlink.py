"""A Telegram chat unlinked (DELETE /api/v1/telegram/link, or linked by someone else) gets none
of that user's notifications any more: their Telegram channel is turned off, the rest of their
settings stay as they were."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar.testing import AsyncTestClient

from adapters.clock import ManualClock
from adapters.eventstore.memory import InMemoryEventStore
from application.notifications import GetNotificationSettings, LinkTelegramChat
from application.ports import Clock, EventStore
from application.telegram import IssueTelegramLinkCode, RedeemTelegramLinkCode, UnlinkTelegram
from tests.http.conftest import make_app
from tests.http.support import ALICE, auth

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHAT = 4242


async def link_as_the_bot_does(store: EventStore, clock: Clock, user_id: str, chat: int) -> None:
    code = await IssueTelegramLinkCode(store, clock)(user_id)
    assert await RedeemTelegramLinkCode(store, clock)(chat, code.code) == user_id
    await LinkTelegramChat(store, clock)(user_id, str(chat))


async def telegram_of(store: EventStore, user_id: str) -> tuple[bool, str] | None:
    channel = (await GetNotificationSettings(store)(user_id)).channel("telegram")
    return None if channel is None else (channel.enabled, channel.address)


async def test_unlinking_through_the_api_turns_the_users_telegram_notifications_off() -> None:
    app, container = make_app()
    try:
        store, clock = await container.get(EventStore), await container.get(Clock)
        async with AsyncTestClient(app=app) as api:
            settings = {"kinds": {"exit": "silent"}, "daily_summary_at": "21:30", "channels": [
                {"kind": "webhook", "address": "https://hooks.example.com/sniper"},
                {"kind": "email", "address": "alice@example.com"}]}
            assert (await api.put("/api/v1/notifications", headers=auth(ALICE), json=settings)).status_code == 200
            await link_as_the_bot_does(store, clock, ALICE, CHAT)
            before = (await api.get("/api/v1/notifications", headers=auth(ALICE))).json()
            assert [(c["kind"], c["enabled"], c["address"]) for c in before["channels"]] == [
                ("telegram", True, str(CHAT)), ("webhook", True, "https://hooks.example.com/sniper"),
                ("email", True, "alice@example.com")]

            assert (await api.delete("/api/v1/telegram/link", headers=auth(ALICE))).status_code == 204

            after = (await api.get("/api/v1/notifications", headers=auth(ALICE))).json()
    finally:
        await container.close()
    assert [(c["kind"], c["enabled"]) for c in after["channels"]] == [
        ("telegram", False), ("webhook", True), ("email", True)]
    assert {k: v for k, v in after.items() if k != "channels"} == {k: v for k, v in before.items() if k != "channels"}


async def test_a_chat_linked_by_someone_else_gets_the_first_users_notifications_no_more() -> None:
    store, clock = InMemoryEventStore(), ManualClock(T0)
    await link_as_the_bot_does(store, clock, "alice", CHAT)
    await link_as_the_bot_does(store, clock, "bob", CHAT)
    assert await telegram_of(store, "alice") == (False, str(CHAT))
    assert await telegram_of(store, "bob") == (True, str(CHAT))
    # bob unlinking turns his off; alice's, pointing at the chat she lost, stays off; nothing else recorded.
    assert await UnlinkTelegram(store, clock)("bob") == 1
    assert await telegram_of(store, "bob") == (False, str(CHAT))
    assert await UnlinkTelegram(store, clock)("alice") == 0


async def test_a_channel_pointing_at_another_chat_is_left_as_it_is() -> None:
    store, clock = InMemoryEventStore(), ManualClock(T0)
    await link_as_the_bot_does(store, clock, "alice", CHAT)
    await LinkTelegramChat(store, clock)("alice", "-100777")  # set by hand to a group since
    assert await UnlinkTelegram(store, clock)("alice") == 1
    assert await telegram_of(store, "alice") == (True, "-100777")
