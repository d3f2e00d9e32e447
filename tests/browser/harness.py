"""The dashboard's test bench: the HTTP API (uvicorn) and a paper replay worker in one process.

Both work on the same SQLite file, each with its own container, as `sniper serve` and `sniper
worker` do on one database: what the replay records, the API's relay streams to the page. They
run on one event loop in a background thread, so a test drives the browser (Playwright's sync
API) from the main thread and steps the replay with `bench.replay_until(moment)`.

The scenario is laid around the wall clock (launches before now, one after), so the page shows
a countdown; it reads the wall clock (tests/time_sensitive.txt). The API has a Telegram bot: a
local fake Bot API (tests/fakes/telegram.py) answers its getMe.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import uvicorn
from dishka import Scope, provide

from adapters.clock import ManualClock, SystemClock
from adapters.memory import InMemoryScheduler
from adapters.notifications import SqlNotificationOutbox
from adapters.paper.exchange import PaperExchange
from adapters.paper.scenario import Scenario, parse_scenario
from application.accounts import PaperOrLive
from application.ai import analysis_stream
from application.notifications import Queued
from application.ports import AgentStatus, AgentStatusBoard, EventStore, LockService
from application.telegram import RedeemTelegramLinkCode
from application.trade_book import TradeBook
from application.use_cases.listings import EXECUTE_SNIPE, DetectReadyStates, SyncCalendar
from application.use_cases.positions import ManagePositions
from application.use_cases.snipe import ExecuteSnipe
from domain.events import ListingAnalysed, Recorded
from entrypoints.config import Settings, load_settings
from entrypoints.container import paper_trading_container
from entrypoints.http import create_app
from entrypoints.http.providers import http_container
from entrypoints.http.trading import ApiMarket, ApiTradingProvider
from entrypoints.telegram import TelegramBotProfile
from tests.fakes.telegram import FakeTelegram

T = TypeVar("T")
USER = "local"  # the development identity's user: the replay trades for the page's trader
# The trader's exit plan, in the scenario and saved through the API: a take-profit selling all at
# +20%, a stop-loss at -15%, a trailing stop 10% under the peak.
QUICK_PLAN = {"take_profits": [{"gain_percent": "20", "sell_percent": "100"}], "stop_loss_percent": "15",
              "trailing_stop_percent": "10"}


@dataclass(frozen=True, slots=True)
class Moments:
    start: datetime
    ready: datetime  # every replayed listing shows the ready pattern by then
    first_launch: datetime  # ALPHA: bought, then its take-profit sells all
    first_closed: datetime
    second_launch: datetime  # BETA: bought, held (closed by hand)
    third_launch: datetime  # GAMMA: refused while the emergency stop holds
    end: datetime
    upcoming: datetime  # DELTA: after the replay, counted down on the page


def build_scenario(now: datetime) -> tuple[Scenario, Moments]:
    start = now.replace(second=0, microsecond=0, tzinfo=UTC) - timedelta(hours=3)
    m = Moments(
        start=start, ready=start + timedelta(minutes=40), first_launch=start + timedelta(minutes=60),
        first_closed=start + timedelta(minutes=75), second_launch=start + timedelta(minutes=90),
        third_launch=start + timedelta(minutes=120), end=start + timedelta(minutes=150),
        upcoming=start + timedelta(hours=5),
    )

    def at(moment: datetime) -> str:
        return moment.isoformat().replace("+00:00", "Z")

    def listing(coin: str, ticker: str, name: str, launch: datetime, ready_at: datetime | None,
                prices: list[tuple[int, str]]) -> dict[str, Any]:
        states = [{"at": at(start), "sts": 1, "st": 1, "tt": 1}]
        if ready_at is not None:
            states += [{"at": at(ready_at - timedelta(minutes=10)), "sts": 2, "st": 1, "tt": 1},
                       {"at": at(ready_at), "sts": 2, "st": 2, "tt": 4}]
        return {"coin_id": coin, "ticker": ticker, "full_name": name, "announced_at": at(start),
                "launch_at": at(launch), "price_scale": 4, "quantity_scale": 2,
                "states": states, "prices": [{"t": str(t), "price": p} for t, p in prices]}

    raw = {
        "name": "cockpit",
        "description": "The dashboard's browser tests: a pump closed by its take-profit, one held, one refused.",
        "start": at(m.start),
        "end": at(m.end),
        "traders": [{
            "user_id": USER, "quote_amount": "20", "exit_strategy": "quick",
            "exit_plans": [{"name": "quick", **QUICK_PLAN}],
        }],
        "listings": [
            listing("alpha-1", "ALPHA", "Alpha Protocol", m.first_launch, m.ready - timedelta(minutes=5),
                    [(0, "1.0000"), (60, "1.0500"), (180, "1.1200"), (420, "1.2500"), (600, "1.3000")]),
            listing("beta-2", "BETA", "Beta Finance", m.second_launch, m.ready - timedelta(minutes=2),
                    [(0, "2.0000"), (60, "2.0200"), (300, "2.0600"), (900, "2.0400"), (1500, "2.0800")]),
            listing("gamma-3", "GAMMA", "Gamma Chain", m.third_launch, m.ready,
                    [(0, "0.5000"), (60, "0.5200")]),
            listing("delta-4", "DELTA", "Delta Labs", m.upcoming, None, [(0, "1.0000")]),
        ],
    }
    return parse_scenario(msgspec.json.encode(raw), "cockpit scenario"), m


class Replay:
    """The worker's loop over the scenario in virtual time, stepped by the test (entrypoints/demo.py
    runs the same loop to the end in one go)."""

    def __init__(self, settings: Settings, scenario: Scenario) -> None:
        self.scenario = scenario
        self.clock = ManualClock(scenario.start)
        self.container = paper_trading_container(settings, scenario, self.clock)
        self._next_calendar = self._next_states = scenario.start
        self._last_tick_at = scenario.start - timedelta(microseconds=1)

    async def open(self) -> None:
        await self.container.get(LockService)
        c = self.container
        self.store = await c.get(EventStore)
        self.paper = await c.get(PaperExchange)
        self.scheduler = await c.get(InMemoryScheduler)
        self.sync_calendar = await c.get(SyncCalendar)
        self.detect_ready = await c.get(DetectReadyStates)
        self.execute_snipe = await c.get(ExecuteSnipe)
        self.manage = await c.get(ManagePositions)
        self.book = await c.get(TradeBook)
        self.settings = (await c.get(Settings))
        self.book.position = await self.store.last_position()

    async def until(self, moment: datetime) -> None:
        settings = self.settings
        while self.clock.now() <= min(moment, self.scenario.end):
            now = self.clock.now()
            if now >= self._next_calendar:
                await self.sync_calendar()
                self._next_calendar = now + timedelta(seconds=settings.sniper_calendar_poll_seconds)
            if now >= self._next_states:
                await self.detect_ready()
                self._next_states = now + timedelta(seconds=settings.sniper_state_poll_seconds)
            due = [job for job in self.scheduler.take_due(self.clock.now()) if job.kind == EXECUTE_SNIPE]
            if due:
                await self.book.catch_up(self.store)
                await self.clock.run_together(self.execute_snipe(job.key) for job in due)
            for tick in self.paper.ticks_between(self._last_tick_at, self.clock.now()):
                await self.manage.on_tick(tick)
            self._last_tick_at = self.clock.now()
            upcoming = [self._next_calendar, self._next_states, self.scenario.end + timedelta(microseconds=1)]
            if (job_at := self.scheduler.next_run_at()) is not None:
                upcoming.append(job_at)
            if ticks := self.paper.ticks_between(self._last_tick_at, self.scenario.end):
                upcoming.append(ticks[0].at)
            step = max(min(upcoming), self.clock.now())
            if step > moment:
                break
            self.clock.set(step)


class ReplayTrading(ApiTradingProvider):
    """The API's market is the replay's paper exchange: open positions priced at the replay's
    prices, a close by hand sold there (as `trading=` of http_container allows)."""

    def __init__(self, paper: PaperExchange) -> None:
        super().__init__()
        self.paper = paper

    @provide(scope=Scope.APP)
    def market(self) -> ApiMarket:  # type: ignore[override]
        return ApiMarket(self.paper, PaperOrLive(self.paper))


class Bench:
    """The API and the replay on one loop in a daemon thread; `call` runs a coroutine there."""

    def __init__(self, folder: Path) -> None:
        self.scenario, self.moments = build_scenario(datetime.now(UTC))
        self.database = f"sqlite+aiosqlite:///{folder / 'cockpit.db'}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="cockpit-bench", daemon=True)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._served: Future[None] | None = None

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.telegram: FakeTelegram = self.call(lambda: FakeTelegram().start())
        self.settings = load_settings({"DATABASE_URL": self.database, "TELEGRAM_BOT_TOKEN": self.telegram.token,
                                       "TELEGRAM_API_URL": self.telegram.api_url})
        self.replay = Replay(self.settings, self.scenario)
        self.call(self.replay.open)  # creates the schema before the API reads it
        self.container = http_container(self.settings, SystemClock(), trading=ReplayTrading(self.replay.paper))
        limits = msgspec.structs.replace(self.settings, sniper_rate_limit_per_minute=0, sniper_access_log=False)
        app = create_app(self.container, limits)
        config = uvicorn.Config(app, log_config=None, log_level=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self._served = asyncio.run_coroutine_threadsafe(self.server.serve(sockets=[self._listener]), self.loop)
        self.call(self._until_started)

    async def _until_started(self) -> None:
        for _ in range(500):
            if self.server.started:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("the API did not start")

    def analyse(self, coin_id: str, symbol: str, score: str, explanation: str) -> None:
        """Record an advisory analysis of a listing, as the worker's analyst does."""
        event = ListingAnalysed(coin_id, symbol, Decimal(score), explanation, "rules", ("ALPHAUSDT",), Decimal(0))
        stream = analysis_stream(coin_id)

        async def record() -> None:
            version = len(await self.replay.store.load(stream)) + 1
            recorded = Recorded(stream, version, datetime.now(UTC), "system", f"listing-{coin_id}", event)
            await self.replay.store.append([recorded])

        self.call(record)

    def heartbeat(self, name: str, healthy: bool, detail: str) -> None:
        """An agent's heartbeat on the API's status board, as the replay's worker supervisor would send."""
        now = datetime.now(UTC)
        status = AgentStatus(name, healthy, now, 0, detail, "replay-1", now + timedelta(minutes=10))

        async def beat() -> None:
            board = await self.container.get(AgentStatusBoard)
            await board.beat(status)

        self.call(beat)

    def undelivered(self, kind: str, channel: str, title: str, body: str, error: str) -> None:
        """A message of the trader's that its channel refused after every retry, as the worker's
        notifier records it."""
        outbox = SqlNotificationOutbox(self.replay.store.engine)

        async def record() -> None:
            now = datetime.now(UTC)
            await outbox.queue([Queued(f"test:{title}", None, USER, channel, kind, title, body, False)], now)
            for entry in await outbox.pending():
                if entry.title == title:
                    await outbox.give_up(entry.id, 5, error)

        self.call(record)

    def redeem_telegram(self, chat_id: int, code: str) -> str:
        """The bot redeems `/link CODE` sent from `chat_id`: the chat acts for the code's user."""
        return self.call(lambda: RedeemTelegramLinkCode(self.replay.store, SystemClock())(chat_id, code))

    @contextlib.contextmanager
    def without_telegram(self) -> Iterator[None]:
        """The API as on a deployment without TELEGRAM_BOT_TOKEN, for the time of the block."""
        profile = self.call(lambda: self.container.get(TelegramBotProfile))
        kept = profile.settings
        profile.settings = msgspec.structs.replace(kept, telegram_bot_token=None)
        try:
            yield
        finally:
            profile.settings = kept

    def replay_until(self, moment: datetime) -> None:
        self.call(lambda: self.replay.until(moment))

    def stop(self) -> None:
        try:
            if self._served is not None:
                self.server.should_exit = True
                self._served.result(15)
            self.call(self.container.close)
            self.call(self.replay.container.close)
            self.call(self.telegram.stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self._listener.close()
