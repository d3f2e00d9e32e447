"""The Telegram control bot: long polling (getUpdates) under a deployment-wide lease.

One bot answers per deployment, however many workers run: the one holding the `telegram-bot`
lease (Redis with REDIS_URL; without it, the only process holds it). The others stand by and
take over when the lease lapses. It runs inside `sniper worker` when TELEGRAM_BOT_TOKEN is set,
and alone as `sniper telegram`.

The commands (application/telegram.py) act through the process's own use cases: a halt cancels
open orders where the process holds the accounts (the worker; `sniper telegram` the way `sniper
halt` does), a close sells through the close-position use case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TextIO

import httpx
from dishka import AsyncContainer
from dishka.exceptions import NoFactoryError

from adapters.eventstore.sqlalchemy_store import SqlEventStore
from adapters.memory import InMemoryLockService
from adapters.projections import InMemoryReadModels, SqlProjector, SqlReadModels
from adapters.redis import RedisLockService
from adapters.telegram import HttpBotApi
from application.alerts import Notifier
from application.errors import ApplicationError, ConfigurationError
from application.ports import (
    AgentStatusBoard,
    Clock,
    EventStore,
    ExchangeAccounts,
    LiveBalances,
    LockService,
    MarketData,
    ReadModels,
    TraderDirectory,
    WallClock,
)
from application.telegram import BotApi, BotApiRateLimited, BotApiUnavailable, BotMessage, TelegramCommands
from application.use_cases.positions import ClosePosition
from application.use_cases.queries import GetBalances, GetTraderStatus, PricePositions
from application.use_cases.safety import ActivateEmergencyStop, ClearEmergencyStop
from domain.errors import DomainError
from entrypoints.config import Settings

log = logging.getLogger("sniper.telegram")

LEASE_KEY = "telegram-bot"
# How long one getUpdates waits for a message (Telegram allows up to 50 s).
DEFAULT_POLL_TIMEOUT = timedelta(seconds=25)
_BACKOFF_FIRST = 1.0
# The longest wait for Telegram's rate limit before a reply is given up (logged).
MAX_RATE_WAIT = timedelta(seconds=5)
_BACKOFF_MAX = 30.0


@dataclass
class TelegramBot:
    """Answers each message with its command's reply; `handled` counts the messages answered and
    `latencies` keeps how long each answer took (seconds, receive to sent), for the figures."""

    api: BotApi
    commands: TelegramCommands
    locks: LockService
    poll_timeout: timedelta = DEFAULT_POLL_TIMEOUT
    report: Callable[[str], None] = lambda line: None
    standby_poll: timedelta | None = None  # how often a bot standing by tries the lease (None: a third of its ttl)
    after_failure: timedelta = timedelta(seconds=_BACKOFF_MAX)  # the wait after an unexpected failure
    handled: int = 0
    latencies: list[float] = field(default_factory=list)
    offset: int | None = None
    holding: bool = False
    _standing_by: bool = False
    _confirmed: int | None = None  # the offset Telegram was last told (updates before it are done)

    @property
    def lease_ttl(self) -> timedelta:
        # Renewed after every poll: a poll that runs its whole timeout still leaves room.
        return self.poll_timeout * 2 + timedelta(seconds=10)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: hold the lease and poll, or stand by while another process holds it. A
        failure (a bug, Redis or the store unreachable) is logged and tried again later: the bot
        outlives it, and nothing of it reaches the worker it runs in."""
        while not stop.is_set():
            try:
                await self._turn(stop)
            except Exception:  # noqa: BLE001
                self.holding = False
                log.exception("telegram bot: failed; again in %.0f s", self.after_failure.total_seconds())
                await _wait(stop, self.after_failure.total_seconds())

    async def _turn(self, stop: asyncio.Event) -> None:
        async with self.locks.lease(LEASE_KEY, self.lease_ttl) as lease:
            if lease is None:
                if not self._standing_by:
                    self.report("telegram bot: another process answers; standing by")
                    self._standing_by = True
                await _wait(stop, (self.standby_poll or self.lease_ttl / 3).total_seconds())
                return
            self._standing_by = False
            self.holding = True
            self.report("telegram bot: answering (long polling)")
            try:
                await self._serve(lease, stop)
            finally:
                self.holding = False

    async def _serve(self, lease: Any, stop: asyncio.Event) -> None:
        backoff = _BACKOFF_FIRST
        while not stop.is_set():
            poll = asyncio.ensure_future(self.api.updates(self.offset, self.poll_timeout))
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
            if not poll.done():
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError, ApplicationError):
                    await poll
                await self._confirm()
                return
            try:
                messages = poll.result()
                self._confirmed = self.offset
            except BotApiUnavailable as exc:
                wait = exc.retry_after.total_seconds() if isinstance(exc, BotApiRateLimited) else backoff
                log.warning("telegram bot: %s; again in %.0f s", exc, wait)
                await _wait(stop, wait)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_FIRST
            for message in messages:
                await self.handle(message)
                self.offset = message.update_id + 1
            if not await self.locks.renew(lease, self.lease_ttl):
                log.warning("telegram bot: lease lost; taking it again or standing by")
                await self._confirm()
                return
        await self._confirm()

    async def _confirm(self) -> None:
        """Before the lease goes: tell Telegram that the updates answered so far are done (a
        getUpdates with the next offset and no wait), so that the next holder does not answer
        them again. The updates it returns stay unconfirmed, for the next holder. Best effort."""
        if self.offset is None or self.offset == self._confirmed:
            return
        with contextlib.suppress(ApplicationError, TimeoutError):
            await asyncio.wait_for(self.api.updates(self.offset, timedelta(0)), 5)
            self._confirmed = self.offset

    async def _send(self, message: BotMessage, reply: str) -> None:
        """Send the reply; told to wait by Telegram (429, a chat sending faster than about one a
        second), wait as told, up to MAX_RATE_WAIT, and send once more."""
        try:
            await self.api.send(message.chat_id, reply, reply_to=message.message_id)
        except BotApiRateLimited as exc:
            if exc.retry_after > MAX_RATE_WAIT:
                raise
            await asyncio.sleep(exc.retry_after.total_seconds())
            await self.api.send(message.chat_id, reply, reply_to=message.message_id)

    async def handle(self, message: BotMessage) -> str | None:
        """Answer one message (a command that fails unexpectedly gets one line; the bot goes on)."""
        started = time.perf_counter()
        reply = await answer_safely(self.commands, message)
        if reply is None:
            return None
        try:
            await self._send(message, reply)
        except BotApiUnavailable as exc:
            log.warning("telegram bot: reply to a message not sent: %s", exc)
            return reply
        elapsed = time.perf_counter() - started
        self.handled += 1
        self.latencies.append(elapsed)
        log.info("telegram bot: answered %s in %.0f ms", (message.text.split() or [""])[0][:40], elapsed * 1000)
        return reply


