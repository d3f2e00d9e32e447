"""The worker's agents: each a round of work the supervisor runs again and again.

- calendar: records new listings and creates the targets of auto-sniping users.
- pattern discovery: polls symbol states, marks targets ready and schedules snipes; hands
  new listings to the AI analyst in the background (never waited for).
- strategy: starts the snipes that are due, each as its own piece of work (a stop lets it
  finish); after a restart it schedules again the snipes the store says are scheduled, and
  it schedules again a snipe about to launch whose job the scheduler lost (Redis lost its data).
- risk manager: follows the prices of open positions and applies their exit plans; reports
  users over their exposure limit.
- safety monitor: trips the emergency stop (daily loss, error burst, price collapse).
- reconciliation: agrees with the exchange on every order we sent; reports strangers.
- simulation: replays recorded listings through the exit strategies (backtest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from application.alerts import Alert, NoNotifier, Notifier, Severity
from application.errors import ExchangeError, NotFound
from application.ports import (
    Clock,
    EventStore,
    MarketData,
    PriceStream,
    PriceTick,
    ScheduledJob,
    Scheduler,
    TraderDirectory,
)
from application.price_polling import PollPlan
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.listings import EXECUTE_SNIPE, DetectReadyStates, SyncCalendar
from application.use_cases.monitor import MonitorSafety
from application.use_cases.positions import ManagePositions
from application.use_cases.reconcile import ReconcileWithExchange
from application.use_cases.snipe import ExecuteSnipe
from application.views import ListingView, PositionView
from domain.errors import DomainError
from domain.values import Symbol

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]

# How often the strategy agent makes sure the scheduler still holds the job of each snipe from
# this long before its launch to the end of its window (see StrategyAgent._restore_lost).
_RESTORE_EVERY = timedelta(seconds=1)
_RESTORE_AHEAD = timedelta(minutes=10)


class DueJobs(Protocol):
    """Scheduled jobs whose time has come, taken once (the in-process scheduler)."""

    def take_due(self, now: datetime) -> list[ScheduledJob]: ...


class CalendarAgent:
    def __init__(self, sync: SyncCalendar) -> None:
        self.sync = sync

    async def tick(self) -> str:
        result = await self.sync()
        if result.feed_error is not None:
            return f"calendar unreadable, polling again: {result.feed_error}"
        return f"{len(result.new_listings)} new listing(s), {len(result.new_targets)} new target(s)"


class PatternDiscoveryAgent:
    """Ready states and scheduling; AI enrichment of each new listing in the background,
    bounded by `enrich_budget` so a slow provider never piles up work."""

    def __init__(
        self,
        detect: DetectReadyStates,
        store: EventStore,
        book: TradeBook,
        spawn: Spawn,
        enrich: Callable[[ListingView], Awaitable[object]] | None = None,
        enrich_budget: timedelta = timedelta(seconds=10),
    ) -> None:
        self.detect, self.store, self.book, self.spawn = detect, store, book, spawn
        self.enrich, self.enrich_budget = enrich, enrich_budget
        self._enriched: set[str] = set()

    async def tick(self) -> str:
        result = await self.detect()
        enriching = self._enrich_new(self.enrich) if self.enrich is not None else 0
        parts = [f"{len(result.ready)} ready", f"{len(result.scheduled)} scheduled", f"{len(result.expired)} expired"]
        if enriching:
            parts.append(f"{enriching} sent for analysis")
        if result.feed_error is not None:
            parts.append(f"symbol states unreadable: {result.feed_error}")
        return ", ".join(parts)

    def _enrich_new(self, enrich: Callable[[ListingView], Awaitable[object]]) -> int:
        started = 0
        for coin_id, listing in self.book.listings.items():
            if coin_id in self._enriched:
                continue
            self._enriched.add(coin_id)
            self.spawn(self._enrich_one(enrich, listing), f"enrich:{coin_id}")
            started += 1
        return started

    async def _enrich_one(self, enrich: Callable[[ListingView], Awaitable[object]], listing: ListingView) -> None:
        try:
            await asyncio.wait_for(enrich(listing), self.enrich_budget.total_seconds())
        except Exception as exc:  # noqa: BLE001 - analysis is optional: never let it fail anything
            logger.warning("analysis of %s gave up: %s", listing.symbol, type(exc).__name__)


class StrategyAgent:
    """Starts due snipes. One snipe per target in flight in this process; the snipe's own
    lease keeps other processes out."""

    def __init__(
        self,
        execute: ExecuteSnipe,
        jobs: DueJobs,
        scheduler: Scheduler,
        store: EventStore,
        book: TradeBook,
        clock: Clock,
        timing: SnipeTiming,
        spawn: Spawn,
    ) -> None:
        self.execute, self.jobs, self.scheduler, self.store = execute, jobs, scheduler, store
        self.book, self.clock, self.timing, self.spawn = book, clock, timing, spawn
        self._in_flight: dict[str, asyncio.Task[Any]] = {}
        self._handed: set[str] = set()  # scheduled targets given to the scheduler by this agent
        self._restored_at: datetime | None = None
        self.outcomes: list[object] = []

    async def tick(self) -> str:
        await self._schedule_recorded()
        restored = await self._restore_lost()
        started = 0
        for job in self.jobs.take_due(self.clock.now()):
            if job.kind != EXECUTE_SNIPE:
                continue
            running = self._in_flight.get(job.key)
            if running is not None and not running.done():
                continue
            self._in_flight[job.key] = self.spawn(self._snipe(job.key), f"snipe:{job.key}")
            logger.info("snipe %s started: executor armed for launch", job.key)
            started += 1
        self._in_flight = {k: t for k, t in self._in_flight.items() if not t.done()}
        detail = f"{started} snipe(s) started, {len(self._in_flight)} in flight"
        return detail + (f", {restored} lost snipe job(s) scheduled again" if restored else "")

    async def _snipe(self, target_id: str) -> None:
        try:
            outcome = await self.execute(target_id)
        except Exception:
            # E.g. the store or Redis dropped mid-way. The target is where the store says it is:
            # still scheduled (nothing sent) → the next tick schedules it again; executing →
            # the reconciliation agent resolves it by its client order id.
            self._handed.discard(target_id)
            raise
        self.outcomes.append(outcome)
        logger.info("snipe %s: %s (%s)", target_id, outcome.result.value, outcome.detail)

    async def _schedule_recorded(self) -> None:
        """Every snipe the store says is scheduled gets a job here: those scheduled before a
        restart (jobs held in the process die with it) and those scheduled by another process
        (a target created through the API). Scheduling a job again replaces it: harmless."""
        await self.book.catch_up(self.store)
        for view in self.book.targets_in({"scheduled"}):
            if view.target_id in self._handed or view.target_id in self._in_flight:
                continue
            launch = view.execute_at or view.launch_at
            run_at = launch - self.timing.prepare_ahead
            await self.scheduler.schedule(ScheduledJob(EXECUTE_SNIPE, view.target_id, run_at))
            self._handed.add(view.target_id)

    async def _restore_lost(self) -> int:
        """The store is the truth: a snipe it says is scheduled or executing, from _RESTORE_AHEAD
        before its launch to the end of its window, whose job the scheduler lost (Redis without
        persistence, a failover, a flush) is scheduled again. A second run of a job the scheduler
        did not lose never follows (see Scheduler.ensure); if one did, the snipe's lease, the
        store's one recorded submission and the client order id keep it to one order."""
        now = self.clock.now()
        if self._restored_at is not None and now - self._restored_at < _RESTORE_EVERY:
            return 0
        self._restored_at = now
        restored = 0
        for view in self.book.targets_in({"scheduled", "executing"}):
            launch = view.execute_at or view.launch_at
            in_window = launch - _RESTORE_AHEAD <= now <= launch + self.timing.snipe_window
            if view.target_id in self._in_flight or not in_window:
                continue
            job = ScheduledJob(EXECUTE_SNIPE, view.target_id, launch - self.timing.prepare_ahead)
            restored += await self.scheduler.ensure(job)
        return restored


