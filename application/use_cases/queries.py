"""Queries over the trade history: portfolio, one target's history, the audit trail."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from application.errors import AccountUnavailable, ApplicationError, ExchangeError, NotFound
from application.ports import (
    AgentStatus,
    AgentStatusBoard,
    AssetBalance,
    Clock,
    EventStore,
    LiveBalances,
    MarketData,
    ReadModels,
    TraderDirectory,
    TraderSettings,
)
from application.trade_book import PositionView, TargetView, TradeBook
from application.use_cases.safety import StopState, active_stops
from application.views import ListingView
from domain.errors import DomainError
from domain.events import Recorded
from domain.position import position_id_for, position_stream
from domain.target import target_stream
from domain.values import Symbol, quantize_money

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PortfolioLine:
    target: TargetView
    position: PositionView | None
    unrealised_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class Portfolio:
    lines: list[PortfolioLine]
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    invested: Decimal


class GetPortfolio:
    """Every target of a user (or of all users) with its position and P&L."""

    def __init__(self, store: EventStore, market: MarketData | None = None) -> None:
        self.store, self.market = store, market

    async def __call__(self, user_id: str | None = None) -> Portfolio:
        book = TradeBook()
        await book.catch_up(self.store)
        lines = []
        realised = unrealised = invested = Decimal(0)
        for target in book.targets.values():
            if user_id is not None and target.user_id != user_id:
                continue
            position = book.positions.get(position_id_for(target.target_id))
            upnl = None
            if position is not None:
                realised += position.realised_pnl
                invested += position.cost
                if position.status != "closed" and self.market is not None:
                    price = await self.market.last_price(Symbol.parse(position.symbol, position.quote_asset))
                    if price is not None:
                        upnl = quantize_money(position.remaining * price - position.remaining_cost)
                        unrealised += upnl
            lines.append(PortfolioLine(target, position, upnl))
        return Portfolio(lines, realised, unrealised, invested)


class GetTargetHistory:
    """The recorded events of one target and of the position it opened, in order."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, target_id: str) -> list[Recorded]:
        events = await self.store.load(target_stream(target_id))
        if not events:
            raise NotFound(f"unknown target id: {target_id}")
        events += await self.store.load(position_stream(position_id_for(target_id)))
        return sorted(events, key=lambda r: r.position or 0)


class GetAuditTrail:
    """Every recorded event in global order, optionally one user's (plus system events)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, user_id: str | None = None, after: int = 0, limit: int | None = None) -> list[Recorded]:
        events = await self.store.read_all(after=after)
        if user_id is not None:
            events = [e for e in events if e.user_id in (user_id, "system", "global")]
        return events[:limit] if limit is not None else events


# --- per-user queries (the HTTP API): read models, never a fold of the whole history ---------

@dataclass(frozen=True, slots=True)
class UserPortfolio:
    """A user's positions and totals, in the quote asset, from the read models."""

    positions: list[PositionView]
    open_positions: int
    invested: Decimal
    open_exposure: Decimal
    realised_pnl: Decimal
    fees: Decimal
    halted: str | None
    as_of_position: int


class GetUserPortfolio:
    """One user's portfolio from the projections: one query for the positions, one for the halt."""

    def __init__(self, read_models: ReadModels) -> None:
        self.read_models = read_models

    async def __call__(self, user_id: str) -> UserPortfolio:
        positions = await self.read_models.positions(user_id)
        invested = open_exposure = realised = fees = Decimal(0)
        open_count = 0
        for p in positions:
            invested += p.cost
            realised += p.realised_pnl
            fees += p.fees
            if p.status != "closed":
                open_count += 1
                open_exposure += p.remaining_cost
        halted = await self.read_models.halted(user_id)
        checkpoint = await self.read_models.checkpoint()
        return UserPortfolio(positions, open_count, invested, open_exposure, realised, fees, halted, checkpoint)


class GetUserTargetHistory:
    """The recorded events of one of the user's targets and of its position; another user's
    target is as unknown as a missing one."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, user_id: str, target_id: str) -> list[Recorded]:
        events = await self.store.load(target_stream(target_id))
        if not events or events[0].user_id != user_id:
            raise NotFound(f"unknown target id: {target_id}")
        events += await self.store.load(position_stream(position_id_for(target_id)))
        return sorted(events, key=lambda r: r.position or 0)


class GetUserAuditTrail:
    """The events recorded for one user, in global order, paged by position."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, user_id: str, after: int = 0, limit: int = 100) -> list[Recorded]:
        return await self.store.read_user(user_id, after=after, limit=limit)


