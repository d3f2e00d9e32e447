"""The API's dependencies (dishka): the event store and coordination of the shared providers,
plus what only the API needs. Embedded default: SQLite (or memory://) and in-process twins;
production: Postgres and Redis. Identity verification and the credential vault/checker come
in through the container's context, so `sniper serve` and the tests choose them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from dishka import AsyncContainer, Provider, Scope, make_async_container, provide
from dishka.integrations.litestar import LitestarProvider
from litestar import Request

from adapters.eventstore.sqlalchemy_store import SqlEventStore
from adapters.projections import InMemoryReadModels, SqlProjector, SqlReadModels
from application.credentials import (
    CredentialChecker,
    CredentialVault,
    DeleteCredentials,
    GetCredentialSummary,
    StoreCredentials,
    TestCredentials,
)
from application.errors import ExchangeError
from application.identity import Identity, IdentityVerifier
from application.pair_rules import SharedPairRules
from application.ports import (
    Cache,
    Clock,
    EventStore,
    ExchangeTrading,
    OrderReport,
    ReadModels,
    Scheduler,
    TraderDirectory,
    WallClock,
)
from application.telegram import IssueTelegramLinkCode, TelegramCommands, UnlinkTelegram
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.trader_directory import EventSourcedTraderDirectory
from application.use_cases.positions import ClosePosition
from application.use_cases.queries import (
    GetBalances,
    GetTraderStatus,
    GetUserAuditTrail,
    GetUserPortfolio,
    GetUserTargetHistory,
    ListListings,
)
from application.use_cases.safety import ActivateEmergencyStop, ClearEmergencyStop
from application.use_cases.settings import ChangeTraderSettings, GetTraderSettings
from application.use_cases.strategies import DeleteExitStrategy, GetExitStrategy, ListExitStrategies, SaveExitStrategy
from application.use_cases.targets import CancelSnipeTarget, CreateSnipeTarget, UpdateSnipeTarget
from entrypoints.config import Settings
from entrypoints.container import CoordinationProvider, RedisHandle, StorageProvider, StoreAccess
from entrypoints.http.auth import SignInFlow
from entrypoints.http.cache import CachedReadModels
from entrypoints.http.runtime import ReadinessProbe, ReadModelRefresh
from entrypoints.observability import ObservabilityProvider
from entrypoints.telegram import TelegramBotProfile


class NoExchangeSession:
    """The API process holds no exchange session: an emergency stop it records has no open
    orders to cancel here; the worker, which holds the orders, acts on the recorded halt."""

    async def open_orders(self, symbol=None) -> list[OrderReport]:  # noqa: ANN001
        return []

    async def cancel_order(self, symbol, client_order_id) -> OrderReport | None:  # noqa: ANN001
        raise ExchangeError("the API holds no exchange session")


class SecurityProvider(Provider):
    """Who the caller is and where credentials live: Kinde (or the development identity, never
    in production), the sealed vault on the event store's database, MEXC's read-only check."""

    @provide(scope=Scope.APP)
    async def verifier(self, settings: Settings, clock: Clock) -> AsyncIterator[IdentityVerifier]:
        from entrypoints.keys import identity_verifier

        verifier = identity_verifier(settings, clock)
        try:
            yield verifier
        finally:
            close = getattr(verifier, "aclose", None)
            if close is not None:
                await close()

    @provide(scope=Scope.APP)
    def vault(self, settings: Settings, store: EventStore) -> CredentialVault:
        from entrypoints.keys import credential_vault

        return credential_vault(settings, store.engine if isinstance(store, SqlEventStore) else None)

    @provide(scope=Scope.APP)
    def sign_in(self, settings: Settings, verifier: IdentityVerifier) -> SignInFlow:
        from entrypoints.keys import kinde_sign_in

        return SignInFlow(kinde_sign_in(settings, verifier))

    @provide(scope=Scope.APP)
    async def checker(self, settings: Settings) -> AsyncIterator[CredentialChecker]:
        from entrypoints.keys import credential_checker

        checker = credential_checker(settings)
        try:
            yield checker
        finally:
            close = getattr(checker, "aclose", None)
            if close is not None:
                await close()


class HttpProvider(Provider):

    @provide(scope=Scope.REQUEST)
    def identity(self, request: Request) -> Identity:
        """The caller, as the authentication middleware verified it."""
        user = request.scope.get("user")
        if not isinstance(user, Identity):
            raise RuntimeError("route reached without authentication")
        return user

    # --- read side -------------------------------------------------------------------------

    @provide(scope=Scope.APP)
    def projector(self, store: EventStore) -> SqlProjector | None:
        return SqlProjector(store.engine) if isinstance(store, SqlEventStore) else None

    @provide(scope=Scope.APP)
    def cached_read_models(self, store: EventStore) -> CachedReadModels | None:
        return CachedReadModels(SqlReadModels(store.engine)) if isinstance(store, SqlEventStore) else None

    @provide(scope=Scope.APP)
    def read_models(self, store: EventStore, cached: CachedReadModels | None) -> ReadModels:
        # memory:// folds in process on each read (cheap, never behind); SQL answers are kept.
        return cached if cached is not None else InMemoryReadModels(store)

    @provide(scope=Scope.APP)
    def refresh(self, projector: SqlProjector | None, cached: CachedReadModels | None) -> ReadModelRefresh:
        return ReadModelRefresh(projector, cached)

    @provide(scope=Scope.APP)
    def readiness(self, store: EventStore, redis: RedisHandle) -> ReadinessProbe:
        return ReadinessProbe(store.engine if isinstance(store, SqlEventStore) else None, redis.client)

    @provide(scope=Scope.APP)
    def book(self) -> TradeBook:
        return TradeBook()

    @provide(scope=Scope.APP)
    def traders(self, store: EventStore) -> TraderDirectory:
        return EventSourcedTraderDirectory(store)

    @provide(scope=Scope.APP)
    def exchange(self) -> ExchangeTrading:
        return NoExchangeSession()  # type: ignore[return-value]

    @provide(scope=Scope.APP)
    def timing(self, settings: Settings) -> SnipeTiming:
        return settings.timing

    # --- use cases (stateless: one each for the process) -----------------------------------

    portfolio = provide(GetUserPortfolio, scope=Scope.APP)
    target_history = provide(GetUserTargetHistory, scope=Scope.APP)
    audit_trail = provide(GetUserAuditTrail, scope=Scope.APP)
    listings = provide(ListListings, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def pair_rules(self, cache: Cache) -> SharedPairRules:
        return SharedPairRules(cache)

    @provide(scope=Scope.APP)
    def create_target(
        self, store: EventStore, traders: TraderDirectory, scheduler: Scheduler, clock: Clock, timing: SnipeTiming,
        book: TradeBook, rules: SharedPairRules,
    ) -> CreateSnipeTarget:
        # No exchange at hand here (NoExchangeSession): the pair's minimum order value is known when
        # a worker read the pair's rules and shared them (SharedPairRules); else the launch judges it.
        return CreateSnipeTarget(store, traders, scheduler, clock, timing, book, rules=rules)

    @provide(scope=Scope.APP)
    def update_target(
        self, store: EventStore, traders: TraderDirectory, clock: Clock, book: TradeBook, rules: SharedPairRules,
    ) -> UpdateSnipeTarget:
        return UpdateSnipeTarget(store, traders, clock, book, rules=rules)

    cancel_target = provide(CancelSnipeTarget, scope=Scope.APP)
    get_settings = provide(GetTraderSettings, scope=Scope.APP)
    change_settings = provide(ChangeTraderSettings, scope=Scope.APP)
    list_strategies = provide(ListExitStrategies, scope=Scope.APP)
    get_strategy = provide(GetExitStrategy, scope=Scope.APP)
    save_strategy = provide(SaveExitStrategy, scope=Scope.APP)
    delete_strategy = provide(DeleteExitStrategy, scope=Scope.APP)
    activate_stop = provide(ActivateEmergencyStop, scope=Scope.APP)
    clear_stop = provide(ClearEmergencyStop, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def store_credentials(self, vault: CredentialVault, store: EventStore, clock: Clock) -> StoreCredentials:
        return StoreCredentials(vault, store, clock)

    @provide(scope=Scope.APP)
    def delete_credentials(self, vault: CredentialVault, store: EventStore, clock: Clock) -> DeleteCredentials:
        return DeleteCredentials(vault, store, clock)

    credential_summary = provide(GetCredentialSummary, scope=Scope.APP)
    test_credentials = provide(TestCredentials, scope=Scope.APP)
    telegram_link_code = provide(IssueTelegramLinkCode, scope=Scope.APP)
    telegram_unlink = provide(UnlinkTelegram, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def telegram_bot(self, settings: Settings) -> TelegramBotProfile:
        return TelegramBotProfile(settings)

    @provide(scope=Scope.APP)
    def telegram_commands(
        self, store: EventStore, clock: Clock, read_models: ReadModels, refresh: ReadModelRefresh,
        activate: ActivateEmergencyStop, clear: ClearEmergencyStop, close: ClosePosition, balances: GetBalances,
        status: GetTraderStatus, wall: WallClock,
    ) -> TelegramCommands:
        # The webhook mode's commands: the API's own use cases (entrypoints/http/telegram_routes.py).
        return TelegramCommands(store, clock, read_models, activate, clear, refresh=refresh, close=close,
                                balances=balances, status=status, wall=wall)


def http_container(
    settings: Settings, clock: Clock, security: Provider | None = None, trading: Provider | None = None
) -> AsyncContainer:
    """The container `create_app` runs on. The store is created if the database is new and
    empty (the embedded default on a fresh laptop); an outdated schema is refused. `security`
    replaces SecurityProvider (tests give fakes of the verifier, vault and checker); `trading`
    replaces ApiTradingProvider (the market and accounts a close by hand sells on, e.g. a replay's)."""
    from entrypoints.http.notifications import NotificationProvider
    from entrypoints.http.trading import ApiTradingProvider

    return make_async_container(
        StorageProvider(),
        CoordinationProvider(),
        HttpProvider(),
        security or SecurityProvider(),
        trading or ApiTradingProvider(),
        NotificationProvider(),
        ObservabilityProvider(),
        LitestarProvider(),
        context={Settings: settings, StoreAccess: StoreAccess.WRITE, Clock: clock},
    )