class RiskManagerAgent:
    """Applies exit plans on the REST price of each open position; reports exposure over limit.

    Without a `plan` it asks for every symbol's price each round. With one (the worker's), it
    runs every `plan.cadence.round_every` and asks only for the symbols due (price_polling.PollPlan:
    young positions faster, symbols the stream keeps fresh not at all, inside a request budget),
    all at once; the exposure check keeps the plain interval."""

    def __init__(
        self,
        manage: ManagePositions,
        market: MarketData,
        traders: TraderDirectory,
        store: EventStore,
        book: TradeBook,
        clock: Clock,
        notifier: Notifier | None = None,
        plan: PollPlan | None = None,
    ) -> None:
        self.manage, self.market, self.traders, self.store = manage, market, traders, store
        self.book, self.clock, self.plan = book, clock, plan
        self.notifier = notifier if notifier is not None else NoNotifier()
        self._exposure_at: datetime | None = None

    async def tick(self) -> str:
        await self.book.catch_up(self.store)
        positions = self.book.open_positions()
        quotes = {p.symbol: p.quote_asset for p in positions}
        watched = len(quotes)
        if self.plan is None:
            symbols = sorted(quotes)
        else:
            symbols = self.plan.due(_youngest(positions))
            for code in symbols:
                self.plan.polled(code)
        exits = 0
        unpriced = []
        prices = await asyncio.gather(*(self._price(code, quotes[code]) for code in symbols))
        for code, price in zip(symbols, prices, strict=True):
            if isinstance(price, str):
                unpriced.append(price)
                continue
            tick = PriceTick(Symbol.parse(code, quotes[code]), price, self.clock.now())
            exits += len(await self.manage.on_tick(tick))
        now = self.clock.now()
        over: list[str] = []
        if self.plan is None or self._exposure_at is None or now - self._exposure_at >= self.plan.cadence.interval:
            self._exposure_at = now
            over = await self._exposure_over_limit()
        detail = f"{watched} symbol(s) watched, {exits} exit(s)"
        if self.plan is not None:
            detail += f", {len(symbols)} polled"
        if unpriced:
            detail += f", no price for {', '.join(unpriced)}"
        if over:
            detail += f", over exposure limit: {', '.join(over)}"
        return detail

    async def _price(self, code: str, quote: str) -> Decimal | str:
        """The symbol's last price, or how it is described in the detail when there is none."""
        try:
            price = await self.market.last_price(Symbol.parse(code, quote))
        except (ExchangeError, DomainError) as exc:
            return f"{code} ({type(exc).__name__})"
        return code if price is None else price

    async def _exposure_over_limit(self) -> list[str]:
        over = []
        for user_id in sorted({p.user_id for p in self.book.open_positions()}):
            try:
                limit = (await self.traders.settings_for(user_id)).risk.max_total_exposure
            except NotFound:
                continue
            exposure = self.book.open_exposure(user_id)
            if exposure > limit:
                over.append(user_id)
                await self.notifier.send(Alert(
                    key=f"exposure:{user_id}", severity=Severity.WARNING,
                    title=f"exposure over limit for {user_id}",
                    text=f"open positions cost {exposure}, limit {limit}: no new snipes pass the risk check",
                    at=self.clock.now(), user_id=user_id,
                ))
        return over