class ListListings:
    """Listings the calendar announced, soonest launch first; with `upcoming_only`, those not
    launched yet (the calendar). Follows the store through a shared trade book."""

    def __init__(self, store: EventStore, book: TradeBook, clock: Clock) -> None:
        self.store, self.book, self.clock = store, book, clock

    async def __call__(
        self, upcoming_only: bool = False, limit: int = 200, after: tuple[datetime, str] | None = None,
    ) -> list[ListingView]:
        """At most `limit`, after the listing whose (launch, coin id) is `after` when given."""
        await self.book.catch_up(self.store)
        now = self.clock.now()
        found = [v for v in self.book.listings.values() if not upcoming_only or v.launch_at > now]
        if after is not None:
            found = [v for v in found if (v.launch_at, v.coin_id) > after]
        found.sort(key=lambda v: (v.launch_at, v.coin_id))
        return found[:limit]


# --- the cockpit: prices, status, balances (issue 15) ------------------------------------------

@dataclass(frozen=True, slots=True)
class PricedPosition:
    """An open position at the current price: `unrealised_pnl` = what it holds at that price
    minus what that cost; both None when no price is known."""

    position: PositionView
    current_price: Decimal | None
    unrealised_pnl: Decimal | None


# How long a price read for one symbol is reused (a page refreshing, a status with several positions).
PRICE_REUSE = timedelta(seconds=2)


class PricePositions:
    """Open positions at the market's last price; a symbol the market cannot price (not listed
    there, the market unreachable) is left unpriced rather than failing the answer."""

    def __init__(self, market: MarketData | None, clock: Clock) -> None:
        self.market, self.clock = market, clock
        self._seen: dict[str, tuple[datetime, Decimal | None]] = {}

    @property
    def available(self) -> bool:
        """Whether there is a market to price with (else every position is left unpriced)."""
        return self.market is not None

    async def __call__(self, positions: Iterable[PositionView]) -> list[PricedPosition]:
        priced = []
        for view in positions:
            if view.status == "closed":
                continue
            price = await self._price(view)
            upnl = quantize_money(view.remaining * price - view.remaining_cost) if price is not None else None
            priced.append(PricedPosition(view, price, upnl))
        return priced

    async def _price(self, view: PositionView) -> Decimal | None:
        if self.market is None:
            return None
        now = self.clock.now()
        seen = self._seen.get(view.symbol)
        if seen is not None and now - seen[0] < PRICE_REUSE:
            return seen[1]
        try:
            price = await self.market.last_price(Symbol.parse(view.symbol, view.quote_asset))
        except (ApplicationError, DomainError) as exc:
            _log.warning("no price for %s: %s", view.symbol, exc)
            price = None
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[view.symbol] = (now, price)
        return price


def total_unrealised(priced: Iterable[PricedPosition]) -> Decimal | None:
    """The sum over the priced positions; None when none of them could be priced."""
    known = [p.unrealised_pnl for p in priced if p.unrealised_pnl is not None]
    return sum(known, Decimal(0)) if known else None


