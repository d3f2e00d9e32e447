"""The bot in process, through the fake Bot API (HTTP on 127.0.0.1): every command's answer,
the link rules, and that a chat nobody linked is refused with nothing done.

The trade history is in memory; the close-position and balance use cases are stand-ins that
record their calls (tests/telegram/test_end_to_end.py runs the real ones against a worker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adapters.clock import ManualClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryLockService
from adapters.projections import InMemoryReadModels
from adapters.telegram import HttpBotApi
from application import repository
from application.errors import NotFound
from application.telegram import HELP, NOT_LINKED, IssueTelegramLinkCode, TelegramCommands
from application.trade_book import TradeBook
from application.use_cases.queries import GetTraderStatus, PricePositions
from application.use_cases.safety import ActivateEmergencyStop, ClearEmergencyStop
from domain.events import Cause, EmergencyStopActivated, EmergencyStopCleared
from domain.exit_plans import PRESETS
from domain.position import Position
from domain.target import SnipeTarget
from domain.values import Symbol
from entrypoints.http.providers import NoExchangeSession
from entrypoints.telegram import TelegramBot
from tests.fakes.telegram import FakeTelegram
from tests.telegram.support import ask

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE_CHAT, STRANGER_CHAT = 111, 999


class Prices:
    """The market's last prices: OLD trades at 0.55 now."""

    async def last_price(self, symbol: Symbol) -> Decimal | None:
        return Decimal("0.55") if symbol.base == "OLD" else None


@dataclass
class Balance:
    asset: str
    free: Decimal
    locked: Decimal


@dataclass
class Balances:
    mode: str
    balances: list[Balance]


@dataclass
class Closure:
    state: str
    sold: Decimal
    price: Decimal | None
    realised_pnl: Decimal
    already: bool
    detail: str = ""


@dataclass
class StandInCloser:
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)

    async def __call__(self, user_id: str, position_id: str, *, requested_by: str | None = None,
                       reason: str = "manual") -> Closure:
        self.calls.append((user_id, position_id, requested_by))
        if not position_id.startswith("p-"):
            raise NotFound(f"unknown position id: {position_id}")
        already = len(self.calls) > 1
        return Closure("closed", Decimal(0) if already else Decimal("0.5"), None if already else Decimal("22"),
                       Decimal("0.99"), already)


@dataclass
class World:
    tg: FakeTelegram
    store: InMemoryEventStore
    bot: TelegramBot
    closer: StandInCloser
    position_id: str
    target_id: str

    async def ask(self, chat: int, text: str, *, chat_type: str = "private") -> str:
        before = len(self.tg.messages)
        answer = await ask(self.tg, chat, text, chat_type=chat_type)
        assert len(self.tg.messages) == before + 1  # one answer, nothing else
        return answer


def scheduled(target_id: str, user_id: str, coin: str, launch: datetime, amount: str) -> SnipeTarget:
    cause = Cause(T0, target_id)
    target = SnipeTarget.create(target_id, user_id, f"coin-{coin}", Symbol(coin, "USDT"), launch, Decimal(amount),
                                PRESETS["balanced"], Decimal(1), False, cause)
    target.mark_ready("manual", Decimal(1), 0, cause)
    target.schedule(launch, launch + timedelta(seconds=30), cause)
    return target


async def filled_position(store: InMemoryEventStore, user_id: str) -> str:
    """A snipe of 10 USDT that bought 20 OLD at 0.5 (fee 0.01) and opened a position."""
    target = scheduled("t-old", user_id, "OLD", T0, "10")
    cause = Cause(T0, "t-old")
    target.submit_order(cause)
    target.record_fill(
        "x-1", Decimal("0.5"), Decimal("20"), Decimal("10"), Decimal("0.01"), "USDT", 1, Decimal(5), cause
    )
    position = Position.open("t-old", user_id, Symbol("OLD", "USDT"), Decimal("0.5"), Decimal("20"), Decimal("10"),
                             Decimal("0.01"), "USDT", 2, PRESETS["balanced"], cause)
    await repository.save(store, target, position)
    return position.position_id


async def scheduled_target(store: InMemoryEventStore, user_id: str, launch: datetime) -> str:
    target = scheduled("t-next", user_id, "NEXT", launch, "25")
    await repository.save(store, target)
    return target.target_id


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store, clock = InMemoryEventStore(), ManualClock(T0)
    position_id = await filled_position(store, "alice")
    target_id = await scheduled_target(store, "alice", T0 + timedelta(hours=2))
    book = TradeBook()
    closer = StandInCloser()

    async def balances(user_id: str) -> Balances:
        return Balances(
            "paper", [Balance("USDT", Decimal("990.5"), Decimal(0)), Balance("OLD", Decimal("0.5"), Decimal(0))]
        )

    async with FakeTelegram() as tg, httpx.AsyncClient() as client:
        read_models = InMemoryReadModels(store)
        commands = TelegramCommands(
            store, clock, read_models,
            ActivateEmergencyStop(store, NoExchangeSession(), clock, book),  # type: ignore[arg-type]
            ClearEmergencyStop(store, clock, book), close=closer, balances=balances, bot_name=tg.bot_username,
            status=GetTraderStatus(read_models, store, clock, prices=PricePositions(Prices(), clock)),  # type: ignore[arg-type]
        )
        bot = TelegramBot(HttpBotApi(client, tg.token, tg.api_url), commands, InMemoryLockService(clock),
                          poll_timeout=timedelta(seconds=1))
        stop = asyncio.Event()
        task = asyncio.create_task(bot.run(stop))
        try:
            yield World(tg, store, bot, closer, position_id, target_id)
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
    if bot.latencies:
        print(f"\ntelegram answers: {len(bot.latencies)}, slowest {max(bot.latencies) * 1000:.1f} ms, "
              f"median {sorted(bot.latencies)[len(bot.latencies) // 2] * 1000:.1f} ms")


