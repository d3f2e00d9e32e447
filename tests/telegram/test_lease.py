"""One bot answers per deployment: two bots on one lease (in process, and on Redis) never both
poll; when the one answering stops, the other takes over."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import httpx

from adapters.clock import ManualClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryLockService
from adapters.projections import InMemoryReadModels
from adapters.redis import RedisLockService, redis_client
from adapters.telegram import HttpBotApi
from application.ports import LockService
from application.telegram import NOT_LINKED, TelegramCommands
from application.trade_book import TradeBook
from application.use_cases.safety import ActivateEmergencyStop, ClearEmergencyStop
from entrypoints.http.providers import NoExchangeSession
from entrypoints.telegram import TelegramBot
from tests.fakes.telegram import FakeTelegram

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def a_bot(tg: FakeTelegram, client: httpx.AsyncClient, locks: LockService) -> TelegramBot:
    store, clock, book = InMemoryEventStore(), ManualClock(T0), TradeBook()
    commands = TelegramCommands(store, clock, InMemoryReadModels(store),
                                ActivateEmergencyStop(store, NoExchangeSession(), clock, book),  # type: ignore[arg-type]
                                ClearEmergencyStop(store, clock, book))
    return TelegramBot(HttpBotApi(client, tg.token, tg.api_url), commands, locks, poll_timeout=timedelta(seconds=1),
                       standby_poll=timedelta(milliseconds=50))


async def answered(bot: TelegramBot, count: int) -> None:
    """The bot counts an answer once Telegram took it: a moment after the fake recorded it."""
    async with asyncio.timeout(5):
        while bot.handled < count:
            await asyncio.sleep(0.01)


async def one_answers_then_the_other(locks: LockService) -> None:
    async with FakeTelegram() as tg, httpx.AsyncClient() as client:
        first, second = a_bot(tg, client, locks), a_bot(tg, client, locks)
        stop_first, stop_second = asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(first.run(stop_first))]
        await tg.push_update(1, "/status")
        await tg.wait_for_messages(1)
        tasks.append(asyncio.create_task(second.run(stop_second)))
        for n in range(2, 5):
            await tg.push_update(1, "/status")
            await tg.wait_for_messages(n)
        await answered(first, 4)
        assert (second.handled, second.holding) == (0, False)
        stop_first.set()
        await asyncio.wait_for(tasks[0], 5)
        await tg.push_update(1, "/status")
        await tg.wait_for_messages(5)
        await answered(second, 1)
        assert second.holding and first.handled == 4
        stop_second.set()
        await asyncio.wait_for(tasks[1], 5)
        assert [m.text for m in tg.messages] == [NOT_LINKED] * 5


async def test_in_process_one_bot_holds_the_lease() -> None:
    await one_answers_then_the_other(InMemoryLockService(ManualClock(T0)))


async def test_on_redis_one_bot_of_the_deployment_answers(redis_url: str) -> None:
    client = redis_client(redis_url)
    prefix = f"sniper-test-{secrets.token_hex(6)}"
    try:
        await one_answers_then_the_other(RedisLockService(client, prefix))
    finally:
        keys = [k async for k in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


class LeaseOutage:
    """The lease service unreachable for its first `failures` takes (Redis down), then as `real`."""

    def __init__(self, real: LockService, failures: int) -> None:
        self.real, self.failures = real, failures

    def lease(self, key: str, ttl: timedelta):  # noqa: ANN201
        if self.failures:
            self.failures -= 1
            raise ConnectionError("lease service unreachable")
        return self.real.lease(key, ttl)

    async def renew(self, lease, ttl: timedelta) -> bool:  # noqa: ANN001
        return await self.real.renew(lease, ttl)


async def test_the_bot_outlives_an_outage_of_its_lease_service() -> None:
    async with FakeTelegram() as tg, httpx.AsyncClient() as client:
        bot = a_bot(tg, client, LeaseOutage(InMemoryLockService(ManualClock(T0)), failures=2))  # type: ignore[arg-type]
        bot.after_failure = timedelta(milliseconds=20)
        stop = asyncio.Event()
        task = asyncio.create_task(bot.run(stop))
        await tg.push_update(1, "/status")
        await tg.wait_for_messages(1)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert [m.text for m in tg.messages] == [NOT_LINKED]

