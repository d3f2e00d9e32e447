"""The world one acceptance scenario plays in: fakes only, virtual time, one event loop.

A World holds what the worker process would hold: the in-memory event store, a paper
exchange built from the listings the scenario declares, a ManualClock, the in-memory
scheduler, locks and trader directory, one trade book, and the use cases wired to them
the way entrypoints/container.py wires them. Nothing here touches a database or the
network, and no real time passes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from adapters.clock import ManualClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryLockService, InMemoryScheduler, InMemoryTraderDirectory
from adapters.paper.exchange import PaperExchange
from adapters.paper.scenario import parse_scenario
from application.ports import ExchangeTrading, OrderReport, OrderSide, ScheduledJob, TraderSettings
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.listings import EXECUTE_SNIPE, DetectReadyStates, SyncCalendar
from application.use_cases.positions import ExitOutcome, ManagePositions
from application.use_cases.queries import GetAuditTrail, GetPortfolio, GetTargetHistory
from application.use_cases.safety import ActivateEmergencyStop, ClearEmergencyStop
from application.use_cases.snipe import ExecuteSnipe, SnipeOutcome
from domain.events import Recorded
from domain.listing import target_id_for
from domain.position import Position, position_id_for, position_stream
from domain.target import SnipeTarget, target_stream

T = TypeVar("T")

# The clock starts a day before the usual scenario day, so a scenario may begin at any
# time of 2026-11-25 (ManualClock never goes backwards).
EPOCH = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
DEFAULT_DAY = date(2026, 11, 25)

_CLOCK_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$")


def dec(text: str) -> Decimal:
    return Decimal(text.strip())


def names(records: Iterable[Recorded]) -> list[str]:
    return [r.event.type_name for r in records]


class World:
    def __init__(self, run: Callable[[Awaitable[Any]], Any]) -> None:
        self.run = run
        self.clock = ManualClock(EPOCH)
        self.day = DEFAULT_DAY
        self.store = InMemoryEventStore()
        self.book = TradeBook()
        self.scheduler = InMemoryScheduler()
        self.locks = InMemoryLockService(self.clock)
        self.traders = InMemoryTraderDirectory()
        self.timing = SnipeTiming()
        self.taker_fee = "0.0005"
        self.listings: dict[str, dict[str, Any]] = {}
        self._paper: PaperExchange | None = None
        # Where the last When step started, in the store's global order.
        self.mark = 0
        self.snipe_outcomes: dict[str, list[SnipeOutcome]] = {}
        self.exit_outcomes: list[ExitOutcome] = []
        self.error: Exception | None = None
        self.result: Any = None
        self.calls_at_restart = 0
        self.subject: str = ""
        # Set when a scenario needs orders resting on the exchange (paper market orders never rest).
        self.resting: ExchangeWithRestingOrders | None = None
        # The worker loop's own bookkeeping (see play_until).
        self._next_calendar: datetime | None = None
        self._next_states: datetime | None = None
        self._last_tick_at = EPOCH

    # --- time ----------------------------------------------------------------------------

    def at(self, text: str) -> datetime:
        """`10:00`, `09:59:58.5` (on the scenario's day) or a full `2026-11-25 10:00`."""
        text = text.strip()
        if " " in text or "T" in text:
            day, _, clock_time = text.replace("T", " ").partition(" ")
            return self._on(date.fromisoformat(day), clock_time)
        return self._on(self.day, text)

    @staticmethod
    def _on(day: date, clock_time: str) -> datetime:
        m = _CLOCK_TIME.match(clock_time.strip())
        if m is None:
            raise ValueError(f"not a time of day: {clock_time!r}")
        hh, mm, ss, frac = m.groups()
        micro = int((frac or "0").ljust(6, "0"))
        return datetime.combine(day, time(int(hh), int(mm), int(ss or 0), micro), tzinfo=UTC)

    def set_time(self, moment: datetime) -> None:
        self.clock.set(moment)

    @property
    def now(self) -> datetime:
        return self.clock.now()

    # --- the paper exchange ------------------------------------------------------------------

    def coin_id(self, ticker: str) -> str:
        return f"coin-{ticker.lower()}"

    def listing(self, ticker: str) -> dict[str, Any]:
        if self._paper is not None:
            raise AssertionError(f"declare {ticker} before the exchange is first used")
        return self.listings[ticker]

    def announce(self, ticker: str, announced_at: datetime, launch_at: datetime) -> None:
        if self._paper is not None:
            raise AssertionError(f"declare {ticker} before the exchange is first used")
        self.listings[ticker] = {
            "coin_id": self.coin_id(ticker),
            "ticker": ticker,
            "full_name": f"{ticker.title()} Coin",
            "announced_at": announced_at.isoformat(),
            "launch_at": launch_at.isoformat(),
            "quantity_scale": 2,
            "states": [],
            "prices": [],
        }

    def launch_of(self, ticker: str) -> datetime:
        return datetime.fromisoformat(self.listings[ticker]["launch_at"])

    @property
    def paper(self) -> PaperExchange:
        if self._paper is None:
            listings = []
            for spec in self.listings.values():
                spec = dict(spec)
                if not spec["prices"]:
                    spec["prices"] = [{"t": "0", "price": "1"}]
                listings.append(spec)
            raw = msgspec.json.encode({
                "name": "acceptance",
                "start": EPOCH.isoformat(),
                "end": (EPOCH + timedelta(days=7)).isoformat(),
                "taker_fee": self.taker_fee,
                "listings": listings,
            })
            self._paper = PaperExchange(parse_scenario(raw, "acceptance scenario"), self.clock)
        return self._paper

    def symbol_code(self, ticker: str) -> str:
        return ticker + self.listings[ticker].get("quote_asset", "USDT")

    def paper_calls(self, kind: str, ticker: str | None = None, since: int = 0) -> list[str]:
        """Calls the paper exchange received: `buy`, `sell`, `query`, `prepare`, `cancel`."""
        symbol = self.symbol_code(ticker) if ticker else None
        return [
            c for c in self.paper.calls[since:]
            if c.split()[0] == kind and (symbol is None or c.split()[1] == symbol)
        ]

    def orders(self, side: OrderSide, ticker: str) -> list[OrderReport]:
        """Orders the paper exchange accepted (filled) on that side and symbol."""
        return [o for o in self.paper.orders if o.side is side and o.symbol.code == self.symbol_code(ticker)]

    # --- traders ---------------------------------------------------------------------------

    def trader(self, user_id: str) -> TraderSettings:
        return self.run(self.traders.settings_for(user_id))

    def put_trader(self, settings: TraderSettings) -> None:
        self.traders.put(settings)

    def update_trader(self, user_id: str, **changes: Any) -> None:
        self.put_trader(replace(self.trader(user_id), **changes))

    # --- use cases, wired like the container ------------------------------------------------

    def sync_calendar(self) -> SyncCalendar:
        return SyncCalendar(self.store, self.paper, self.traders, self.clock, self.book)

    def detect_ready(self) -> DetectReadyStates:
        return DetectReadyStates(
            self.store, self.paper, self.traders, self.scheduler, self.clock, self.book, self.timing
        )

    def execute_snipe(
        self, exchange: ExchangeTrading | None = None, book: TradeBook | None = None,
        locks: InMemoryLockService | None = None,
    ) -> ExecuteSnipe:
        return ExecuteSnipe(
            self.store, exchange or self.paper, self.paper, self.traders, locks or self.locks, self.clock,
            book or self.book, self.timing,
        )

    def manage_positions(self) -> ManagePositions:
        return ManagePositions(self.store, self.paper, self.clock, self.book)

    def activate_stop(self) -> ActivateEmergencyStop:
        return ActivateEmergencyStop(self.store, self.resting or self.paper, self.clock, self.book)

    def clear_stop(self) -> ClearEmergencyStop:
        return ClearEmergencyStop(self.store, self.clock, self.book)

    def portfolio(self) -> GetPortfolio:
        return GetPortfolio(self.store, self.paper)

    def target_history(self) -> GetTargetHistory:
        return GetTargetHistory(self.store)

    def audit_trail(self) -> GetAuditTrail:
        return GetAuditTrail(self.store)

    # --- the trade history ---------------------------------------------------------------

    def begin_action(self) -> None:
        self.mark = self.run(self.store.last_position())

    def all_events(self, after: int = 0) -> list[Recorded]:
        return self.run(self.store.read_all(after=after))

    def events_since_mark(self) -> list[Recorded]:
        return self.all_events(self.mark)

    def events_named(self, type_name: str, after: int = 0) -> list[Recorded]:
        return [r for r in self.all_events(after) if r.event.type_name == type_name]

    def target_id(self, user_id: str, ticker: str) -> str:
        return target_id_for(user_id, self.coin_id(ticker))

    def position_id(self, user_id: str, ticker: str) -> str:
        return position_id_for(self.target_id(user_id, ticker))

    def target_events(self, user_id: str, ticker: str) -> list[Recorded]:
        return self.run(self.store.load(target_stream(self.target_id(user_id, ticker))))

    def position_events(self, user_id: str, ticker: str) -> list[Recorded]:
        return self.run(self.store.load(position_stream(self.position_id(user_id, ticker))))

    def target(self, user_id: str, ticker: str) -> SnipeTarget:
        events = self.target_events(user_id, ticker)
        assert events, f"{user_id} has no snipe target for {ticker}"
        return SnipeTarget.rehydrate(target_stream(self.target_id(user_id, ticker)), events)

    def position(self, user_id: str, ticker: str) -> Position:
        events = self.position_events(user_id, ticker)
        assert events, f"{user_id} holds no position in {ticker}"
        return Position.rehydrate(position_stream(self.position_id(user_id, ticker)), events)

    # --- driving the flow ------------------------------------------------------------------

    def sync(self) -> Any:
        return self.run(self.sync_calendar()())

    def poll_states(self) -> Any:
        return self.run(self.detect_ready()())

    def job_for(self, user_id: str, ticker: str) -> ScheduledJob | None:
        key = self.target_id(user_id, ticker)
        return next((j for j in self.scheduler.pending if j.kind == EXECUTE_SNIPE and j.key == key), None)

    def take_job(self, user_id: str, ticker: str) -> ScheduledJob:
        """Move the clock to the job's time and take it from the scheduler, as the worker would."""
        job = self.job_for(user_id, ticker)
        assert job is not None, f"no snipe job is scheduled for {user_id}'s target on {ticker}"
        if job.run_at > self.now:
            self.set_time(job.run_at)
        self.run(self.scheduler.cancel(job.kind, job.key))
        return job

    def record_outcome(self, outcome: SnipeOutcome) -> SnipeOutcome:
        self.snipe_outcomes.setdefault(outcome.target_id, []).append(outcome)
        return outcome

    def execute(self, target_id: str, executor: ExecuteSnipe | None = None) -> SnipeOutcome:
        return self.record_outcome(self.run((executor or self.execute_snipe())(target_id)))

    def schedule_snipe(self, user_id: str, ticker: str) -> None:
        self.sync()
        self.poll_states()
        status = self.target(user_id, ticker).status.value
        assert status == "scheduled", f"{user_id}'s snipe of {ticker} is {status}, not scheduled"

    def ticks_from(self, moment: datetime) -> None:
        """The position manager follows price ticks after this moment."""
        self._last_tick_at = moment

    def play_ticks(self, until: datetime) -> list[ExitOutcome]:
        """Feed the position manager every price tick up to `until`, each at its own time."""
        manage = self.manage_positions()
        outcomes: list[ExitOutcome] = []
        for tick in self.paper.ticks_between(self._last_tick_at, until):
            if tick.at > self.now:
                self.set_time(tick.at)
            outcomes += self.run(manage.on_tick(tick))
        self._last_tick_at = max(self._last_tick_at, until)
        if until > self.now:
            self.set_time(until)
        self.exit_outcomes += outcomes
        return outcomes

    def play_until(self, end: datetime) -> None:
        """The worker loop of entrypoints/demo.py: poll the calendar (30 s) and the symbol
        states (10 s), run due snipes side by side, feed price ticks; jump between moments."""
        paper = self.paper
        sync, detect = self.sync_calendar(), self.detect_ready()
        execute, manage = self.execute_snipe(), self.manage_positions()
        poll_calendar, poll_states = timedelta(seconds=30), timedelta(seconds=10)
        while self.now <= end:
            now = self.now
            if self._next_calendar is None or now >= self._next_calendar:
                self.run(sync())
                self._next_calendar = now + poll_calendar
            if self._next_states is None or now >= self._next_states:
                self.run(detect())
                self._next_states = now + poll_states
            due = [j for j in self.scheduler.take_due(self.now) if j.kind == EXECUTE_SNIPE]
            if due:
                for outcome in self.run(self.clock.run_together(execute(j.key) for j in due)):
                    self.record_outcome(outcome)
            for tick in paper.ticks_between(self._last_tick_at, self.now):
                self.exit_outcomes += self.run(manage.on_tick(tick))
            self._last_tick_at = self.now
            upcoming = [self._next_calendar, self._next_states]
            if (next_job := self.scheduler.next_run_at()) is not None:
                upcoming.append(next_job)
            if ticks := paper.ticks_between(self._last_tick_at, end):
                upcoming.append(ticks[0].at)
            following = max(min(upcoming), self.now)
            if following > end:
                self.set_time(end)
                break
            self.set_time(following)

    def attempt(self, work: Callable[[], T]) -> T | None:
        """Run a command whose refusal is the point of the scenario; keep the error."""
        try:
            self.error = None
            return work()
        except Exception as exc:  # noqa: BLE001 - the Then steps say which error was expected
            self.error = exc
            return None


class WorkerDied(Exception):
    """The worker process stopped in the middle of a snipe (simulated)."""


class DyingExchange:
    """The trading port of a worker that dies at the send: before the buy reaches the
    exchange, or after the exchange accepted it but before the reply came back."""

    def __init__(self, paper: PaperExchange, after_accept: bool) -> None:
        self.paper = paper
        self.after_accept = after_accept

    async def prepare(self, symbol):  # noqa: ANN001, ANN201
        return await self.paper.prepare(symbol)

    async def place_market_buy(self, symbol, quote_amount, client_order_id):  # noqa: ANN001, ANN201
        if self.after_accept:
            await self.paper.place_market_buy(symbol, quote_amount, client_order_id)
        raise WorkerDied("the worker process died during the send")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.paper, name)


class ExchangeWithRestingOrders:
    """The paper exchange, plus orders it reports as open until they are cancelled."""

    def __init__(self, paper: PaperExchange, resting: list[OrderReport]) -> None:
        self.paper = paper
        self.resting = list(resting)

    async def open_orders(self, symbol=None):  # noqa: ANN001, ANN201
        return [o for o in self.resting if symbol is None or o.symbol == symbol]

    async def cancel_order(self, symbol, client_order_id):  # noqa: ANN001, ANN201
        await self.paper.cancel_order(symbol, client_order_id)  # logged in paper.calls
        found = [o for o in self.resting if o.client_order_id == client_order_id and o.symbol == symbol]
        self.resting = [o for o in self.resting if o not in found]
        return found[0] if found else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.paper, name)