async def link(world: World, chat: int = ALICE_CHAT, user: str = "alice") -> None:
    code = await IssueTelegramLinkCode(world.store, ManualClock(T0))(user)
    linked = f"Linked: this chat now acts for {user}. /help lists the commands."
    assert await world.ask(chat, f"/start {code.code}") == linked


async def test_a_chat_nobody_linked_gets_one_refusal_and_nothing_happens(world: World) -> None:
    before = await world.store.last_position()
    for command in ("/status", "/halt now", "/close " + world.position_id, "/resume", "/link WRONGCODE1"):
        answer = await world.ask(STRANGER_CHAT, command)
        assert answer in (NOT_LINKED, "that code is unknown, used already or expired: ask for a new one")
    assert await world.store.last_position() == before  # no stop, no link recorded
    assert world.closer.calls == []


async def test_commands_in_a_group_are_refused_even_with_a_good_code(world: World) -> None:
    code = await IssueTelegramLinkCode(world.store, ManualClock(T0))("alice")
    answer = await world.ask(-100, f"/link {code.code}", chat_type="group")
    assert answer == "mexc-sniper takes commands in a private chat with the bot only."
    await link(world)  # the code was not spent


async def test_linking_points_the_users_telegram_notifications_at_the_chat(world: World) -> None:
    from application.notifications import GetNotificationSettings

    await link(world)
    channel = (await GetNotificationSettings(world.store)("alice")).channel("telegram")
    assert channel is not None and (channel.enabled, channel.address) == (True, str(ALICE_CHAT))


async def test_every_command_answers_for_the_linked_user(world: World) -> None:
    await link(world)
    assert await world.ask(ALICE_CHAT, "/help") == HELP
    assert await world.ask(ALICE_CHAT, "/status") == (
        "Trading: on\nOpen positions: 1 (cost 10.01000000 USDT, unrealised 0.99000000)\n"
        "Realised P&L: today 0.00000000, total 0.00000000\n"
        "Snipes to come: 1\nNext: NEXTUSDT at 2026-03-01 14:00:00 UTC (scheduled)")
    assert await world.ask(ALICE_CHAT, "/positions") == (
        f"Open positions:\n{world.position_id} OLDUSDT: 20 left of 20 at entry 0.5, cost 10.01000000 USDT, "
        "now 0.55 (unrealised 0.99000000), realised 0.00000000 (open)")
    assert await world.ask(ALICE_CHAT, "/profit") == (
        "Realised P&L: 0.00000000 USDT\nFees: 0.01000000 USDT\nInvested: 10.01000000 USDT\n"
        "Positions: 1 (0 closed, 1 open)")
    daily = await world.ask(ALICE_CHAT, "/daily")
    assert daily.splitlines()[0] == "Realised P&L per day (UTC), last 7 days:"
    assert daily.splitlines()[1] == "2026-03-01: 0.00000000" and daily.splitlines()[-1] == "Total: 0.00000000"
    balances = "Balances (paper):\nUSDT: 990.5 free, 0 locked\nOLD: 0.5 free, 0 locked"
    assert await world.ask(ALICE_CHAT, "/balance") == balances
    assert await world.ask(ALICE_CHAT, "/targets") == (
        "Snipes to come:\nt-next NEXTUSDT 25.00000000 at 2026-03-01 14:00:00 UTC (scheduled, paper, exit balanced)")
    assert await world.ask(ALICE_CHAT, "/frobnicate") == "Unknown command. /help lists what I understand."
    assert (await world.ask(ALICE_CHAT, f"/status@{world.tg.bot_username}")).startswith("Trading: on")