def _youngest(positions: list[PositionView]) -> dict[str, datetime | None]:
    """Symbol -> when its youngest open position opened (None when no opening time is known)."""
    youngest: dict[str, datetime | None] = {}
    for p in positions:
        known = youngest.get(p.symbol)
        if known is None or (p.opened_at is not None and p.opened_at > known):
            youngest[p.symbol] = p.opened_at if p.opened_at is not None else known
    return youngest


class PriceStreamAgent:
    """Exits on prices the exchange pushes (between the risk manager's polls): follows the
    symbols of open positions and applies the exit plans to the newest tick of each."""

    def __init__(
        self, manage: ManagePositions, stream: PriceStream, store: EventStore, book: TradeBook,
        wait: timedelta = timedelta(milliseconds=200), plan: PollPlan | None = None,
    ) -> None:
        self.manage, self.stream, self.store, self.book, self.wait = manage, stream, store, book, wait
        self.plan = plan  # told of each symbol the stream keeps fresh: the REST poll skips it

    async def tick(self) -> str:
        await self.book.catch_up(self.store)
        wanted = {p.symbol: Symbol.parse(p.symbol, p.quote_asset) for p in self.book.open_positions()}
        await self.stream.follow(list(wanted.values()))
        newest: dict[str, PriceTick] = {}
        ticks = await self.stream.drain(self.wait)
        for tick in ticks:
            if tick.symbol.code in wanted:
                newest[tick.symbol.code] = tick
        if self.plan is not None:
            for code in newest:
                self.plan.streamed(code)
        exits = 0
        for tick in newest.values():
            exits += len(await self.manage.on_tick(tick))
        return f"{len(wanted)} symbol(s) followed, {len(ticks)} tick(s), {exits} exit(s)"


class SafetyMonitorAgent:
    def __init__(self, monitor: MonitorSafety) -> None:
        self.monitor = monitor

    async def tick(self) -> str:
        report = await self.monitor()
        detail = f"{report.watched_users} user(s) watched, {report.errors_in_window} recent exchange error(s)"
        if report.trips:
            detail += "; TRIPPED " + "; ".join(f"{t.scope}: {t.reason}" for t in report.trips)
        return detail


class ReconciliationAgent:
    def __init__(self, reconcile: ReconcileWithExchange, clock: Clock, notifier: Notifier | None = None) -> None:
        self.reconcile, self.clock = reconcile, clock
        self.notifier = notifier if notifier is not None else NoNotifier()

    async def tick(self) -> str:
        report = await self.reconcile()
        detail = (f"{len(report.snipes)} snipe(s) resumed, {len(report.exits_settled)} exit(s) settled, "
                  f"{len(report.unaccounted_orders)} unaccounted order(s)")
        if report.unaccounted_orders or report.problems:
            await self.notifier.send(Alert(
                key="reconciliation", severity=Severity.WARNING, title="reconciliation found differences",
                text="; ".join([
                    *(f"order {o.client_order_id} on {o.symbol} is not ours" for o in report.unaccounted_orders),
                    *report.problems,
                ])[:2000],
                at=self.clock.now(),
            ))
        return detail


class SimulationAgent:
    """Runs a backtest (whatever `simulate` does) and reports its summary line."""

    def __init__(self, simulate: Callable[[], Awaitable[str]]) -> None:
        self.simulate = simulate

    async def tick(self) -> str:
        return await self.simulate()