async def answer_safely(commands: TelegramCommands, message: BotMessage) -> str | None:
    """The command's answer; a command that fails unexpectedly gets one line, and the bot goes on."""
    try:
        return await commands.answer(message)
    except (ApplicationError, DomainError) as exc:
        return f"Refused: {exc}"
    except Exception:  # noqa: BLE001 - one command's bug must not stop the bot
        log.exception("telegram bot: command %r failed", message.text.split()[0] if message.text else "")
        return "Something went wrong answering that; nothing more was done. Try again, or see the logs."


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


# --- wiring ------------------------------------------------------------------------------------

def read_side(store: EventStore) -> tuple[ReadModels, Callable[[], Awaitable[None]] | None]:
    """The read models the commands read, and how to bring them up to the store before a read."""
    if isinstance(store, SqlEventStore):
        projector = SqlProjector(store.engine)

        async def refresh() -> None:
            await projector.catch_up()

        return SqlReadModels(store.engine), refresh
    return InMemoryReadModels(store), None


async def _closer(container: AsyncContainer, store: EventStore, clock: Clock) -> ClosePosition:
    """The container's close-position use case; built from its accounts and market where it has none."""
    try:
        return await container.get(ClosePosition)
    except NoFactoryError:
        pass
    return ClosePosition(store, await container.get(ExchangeAccounts), clock, market=await container.get(MarketData),
                         notifier=await container.get(Notifier))


async def build_commands(container: AsyncContainer, settings: Settings, stack: contextlib.AsyncExitStack,
                         bot_name: str = "") -> TelegramCommands:
    """The commands on a trading container's use cases (the worker's, or `sniper telegram`'s):
    the API's status, balance and close-position use cases on this process's market and accounts."""
    store = await container.get(EventStore)
    clock = await container.get(Clock)
    read_models, refresh = read_side(store)
    market = await container.get(MarketData)
    status = GetTraderStatus(read_models, store, clock, prices=PricePositions(market, clock),
                             board=await container.get(AgentStatusBoard))
    balances = GetBalances(read_models, await container.get(TraderDirectory), clock,
                           live=await _live_balances(settings, store, stack), paper_wallet=settings.sniper_paper_wallet)
    return TelegramCommands(
        store, clock, read_models,
        await container.get(ActivateEmergencyStop), await container.get(ClearEmergencyStop),
        refresh=refresh, close=await _closer(container, store, clock), balances=balances, status=status,
        wall=await container.get(WallClock), bot_name=bot_name,
    )