async def test_halt_is_the_persons_own_stop_and_resume_clears_it(world: World) -> None:
    await link(world)
    assert await world.ask(ALICE_CHAT, "/halt going to sleep") == (
        "Trading halted: going to sleep. New orders are refused until you /resume.")
    [stop] = [r for r in await world.store.read_all() if isinstance(r.event, EmergencyStopActivated)]
    assert (stop.stream_id, stop.user_id, stop.event.activated_by, stop.event.automatic) == (
        "safety-alice", "alice", "alice", False
    )
    assert (await world.ask(ALICE_CHAT, "/status")).startswith(
        "Trading: HALTED (emergency stop pressed by alice at 2026-03-01 12:00:00 UTC: going to sleep)\n"
        "Open positions: 1")
    assert (await world.ask(ALICE_CHAT, "/halt")).startswith(
        "Already halted since 2026-03-01 12:00:00 UTC: going to sleep."
    )
    assert await world.ask(ALICE_CHAT, "/resume") == "Emergency stop cleared.\nTrading: on"
    nothing = "No emergency stop of yours was active; nothing to clear.\nTrading: on"
    assert await world.ask(ALICE_CHAT, "/resume") == nothing
    cleared = [r for r in await world.store.read_all() if isinstance(r.event, EmergencyStopCleared)]
    assert [(r.user_id, r.event.cleared_by) for r in cleared] == [("alice", "alice")]
    assert (await world.ask(ALICE_CHAT, "/halt")).startswith("Trading halted: halted from Telegram.")


async def test_close_goes_through_the_close_use_case_as_the_user(world: World) -> None:
    await link(world)
    assert await world.ask(ALICE_CHAT, "/close") == "Usage: /close POSITION (the position id, as /positions shows it)"
    assert await world.ask(ALICE_CHAT, f"/close {world.position_id}") == (
        f"Sold 0.5 of {world.position_id} at 22: closed, realised P&L 0.99000000.")
    closed = f"{world.position_id} is closed already; nothing sent."
    assert await world.ask(ALICE_CHAT, f"/close {world.position_id}") == closed
    assert await world.ask(ALICE_CHAT, "/close nope") == "No position nope of yours."
    assert world.closer.calls[0] == ("alice", world.position_id, "alice")


async def test_unlinked_through_the_api_use_case_the_chat_is_refused_again(world: World) -> None:
    from application.telegram import UnlinkTelegram

    await link(world)
    assert await UnlinkTelegram(world.store, ManualClock(T0))("alice") == 1
    assert await world.ask(ALICE_CHAT, "/status") == NOT_LINKED


async def test_a_telegram_outage_is_waited_out_and_the_bot_goes_on(world: World) -> None:
    await link(world)
    failing: dict[str, Any] = {"left": 1}
    real = world.tg.methods.get("getUpdates")
    assert real is None

    async def flaky(params: dict[str, Any]) -> Any:
        from tests.fakes.telegram import TelegramApiError

        if failing["left"]:
            failing["left"] -= 1
            raise TelegramApiError(502, "Bad Gateway")
        del world.tg.methods["getUpdates"]
        return []

    world.tg.methods["getUpdates"] = flaky
    assert (await world.ask(ALICE_CHAT, "/status")).startswith("Trading: on")
    assert failing["left"] == 0


async def test_a_reply_telegram_rate_limits_is_sent_again_after_the_wait_it_asks(world: World) -> None:
    await link(world)
    world.tg.fail_with, world.tg.fail_times, world.tg.retry_after = 429, 1, 1
    assert (await world.ask(ALICE_CHAT, "/status")).startswith("Trading: on")
    assert [method for method, _ in world.tg.calls].count("sendMessage") == 3  # link answer, refused, sent again


async def test_start_without_a_code_says_whether_the_chat_is_linked(world: World) -> None:
    assert await world.ask(ALICE_CHAT, "/start") == NOT_LINKED
    await link(world)
    assert await world.ask(ALICE_CHAT, "/start") == "This chat is linked. /help lists the commands."



async def test_a_chat_sending_wrong_codes_is_stopped_before_it_can_guess(world: World) -> None:
    """Brute force of the link code: after LINK_ATTEMPTS wrong codes in 10 minutes a chat's
    /link is refused unread, even with the right code (which stays unspent for its owner)."""
    from application.telegram import LINK_ATTEMPTS, TOO_MANY_CODES

    refused = "that code is unknown, used already or expired: ask for a new one"
    for n in range(LINK_ATTEMPTS):
        assert await world.ask(STRANGER_CHAT, f"/link WRONGCODE{n}") == refused
    code = await IssueTelegramLinkCode(world.store, ManualClock(T0))("alice")
    assert await world.ask(STRANGER_CHAT, f"/link {code.code}") == TOO_MANY_CODES
    assert await world.ask(STRANGER_CHAT, "/status") == NOT_LINKED
    await link(world)  # another chat: alice's new code was not spent, other chats are not held


async def test_a_forwarded_command_is_not_obeyed(world: World) -> None:
    from adapters.telegram.bot_api import parse_update
    from application.telegram import FORWARDED

    await link(world)
    update = {"update_id": 7, "message": {"message_id": 3, "chat": {"id": ALICE_CHAT, "type": "private"},
                                          "text": "/close " + world.position_id,
                                          "forward_origin": {"type": "user", "date": 1}}}
    message = parse_update(update)
    assert message is not None and message.forwarded
    assert await world.bot.commands.answer(message) == FORWARDED
    assert world.closer.calls == []
    plain = parse_update({**update, "message": {k: v for k, v in update["message"].items() if k != "forward_origin"}})
    assert plain is not None and not plain.forwarded