class GetEmergencyStops:
    """The emergency stops holding for a user now (global first): who pressed them and since when."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, user_id: str) -> list[StopState]:
        return await active_stops(self.store, user_id)


@dataclass(frozen=True, slots=True)
class TraderStatus:
    """One answer to "what do I hold, what did I make today, am I halted"."""

    user_id: str
    stops: list[StopState]  # active stops holding for the user, global first; empty: not halted
    open_positions: list[PricedPosition]
    realised_today: Decimal  # exits filled today (UTC day of `as_of`)
    realised_total: Decimal
    unrealised: Decimal | None  # of the open positions at the current price; None: no price known
    open_exposure: Decimal  # what the open positions still cost
    agents: list[AgentStatus]
    as_of: datetime

    @property
    def halted(self) -> bool:
        return bool(self.stops)


class GetTraderStatus:
    """The trader's cockpit in one query: emergency stop (since when, by whom), open positions at
    the current price, today's and total realised P&L, the worker agents' heartbeats."""

    def __init__(
        self, read_models: ReadModels, store: EventStore, clock: Clock, *, prices: PricePositions | None = None,
        board: AgentStatusBoard | None = None,
    ) -> None:
        self.read_models, self.store, self.clock, self.board = read_models, store, clock, board
        self.prices = prices if prices is not None else PricePositions(None, clock)

    async def __call__(self, user_id: str) -> TraderStatus:
        now = self.clock.now()
        today = now.astimezone(UTC).date()
        positions = await self.read_models.positions(user_id)
        priced = await self.prices([p for p in positions if p.status != "closed"])
        daily = await self.read_models.daily_pnl(user_id, today, today)
        agents = await self.board.statuses() if self.board is not None else []
        return TraderStatus(
            user_id=user_id,
            stops=await active_stops(self.store, user_id),
            open_positions=priced,
            realised_today=sum((d.realised_pnl for d in daily), Decimal(0)),
            realised_total=sum((p.realised_pnl for p in positions), Decimal(0)),
            unrealised=total_unrealised(priced),
            open_exposure=sum((p.remaining_cost for p in positions if p.status != "closed"), Decimal(0)),
            agents=agents,
            as_of=now,
        )


@dataclass(frozen=True, slots=True)
class AccountBalancesView:
    mode: str  # "paper" or "live"
    balances: list[AssetBalance]
    as_of: datetime


class BalancesUnavailable(ApplicationError):
    """The live balances could not be read (the exchange unreachable or refusing): one line why."""


# What a paper account starts with, in the trader's quote asset, when nothing else is said.
DEFAULT_PAPER_WALLET = Decimal("1000")


class GetBalances:
    """The balances of the account the user trades on: live (their risk profile says so), read
    from the exchange with their own keys; else the paper account.

    The paper account is the trade history's: it starts with `paper_wallet` of the trader's quote
    asset; each paper position took its cost out of its quote asset and put back what its exits
    brought (proceeds less fees), and holds what it has not sold of its coin. So the quote held
    is the wallet plus, over the paper positions, realised P&L less the cost still open. Nothing
    is locked: paper market orders fill at once.
    """

    def __init__(
        self, read_models: ReadModels, traders: TraderDirectory, clock: Clock, *, live: LiveBalances | None = None,
        paper_wallet: Decimal = DEFAULT_PAPER_WALLET,
    ) -> None:
        self.read_models, self.traders, self.clock, self.live = read_models, traders, clock, live
        self.paper_wallet = paper_wallet

    async def __call__(self, user_id: str) -> AccountBalancesView:
        try:
            settings = await self.traders.settings_for(user_id)
        except NotFound:
            settings = TraderSettings(user_id=user_id, auto_snipe=False)
        if settings.risk.live:
            return AccountBalancesView("live", await self._live(user_id), self.clock.now())
        return AccountBalancesView("paper", await self._paper(user_id, settings.quote_asset), self.clock.now())

    async def _live(self, user_id: str) -> list[AssetBalance]:
        if self.live is None:
            raise AccountUnavailable("live balances cannot be read here: this API has no MEXC access")
        try:
            held = await self.live.balances(user_id)
        except ExchangeError as exc:
            line = " ".join(str(exc).split())
            raise BalancesUnavailable(f"MEXC balances unavailable: {line}"[:300]) from None
        return sorted(held, key=lambda b: b.asset)

    async def _paper(self, user_id: str, quote_asset: str) -> list[AssetBalance]:
        live_targets = {t.target_id for t in await self.read_models.targets(user_id) if t.live}
        quote: dict[str, Decimal] = {quote_asset: self.paper_wallet}
        coins: dict[str, Decimal] = {}
        for p in await self.read_models.positions(user_id):
            if p.target_id in live_targets:
                continue
            quote[p.quote_asset] = quote.get(p.quote_asset, Decimal(0)) + p.realised_pnl - p.remaining_cost
            if p.status != "closed" and p.remaining > 0:
                base = Symbol.parse(p.symbol, p.quote_asset).base
                coins[base] = coins.get(base, Decimal(0)) + p.remaining
        held = dict(coins)
        for asset, amount in quote.items():
            held[asset] = held.get(asset, Decimal(0)) + quantize_money(amount)
        return [AssetBalance(asset, amount, Decimal(0)) for asset, amount in sorted(held.items())]
