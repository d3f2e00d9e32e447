"""The safety monitor: trips the emergency stop when trading goes wrong.

It trips a user's stop when their loss today (realised, plus what their open positions
would lose at the current price) reaches their daily loss limit, or when a price collapses
below one of their entries; it trips the global stop on a burst of exchange errors (orders
refused or failed, for anyone). A person trips it through ActivateEmergencyStop directly.
Each trip cancels open orders and refuses new ones until a person clears it, and alerts.

Its trips are automatic (EmergencyStopActivated.automatic): they hold new buys and
take-profits, but stop-losses and trailing stops keep selling (domain.safety.Halt), since a
daily-loss or price-collapse trip fires exactly when a position may need its stop-loss.

Errors count once per snipe or position within the window: a refused snipe records its
rejection and its failure, and an exit refused again and again (one position's problem, e.g. a
balance short of what it holds) records each attempt; neither must halt everyone alone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from application.alerts import Alert, NoNotifier, Notifier, Severity
from application.errors import ExchangeError, NotFound
from application.ports import Clock, EventStore, MarketData, TraderDirectory
from application.trade_book import TradeBook
from application.use_cases.safety import ActivateEmergencyStop
from domain.errors import DomainError
from domain.events import ExitOrderFailed, SnipeFailed, SnipeOrderRejected
from domain.risk import DEFAULT_RISK_PROFILE, RiskProfile
from domain.safety import (
    GLOBAL_SCOPE,
    SAFETY_MONITOR,
    daily_loss_breached,
    distinct_errors,
    error_burst,
    price_collapsed,
)
from domain.values import Symbol

MONITOR = SAFETY_MONITOR  # its stops are automatic, also those recorded before the field existed
_ERROR_EVENTS = (SnipeOrderRejected, SnipeFailed, ExitOrderFailed)


@dataclass(frozen=True, slots=True)
class SafetyLimits:
    error_burst: int = 5
    error_window: timedelta = timedelta(minutes=1)
    price_collapse_percent: Decimal = Decimal("50")


@dataclass(frozen=True, slots=True)
class Trip:
    scope: str
    reason: str
    cancelled_orders: tuple[str, ...] = ()


@dataclass(slots=True)
class SafetyReport:
    trips: list[Trip] = field(default_factory=list)
    watched_users: int = 0
    errors_in_window: int = 0
    price_problems: list[str] = field(default_factory=list)
    enforced: list[str] = field(default_factory=list)  # stops seen for the first time: orders cancelled


class MonitorSafety:
    def __init__(
        self,
        store: EventStore,
        market: MarketData,
        traders: TraderDirectory,
        activate: ActivateEmergencyStop,
        clock: Clock,
        book: TradeBook,
        limits: SafetyLimits = SafetyLimits(),
        notifier: Notifier | None = None,
    ) -> None:
        self.store, self.market, self.traders, self.activate = store, market, traders, activate
        self.clock, self.book, self.limits = clock, book, limits
        self.notifier = notifier if notifier is not None else NoNotifier()
        self._cursor: int | None = None
        self._errors: deque[tuple[datetime, str]] = deque()  # (when, the snipe or position it befell)
        self._stops_handled: set[str] = set()

    async def __call__(self) -> SafetyReport:
        report = SafetyReport()
        now = self.clock.now()
        await self._collect_errors(now)
        report.errors_in_window = len(self._distinct_errors())
        await self.book.catch_up(self.store)
        await self._enforce_recorded_stops(report)
        if not self.book.halted(GLOBAL_SCOPE) and error_burst(
            self._distinct_errors(), now, self.limits.error_window, self.limits.error_burst
        ):
            await self._trip(report, GLOBAL_SCOPE, f"{len(self._distinct_errors())} exchange errors within "
                             f"{_span(self.limits.error_window)}")
        users = {p.user_id for p in self.book.open_positions()}
        users |= {row.user_id for row in self.book.daily_pnl() if row.day == now.date()}
        report.watched_users = len(users)
        for user_id in sorted(users):
            if self.book.halted(user_id):
                continue
            reason = await self._user_breach(user_id, now, report)
            if reason is not None:
                await self._trip(report, user_id, reason)
        return report

    async def _enforce_recorded_stops(self, report: SafetyReport) -> None:
        """A stop recorded by someone else (a person through the API, another process) only
        halts new orders: cancel the open ones here, once per activation."""
        active = set(self.book.stops)
        self._stops_handled &= active  # a cleared stop, activated again later, is handled again
        for scope in sorted(active - self._stops_handled):
            result = await self.activate.cancel_open_orders(scope)
            self._stops_handled.add(scope)
            report.enforced.append(scope)
            if result.cancelled_orders or result.cancel_failures:
                await self.notifier.send(Alert(
                    key=f"emergency-stop:{scope}", severity=Severity.CRITICAL,
                    title=f"emergency stop ({scope}): open orders cancelled",
                    text=f"{self.book.stops[scope]}; {len(result.cancelled_orders)} cancelled, "
                         f"{len(result.cancel_failures)} could not be cancelled",
                    at=self.clock.now(), user_id=None if scope == GLOBAL_SCOPE else scope,
                ))

    async def _collect_errors(self, now: datetime) -> None:
        if self._cursor is None:
            # Errors from before this monitor started were judged by the one before it.
            self._cursor = await self.store.last_position()
        while True:
            batch = await self.store.read_all(after=self._cursor, limit=1000)
            for rec in batch:
                if isinstance(rec.event, _ERROR_EVENTS):
                    befell = rec.event.position_id if isinstance(rec.event, ExitOrderFailed) else rec.event.target_id
                    self._errors.append((rec.occurred_at, befell))
                self._cursor = rec.position or self._cursor
            if len(batch) < 1000:
                break
        while self._errors and self._errors[0][0] < now - self.limits.error_window:
            self._errors.popleft()

    def _distinct_errors(self) -> list[datetime]:
        """The errors in the window, one per snipe or position (domain.safety.distinct_errors)."""
        return distinct_errors(self._errors)

    async def _user_breach(self, user_id: str, now: datetime, report: SafetyReport) -> str | None:
        risk = await self._risk(user_id)
        unrealised = Decimal(0)
        for pos in self.book.open_positions(user_id):
            try:
                price = await self.market.last_price(Symbol.parse(pos.symbol))
            except (ExchangeError, DomainError) as exc:
                report.price_problems.append(f"{pos.symbol}: {exc}")
                continue
            if price is None:
                continue
            if price_collapsed(pos.entry_price, price, self.limits.price_collapse_percent):
                return (f"price collapse: {pos.symbol} at {price}, {self.limits.price_collapse_percent}% "
                        f"or more below the entry {pos.entry_price}")
            unrealised += price * pos.remaining - pos.remaining_cost
        realised = self.book.realised_pnl_on(user_id, now.date())
        if daily_loss_breached(realised, unrealised, risk.max_daily_loss):
            return (f"daily loss limit reached: {-(realised + min(unrealised, Decimal(0)))} lost today "
                    f"(limit {risk.max_daily_loss})")
        return None

    async def _risk(self, user_id: str) -> RiskProfile:
        try:
            return (await self.traders.settings_for(user_id)).risk
        except NotFound:
            return DEFAULT_RISK_PROFILE

    async def _trip(self, report: SafetyReport, scope: str, reason: str) -> None:
        result = await self.activate(scope, reason, MONITOR, automatic=True)
        self._stops_handled.add(scope)  # activate() cancelled the open orders already
        if result.already_active_since is not None:
            return  # a stop recorded elsewhere since the book was read holds already: no trip of ours
        report.trips.append(Trip(scope, reason, tuple(result.cancelled_orders)))
        await self.notifier.send(Alert(
            key=f"emergency-stop:{scope}",
            severity=Severity.CRITICAL,
            title=f"emergency stop tripped ({scope})",
            text=f"{reason}; {len(result.cancelled_orders)} open order(s) cancelled"
                 + (f", {len(result.cancel_failures)} could not be cancelled" if result.cancel_failures else ""),
            at=self.clock.now(),
            user_id=None if scope == GLOBAL_SCOPE else scope,
        ))


def _span(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 and seconds >= 60 else f"{seconds} s"
