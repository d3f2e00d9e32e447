"""The one place where adapters are chosen and wired (dishka).

APP scope throughout: the CLI, the worker and the demo run one flow per process. The API reuses
the storage and coordination providers and adds its REQUEST-scoped ones (entrypoints/http/providers.py).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from enum import Enum

import httpx
from dishka import AnyOf, AsyncContainer, Provider, Scope, from_context, make_async_container, provide
from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapters.clock import SystemClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.eventstore.migrate import ensure_schema
from adapters.eventstore.sqlalchemy_store import SqlEventStore, open_engine, sqlite_path
from adapters.memory import (
    InMemoryAgentStatusBoard,
    InMemoryCache,
    InMemoryEventFanout,
    InMemoryLaunchRoster,
    InMemoryLockService,
    InMemoryRequestCounter,
    InMemoryScheduler,
    InMemoryTraderDirectory,
)
from adapters.mexc.accounts import UserMexcAccounts
from adapters.mexc.exchange import MexcExchange
from adapters.mexc.limits import IP_LIMITS, RateLimiter
from adapters.mexc.listings import MexcListingFeed
from adapters.mexc.rest import MexcRestClient
from adapters.paper.broker import PaperBroker
from adapters.paper.exchange import PaperExchange
from adapters.paper.scenario import Scenario
from adapters.redis import (
    RedisAgentStatusBoard,
    RedisCache,
    RedisEventFanout,
    RedisLockService,
    RedisRequestCounter,
    redis_client,
)
from adapters.redis.rate_windows import RedisRateWindows
from adapters.redis.roster import RedisLaunchRoster
from adapters.telemetry.instrument import InstrumentedExchange, InstrumentedListingFeed
from application.accounts import PaperOrLive
from application.alerts import Notifier
from application.errors import ConfigurationError
from application.pair_rules import RecordingMarketData, SharedPairRules
from application.ports import (
    AgentStatusBoard,
    Cache,
    Clock,
    EventFanout,
    EventStore,
    ExchangeAccounts,
    ExchangeTrading,
    LaunchRoster,
    ListingFeed,
    LockService,
    MarketData,
    RequestCounter,
    Scheduler,
    TraderDirectory,
    TraderSettings,
    WallClock,
)
from application.telemetry import Telemetry
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.trader_directory import EventSourcedTraderDirectory
from application.use_cases.listings import DetectReadyStates, SyncCalendar
from application.use_cases.positions import ManagePositions
from application.use_cases.queries import GetAuditTrail, GetPortfolio, GetTargetHistory
from application.use_cases.reconcile import ReconcileWithExchange
from application.use_cases.safety import ActivateEmergencyStop, ClearEmergencyStop
from application.use_cases.snipe import ExecuteSnipe
from application.use_cases.targets import CreateSnipeTarget
from domain.risk import DEFAULT_RISK_PROFILE
from entrypoints.config import Settings, revealed
from entrypoints.observability import ObservabilityProvider

logger = logging.getLogger(__name__)


class StoreAccess(Enum):
    """WRITE creates the schema if needed; READ refuses to create anything."""

    READ = "read"
    WRITE = "write"


class StorageProvider(Provider):
    settings = from_context(provides=Settings, scope=Scope.APP)
    access = from_context(provides=StoreAccess, scope=Scope.APP)

    @provide(scope=Scope.APP)
    async def event_store(self, settings: Settings, access: StoreAccess) -> AsyncIterator[EventStore]:
        url = settings.store_url
        if url == "memory://":
            yield InMemoryEventStore()
            return
        path = sqlite_path(url)
        if access is StoreAccess.READ and path is not None and not path.exists():
            raise ConfigurationError(f"no trade history at {path} (run `sniper demo` first, or set DATABASE_URL)")
        engine = await open_engine(url)
        try:
            # A new empty database starts at the newest schema; an old one must be migrated.
            await ensure_schema(engine, initialise_empty=access is StoreAccess.WRITE)
            yield SqlEventStore(engine)
        finally:
            await engine.dispose()

    @provide(scope=Scope.APP)
    def audit_trail(self, store: EventStore) -> GetAuditTrail:
        return GetAuditTrail(store)

    @provide(scope=Scope.APP)
    def target_history(self, store: EventStore) -> GetTargetHistory:
        return GetTargetHistory(store)


class PaperExchangeProvider(Provider):
    """The embedded default exchange: a replay scenario, paper fills, in-process coordination."""

    scenario = from_context(provides=Scenario, scope=Scope.APP)
    clock = from_context(provides=Clock, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def paper(self, scenario: Scenario, clock: Clock) -> AnyOf[PaperExchange, ListingFeed, MarketData]:
        return PaperExchange(scenario, clock)

    @provide(scope=Scope.APP)
    def trading(self, paper: PaperExchange, telemetry: Telemetry) -> ExchangeTrading:
        return InstrumentedExchange(paper, telemetry, mode="paper", system="paper")

    @provide(scope=Scope.APP)
    def accounts(self, trading: ExchangeTrading) -> ExchangeAccounts:
        # A replay is paper only: a live target is refused, never sent anywhere.
        return PaperOrLive(trading)

    @provide(scope=Scope.APP)
    def traders(self, scenario: Scenario, store: EventStore) -> TraderDirectory:
        # Settings recorded through the API win; the scenario's traders fill in the rest.
        fallback = InMemoryTraderDirectory(scenario.trader_settings())
        return EventSourcedTraderDirectory(store, fallback=fallback, defaults_for_unknown=False)


@dataclasses.dataclass(frozen=True)
class RedisHandle:
    """The Redis client, or None for the embedded default."""

    client: Redis | None


class CoordinationProvider(Provider):
    """Scheduler, locks, cache, request counters, event fan-out and agent heartbeats. With
    REDIS_URL they live in Redis and are shared by every process; without it, in-process twins
    (the embedded default). The scheduler here is always in-process: the worker trading on MEXC
    with REDIS_URL runs snipes as durable SAQ jobs instead (entrypoints/worker.py)."""

    clock = from_context(provides=Clock, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def scheduler(self) -> AnyOf[InMemoryScheduler, Scheduler]:
        return InMemoryScheduler()

    @provide(scope=Scope.APP)
    async def redis(self, settings: Settings) -> AsyncIterator[RedisHandle]:
        if settings.redis_url is None:
            yield RedisHandle(None)
            return
        client = redis_client(settings.redis_url.reveal(), max_connections=settings.redis_max_connections,
                              pool_timeout=settings.redis_pool_timeout_seconds)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise ConfigurationError(f"REDIS_URL cannot be reached: {exc}") from None
        # Every MEXC client of this process draws from the IP's request budgets counted on Redis,
        # with every other process's (adapters/mexc/limits.py, IP_LIMITS).
        IP_LIMITS.share(RedisRateWindows(client, settings.redis_prefix))
        try:
            yield RedisHandle(client)
        finally:
            IP_LIMITS.share(None)
            await client.aclose()

    @provide(scope=Scope.APP)
    def locks(self, clock: Clock, redis: RedisHandle, settings: Settings) -> LockService:
        if redis.client is None:
            return InMemoryLockService(clock)
        return RedisLockService(redis.client, settings.redis_prefix)

    @provide(scope=Scope.APP)
    def counter(self, clock: Clock, redis: RedisHandle, settings: Settings) -> RequestCounter:
        if redis.client is None:
            return InMemoryRequestCounter(clock)
        return RedisRequestCounter(redis.client, settings.redis_prefix)

    @provide(scope=Scope.APP)
    def roster(self, clock: Clock, redis: RedisHandle, settings: Settings) -> LaunchRoster:
        # The traders of one launch share the IP's order budget (SendPlanner.plan); through Redis,
        # across every worker process.
        if redis.client is None:
            return InMemoryLaunchRoster(clock)
        return RedisLaunchRoster(redis.client, settings.redis_prefix)

    @provide(scope=Scope.APP)
    def fanout(self, redis: RedisHandle, settings: Settings) -> EventFanout:
        if redis.client is None:
            return InMemoryEventFanout()
        return RedisEventFanout(redis.client, settings.redis_prefix)

    @provide(scope=Scope.APP)
    def wall_clock(self) -> WallClock:
        # Always the system's: heartbeats are read by processes that know nothing of a replay.
        return SystemClock()

    @provide(scope=Scope.APP)
    def agent_board(self, redis: RedisHandle, settings: Settings) -> AgentStatusBoard:
        if redis.client is None:
            return InMemoryAgentStatusBoard()
        return RedisAgentStatusBoard(redis.client, settings.redis_prefix)

    @provide(scope=Scope.APP)
    def cache(self, clock: Clock, redis: RedisHandle, settings: Settings) -> Cache:
        if redis.client is None:
            return InMemoryCache(clock)
        return RedisCache(redis.client, settings.redis_prefix)


@dataclasses.dataclass(frozen=True)
class PaperFills:
    """The paper broker on MEXC's prices (paper targets' orders, in either mode)."""

    exchange: ExchangeTrading


class TradingMode(Enum):
    PAPER = "paper"
    LIVE = "live"


class MexcProvider(Provider):
    """MEXC market data always; trading on MEXC only in LIVE mode, else paper fills at MEXC's prices."""

    clock = from_context(provides=Clock, scope=Scope.APP)
    mode = from_context(provides=TradingMode, scope=Scope.APP)

    @provide(scope=Scope.APP)
    async def rest(self, settings: Settings, telemetry: Telemetry) -> AsyncIterator[MexcRestClient]:
        client = MexcRestClient(revealed(settings.mexc_api_key), revealed(settings.mexc_secret_key),
                                settings.mexc_base_url, recv_window_ms=settings.mexc_recv_window_ms,
                                limiter=RateLimiter(telemetry=telemetry))
        try:
            yield client
        finally:
            await client.aclose()

    @provide(scope=Scope.APP)
    async def listing_feed(self, settings: Settings, clock: Clock, telemetry: Telemetry) -> AsyncIterator[ListingFeed]:
        web = httpx.AsyncClient(timeout=10.0, trust_env=False)
        try:
            yield InstrumentedListingFeed(MexcListingFeed(web, settings.mexc_web_url, clock=clock), telemetry)
        finally:
            await web.aclose()

    @provide(scope=Scope.APP)
    def market(self, client: MexcRestClient) -> MexcExchange:
        return MexcExchange(client)

    @provide(scope=Scope.APP)
    def market_data(self, mexc: MexcExchange, cache: Cache) -> MarketData:
        # Each pair's rules read here are shared through the cache with the API, which holds no
        # exchange session and judges a new target's minimum order value with them.
        return RecordingMarketData(mexc, SharedPairRules(cache))

    @provide(scope=Scope.APP)
    def paper_fills(self, mexc: MexcExchange, clock: Clock, telemetry: Telemetry) -> PaperFills:
        return PaperFills(InstrumentedExchange(PaperBroker(mexc, clock), telemetry, mode="paper", system="paper"))

    @provide(scope=Scope.APP)
    def trading(
        self, mode: TradingMode, mexc: MexcExchange, paper: PaperFills, telemetry: Telemetry,
    ) -> ExchangeTrading:
        """The account reconciliation and the emergency stop act on: the live one in LIVE mode."""
        if mode is TradingMode.LIVE:
            return InstrumentedExchange(mexc, telemetry, mode="live", system="mexc")
        return paper.exchange

    @provide(scope=Scope.APP)
    async def accounts(
        self, mode: TradingMode, trading: ExchangeTrading, paper: PaperFills, settings: Settings, store: EventStore,
        telemetry: Telemetry,
    ) -> AsyncIterator[ExchangeAccounts]:
        # Paper targets always fill on paper, even on a live worker: never a real order for them.
        if mode is not TradingMode.LIVE:
            yield PaperOrLive(paper.exchange)
            return
        from entrypoints.keys import credential_vault

        try:
            vault = credential_vault(settings, store.engine if isinstance(store, SqlEventStore) else None)
        except ConfigurationError as exc:
            logger.warning("traders' stored MEXC keys cannot be opened (%s): only the operator's account trades live",
                           exc)
            yield PaperOrLive(paper.exchange, trading if settings.operator_keys else None)
            return
        accounts = UserMexcAccounts(
            vault, paper.exchange,
            lambda keys: MexcRestClient(keys.api_key, keys.secret_key, settings.mexc_base_url,
                                        recv_window_ms=settings.mexc_recv_window_ms),
            wrap=lambda exchange: InstrumentedExchange(exchange, telemetry, mode="live", system="mexc"),
            operator=trading if settings.operator_keys else None, operator_user=settings.sniper_user,
        )
        try:
            yield accounts
        finally:
            await accounts.aclose()

    @provide(scope=Scope.APP)
    def traders(self, settings: Settings, mode: TradingMode, store: EventStore) -> TraderDirectory:
        risk = dataclasses.replace(DEFAULT_RISK_PROFILE, live=mode is TradingMode.LIVE)
        fallback = InMemoryTraderDirectory([TraderSettings(user_id=settings.sniper_user, auto_snipe=False, risk=risk)])
        # Users who turned auto-snipe on through the API are served; SNIPER_USER keeps its defaults.
        return EventSourcedTraderDirectory(store, fallback=fallback, defaults_for_unknown=False)


