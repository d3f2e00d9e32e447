"""What the API trades and prices with (issue 15): a person's close of a position, open
positions at the current price, the account's balances.

With SNIPER_MARKET=mexc the API reads MEXC's prices (MEXC_BASE_URL), sells a paper position's
close on paper fills at those prices, and a live one (SNIPER_LIVE=1) on the user's own MEXC
account, as the worker does. With a replay (the default) the prices live in the replay's worker:
the API has none, so positions are unpriced and a close by hand is refused with a reason;
`http_container(..., trading=...)` may give a provider that knows the replay's market (a replay
run in the same process). Live balances are read with the user's stored keys in either case.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from dishka import Provider, Scope, provide

from adapters.mexc.accounts import UserMexcAccounts, UserMexcBalances
from adapters.mexc.exchange import MexcExchange
from adapters.mexc.rest import MexcRestClient
from adapters.paper.broker import PaperBroker
from adapters.telemetry.instrument import InstrumentedExchange
from application.accounts import PaperOrLive
from application.alerts import Notifier
from application.credentials import ApiCredentials, CredentialVault
from application.errors import AccountUnavailable
from application.ports import (
    AgentStatusBoard,
    Clock,
    EventStore,
    ExchangeAccounts,
    ExchangeTrading,
    LiveBalances,
    MarketData,
    ReadModels,
    TraderDirectory,
)
from application.telemetry import Telemetry
from application.use_cases.positions import ClosePosition
from application.use_cases.queries import GetBalances, GetEmergencyStops, GetTraderStatus, PricePositions
from entrypoints.config import Settings


@dataclass(frozen=True, slots=True)
class ApiMarket:
    """The market the API prices open positions on (None: no prices here), and the accounts a
    close by hand sells on."""

    market: MarketData | None
    accounts: ExchangeAccounts


class NoMarketAccounts:
    """ExchangeAccounts of an API with no market: every close by hand is refused, with why."""

    async def trading_for(self, user_id: str, live: bool) -> ExchangeTrading:
        raise AccountUnavailable(
            "this API has no market to sell on (SNIPER_MARKET=replay: the replay's worker holds its prices); "
            "its exit plan closes the position, or run the API with SNIPER_MARKET=mexc"
        )


def _client(settings: Settings, credentials: ApiCredentials | None, **options: object) -> MexcRestClient:
    keys = credentials or settings.operator_keys or ApiCredentials("", "")
    return MexcRestClient(keys.api_key, keys.secret_key, settings.mexc_base_url,
                          recv_window_ms=settings.mexc_recv_window_ms, **options)  # type: ignore[arg-type]


class ApiTradingProvider(Provider):
    """The API's market and accounts (see the module doc) and the use cases built on them."""

    @provide(scope=Scope.APP)
    async def market(
        self, settings: Settings, clock: Clock, vault: CredentialVault, telemetry: Telemetry
    ) -> AsyncIterator[ApiMarket]:
        if settings.sniper_market != "mexc":
            yield ApiMarket(None, NoMarketAccounts())
            return
        client = _client(settings, None)
        mexc = MexcExchange(client)
        # Not wrapped in telemetry: the exits then learn the pair's rules from MEXC (the broker has none).
        paper = PaperBroker(mexc, clock)
        accounts: ExchangeAccounts
        if settings.sniper_live:
            operator = (InstrumentedExchange(mexc, telemetry, mode="live", system="mexc")
                        if settings.operator_keys else None)
            accounts = UserMexcAccounts(
                vault, paper, lambda keys: _client(settings, keys),
                wrap=lambda exchange: InstrumentedExchange(exchange, telemetry, mode="live", system="mexc"),
                operator=operator, operator_user=settings.sniper_user,
            )
        else:
            accounts = PaperOrLive(paper)  # paper only: a live position is refused, never sold from here
        try:
            yield ApiMarket(mexc, accounts)
        finally:
            if isinstance(accounts, UserMexcAccounts):
                await accounts.aclose()
            await client.aclose()

    @provide(scope=Scope.APP)
    async def live_balances(self, settings: Settings, vault: CredentialVault) -> AsyncIterator[LiveBalances]:
        balances = UserMexcBalances(
            vault, lambda keys: _client(settings, keys, order_lane=False, read_attempts=2),
            operator=settings.operator_keys, operator_user=settings.sniper_user,
        )
        try:
            yield balances
        finally:
            await balances.aclose()

    @provide(scope=Scope.APP)
    def prices(self, market: ApiMarket, clock: Clock) -> PricePositions:
        return PricePositions(market.market, clock)

    @provide(scope=Scope.APP)
    def close_position(self, store: EventStore, market: ApiMarket, clock: Clock, notifier: Notifier) -> ClosePosition:
        # One for the process: it remembers, between requests, since when a lost sell is not found.
        return ClosePosition(store, market.accounts, clock, market=market.market, notifier=notifier)

    @provide(scope=Scope.APP)
    def trader_status(
        self, read_models: ReadModels, store: EventStore, clock: Clock, prices: PricePositions, board: AgentStatusBoard
    ) -> GetTraderStatus:
        return GetTraderStatus(read_models, store, clock, prices=prices, board=board)

    @provide(scope=Scope.APP)
    def balances(
        self, read_models: ReadModels, traders: TraderDirectory, clock: Clock, live: LiveBalances, settings: Settings
    ) -> GetBalances:
        return GetBalances(read_models, traders, clock, live=live, paper_wallet=settings.sniper_paper_wallet)

    emergency_stops = provide(GetEmergencyStops, scope=Scope.APP)