async def _live_balances(
    settings: Settings, store: EventStore, stack: contextlib.AsyncExitStack,
) -> LiveBalances | None:
    """A live deployment reads live traders' balances with their own stored keys (as the API
    does); a paper one has no live account to read."""
    if not (settings.sniper_market == "mexc" and settings.sniper_live):
        return None
    from adapters.mexc.accounts import UserMexcBalances
    from adapters.mexc.rest import MexcRestClient
    from entrypoints.keys import credential_vault

    try:
        vault = credential_vault(settings, store.engine if isinstance(store, SqlEventStore) else None)
    except ConfigurationError as exc:
        log.warning("telegram bot: stored MEXC keys cannot be opened (%s): no live balances", exc)
        return None
    balances = UserMexcBalances(
        vault, lambda keys: MexcRestClient(keys.api_key, keys.secret_key, settings.mexc_base_url,
                                           recv_window_ms=settings.mexc_recv_window_ms, order_lane=False,
                                           read_attempts=2),
        operator=settings.operator_keys, operator_user=settings.sniper_user,
    )
    stack.push_async_callback(balances.aclose)
    return balances


def bot_token(settings: Settings) -> str:
    token = settings.telegram_bot_token
    if token is None:
        raise ConfigurationError("TELEGRAM_BOT_TOKEN is not set: the Telegram bot needs its token (from BotFather)")
    return token.reveal()


@contextlib.asynccontextmanager
async def bot_api(settings: Settings):  # noqa: ANN201
    async with httpx.AsyncClient(trust_env=False) as client:
        yield HttpBotApi(client, bot_token(settings), settings.telegram_api_url)


class TelegramBotProfile:
    """What the API tells a user about the bot: whether there is one, and its @username (asked
    with getMe once, then kept; None while Telegram cannot be asked)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._name: str | None = None

    def require(self) -> None:
        if self.settings.telegram_bot_token is None:
            raise ConfigurationError("Telegram control is not set up on this deployment (TELEGRAM_BOT_TOKEN)")

    async def name(self) -> str | None:
        if self._name is None and self.settings.telegram_bot_token is not None:
            try:
                async with bot_api(self.settings) as api:
                    self._name = await api.bot_name()
            except BotApiUnavailable as exc:
                log.warning("telegram bot name unknown: %s", exc)
        return self._name


async def run_bot(container: AsyncContainer, settings: Settings, stop: asyncio.Event,
                  out: TextIO | None = None, poll_timeout: timedelta = DEFAULT_POLL_TIMEOUT) -> TelegramBot:
    """Run the bot on the container's use cases until `stop`; the bot (its figures) after."""
    def report(line: str) -> None:
        log.info("%s", line)
        if out is not None:
            out.write(line + "\n")

    async with bot_api(settings) as api:
        try:
            name = await api.bot_name()
        except BotApiUnavailable as exc:
            log.warning("telegram bot: getMe failed (%s); answering commands addressed to any bot", exc)
            name = ""
        locks = await container.get(LockService)
        if not isinstance(locks, RedisLockService):
            # Without Redis this process is the deployment: its lease is kept on the wall clock (a
            # replay's worker runs its own clock many times faster than the polls).
            locks = InMemoryLockService(await container.get(WallClock))
        async with contextlib.AsyncExitStack() as stack:
            bot = TelegramBot(api, await build_commands(container, settings, stack, name), locks,
                              poll_timeout=poll_timeout, report=report)
            await bot.run(stop)
    return bot


async def run_telegram(settings: Settings, out: TextIO, *, stop: asyncio.Event | None = None,
                       poll_timeout: timedelta = DEFAULT_POLL_TIMEOUT) -> TelegramBot:
    """`sniper telegram`: the bot alone, on MEXC's market like `sniper halt` (live account with
    MEXC keys and SNIPER_LIVE=1, else paper), until SIGTERM/SIGINT."""
    from adapters.clock import SystemClock
    from entrypoints.container import TradingMode, mexc_trading_container

    bot_token(settings)  # refused before anything is reached
    if settings.telegram_webhook_secret is not None:
        raise ConfigurationError("TELEGRAM_WEBHOOK_SECRET is set: in webhook mode the API takes the bot's updates "
                                 "(POST /api/v1/telegram/webhook); unset it to long-poll with `sniper telegram`")
    mode = TradingMode.LIVE if settings.sniper_live and settings.operator_keys else TradingMode.PAPER
    container = mexc_trading_container(settings, mode, SystemClock())
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        await container.get(LockService)  # reach Redis (when set) before answering anyone
        out.write(f"mexc-sniper telegram bot ({mode.value} account); stop with Ctrl-C\n")
        return await run_bot(container, settings, stop, out, poll_timeout)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await container.close()