class TradingProvider(Provider):
    scope = Scope.APP

    @provide
    def timing(self, settings: Settings) -> SnipeTiming:
        return settings.timing

    @provide
    def book(self) -> TradeBook:
        return TradeBook()

    @provide
    def portfolio(self, store: EventStore, market: MarketData) -> GetPortfolio:
        return GetPortfolio(store, market)

    sync_calendar = provide(SyncCalendar)
    @provide
    def create_target(
        self, store: EventStore, traders: TraderDirectory, scheduler: Scheduler, clock: Clock, timing: SnipeTiming,
        book: TradeBook, market: MarketData,
    ) -> CreateSnipeTarget:
        # The market states the pair's rules: an amount below its minimum order value is refused at creation.
        return CreateSnipeTarget(store, traders, scheduler, clock, timing, book, rules=market)

    reconcile = provide(ReconcileWithExchange)
    detect_ready = provide(DetectReadyStates)
    @provide
    def execute_snipe(
        self, store: EventStore, exchange: ExchangeTrading, market: MarketData, traders: TraderDirectory,
        locks: LockService, clock: Clock, book: TradeBook, timing: SnipeTiming, telemetry: Telemetry,
        accounts: ExchangeAccounts, roster: LaunchRoster,
    ) -> ExecuteSnipe:
        return ExecuteSnipe(store, exchange, market, traders, locks, clock, book, timing, telemetry, accounts,
                            roster=roster)

    @provide
    def manage_positions(
        self, store: EventStore, exchange: ExchangeTrading, clock: Clock, book: TradeBook, accounts: ExchangeAccounts,
        market: MarketData, notifier: Notifier,
    ) -> ManagePositions:
        # The market's pair rules round exits where the account cannot state them (paper fills);
        # missing coins and per-position errors go out as alerts.
        return ManagePositions(store, exchange, clock, book, accounts, market=market, notifier=notifier)

    @provide
    def activate_stop(
        self, store: EventStore, exchange: ExchangeTrading, clock: Clock, book: TradeBook, accounts: ExchangeAccounts
    ) -> ActivateEmergencyStop:
        # Cancels on the traders' own accounts too (per-user keys), not only on the operator's.
        return ActivateEmergencyStop(store, exchange, clock, book).with_accounts(accounts)

    clear_stop = provide(ClearEmergencyStop)


def history_container(settings: Settings) -> AsyncContainer:
    """Reads the trade history; never creates a database."""
    return make_async_container(StorageProvider(), context={Settings: settings, StoreAccess: StoreAccess.READ})


def paper_trading_container(settings: Settings, scenario: Scenario, clock: Clock) -> AsyncContainer:
    return make_async_container(
        StorageProvider(),
        PaperExchangeProvider(),
        CoordinationProvider(),
        TradingProvider(),
        ObservabilityProvider(),
        context={Settings: settings, StoreAccess: StoreAccess.WRITE, Scenario: scenario, Clock: clock},
    )


def mexc_trading_container(settings: Settings, mode: TradingMode, clock: Clock) -> AsyncContainer:
    """Manual snipes and checks against MEXC (or its fake): market data from MEXC, orders on
    MEXC only in LIVE mode."""
    return make_async_container(
        StorageProvider(),
        MexcProvider(),
        CoordinationProvider(),
        TradingProvider(),
        ObservabilityProvider(),
        context={Settings: settings, StoreAccess: StoreAccess.WRITE, Clock: clock, TradingMode: mode},
    )
