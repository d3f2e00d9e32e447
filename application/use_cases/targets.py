"""Creating a snipe target by hand (a trader's command or request), ready and scheduled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from application import repository
from application.errors import ApplicationError, NotFound
from application.ports import (
    Clock,
    EventStore,
    PairRules,
    ScheduledJob,
    Scheduler,
    SymbolRules,
    TraderDirectory,
    TraderSettings,
)
from application.pre_trade import known_pair_rules, standing_refusals, trade_proposal
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.listings import EXECUTE_SNIPE
from domain.errors import InvalidTransition, InvalidValue, RiskLimitExceeded
from domain.events import Cause
from domain.exit_plans import ExitPlan, resolve_exit_plan
from domain.listing import target_id_for
from domain.specifications import LaunchTiming, schedulable_launch
from domain.target import SnipeTarget, target_stream
from domain.values import Symbol, to_decimal

MANUAL_CONFIDENCE = Decimal(1)


class TargetAlreadyExists(ApplicationError):
    def __init__(self, target_id: str) -> None:
        super().__init__(f"a snipe target for this listing exists already: {target_id}")
        self.target_id = target_id


@dataclass(frozen=True, slots=True)
class NewSnipe:
    user_id: str
    symbol: Symbol
    launch_at: datetime
    quote_amount: Decimal
    exit_strategy: str | None = None  # None: the trader's default
    coin_id: str | None = None  # None: a manual listing id derived from symbol and launch
    live: bool | None = None  # None: as the trader's risk profile says, as for the targets the calendar creates
    max_entry_price: Decimal | None = None  # None: the trader's default cap (none: a market buy)


class CreateSnipeTarget:
    """A person names the pair, the amount and the launch: no calendar or state detection
    stands between, so the target is recorded ready (confidence 1) and scheduled at once.

    It is refused (RiskLimitExceeded) when it breaks a limit nothing before its launch can
    change (domain.risk.standing_limits: per-snipe amount, precision, quote asset, live allowed),
    including the pair's minimum order value when `rules` can state the pair's (unknown: the
    executor judges it before the send); and for a launch more than MAX_SCHEDULE_AHEAD away.
    The book's limits (concurrent positions, exposure, daily loss) are the executor's, at the
    launch: a trader at the position maximum today may schedule tomorrow's snipe."""

    def __init__(
        self, store: EventStore, traders: TraderDirectory, scheduler: Scheduler, clock: Clock, timing: SnipeTiming,
        book: TradeBook, rules: PairRules | None = None,
    ) -> None:
        self.store, self.traders, self.scheduler, self.clock, self.timing = store, traders, scheduler, clock, timing
        self.book, self.rules = book, rules

    async def __call__(self, request: NewSnipe) -> str:
        settings = await self.traders.settings_for(request.user_id)
        plan = resolve_exit_plan(request.exit_strategy or settings.exit_strategy, settings.custom_exit_plans)
        amount = to_decimal(request.quote_amount, "quote amount")
        if amount <= 0:
            raise InvalidValue(f"quote amount must be positive, got {amount}")
        if request.launch_at.tzinfo is None:
            raise InvalidValue("launch time must carry a time zone")
        now = self.clock.now()
        deadline = request.launch_at + self.timing.snipe_window
        if deadline <= now:
            raise InvalidValue(f"launch time {request.launch_at.isoformat()} is past its snipe window")
        for problem in schedulable_launch().unmet(LaunchTiming(request.launch_at, now)):
            raise InvalidValue(problem)
        live = settings.risk.live if request.live is None else request.live
        await _check_risk(self.store, self.book, settings, request.symbol, amount, plan, live, request.launch_at,
                          await known_pair_rules(self.rules, request.symbol))
        coin_id = request.coin_id or f"manual-{request.symbol.code}-{int(request.launch_at.timestamp() * 1000)}"
        target_id = target_id_for(request.user_id, coin_id)
        if await self.store.load(target_stream(target_id)):
            raise TargetAlreadyExists(target_id)
        cause = Cause(now, target_id)
        cap = request.max_entry_price if request.max_entry_price is not None else settings.max_entry_price
        target = SnipeTarget.create(
            target_id, request.user_id, coin_id, request.symbol, request.launch_at, amount, plan, MANUAL_CONFIDENCE,
            live, cause, cap,
        )
        target.mark_ready("manual", MANUAL_CONFIDENCE, int((request.launch_at - now).total_seconds()), cause)
        target.schedule(request.launch_at, deadline, cause)
        await repository.save(self.store, target)
        run_at = request.launch_at - self.timing.prepare_ahead
        await self.scheduler.schedule(ScheduledJob(EXECUTE_SNIPE, target_id, run_at))
        return target_id


async def _check_risk(
    store: EventStore, book: TradeBook, settings: TraderSettings, symbol: Symbol, amount: Decimal, plan: ExitPlan,
    live: bool, launch_at: datetime, rules: SymbolRules | None,
) -> None:
    """Raise RiskLimitExceeded naming every limit the buy breaks whatever the book holds at its
    launch (standing_refusals); the book's own limits (positions, exposure, daily loss) are
    judged at the launch, on the book as it stands then."""
    await book.catch_up(store)
    proposal = trade_proposal(
        book, settings, quote_amount=amount, quote_asset=symbol.quote, exit_plan=plan,
        day=launch_at.astimezone(UTC).date(), rules=rules,
    )
    reasons = standing_refusals(proposal, live=live, settings=settings)
    if reasons:
        raise RiskLimitExceeded(reasons)


async def _own_target(store: EventStore, user_id: str, target_id: str) -> SnipeTarget:
    """The user's target; another user's target is as unknown as a missing one."""
    target = await repository.find(store, SnipeTarget, target_stream(target_id))
    if target is None or target.user_id != user_id:
        raise NotFound(f"unknown target id: {target_id}")
    return target


@dataclass(frozen=True, slots=True)
class SnipeAmendment:
    user_id: str
    target_id: str
    quote_amount: Decimal | None = None  # None: unchanged
    exit_strategy: str | None = None  # None: unchanged
    max_entry_price: Decimal | None = None  # None: unchanged (see `clear_max_entry_price`)
    clear_max_entry_price: bool = False  # True: the target drops its cap (a market buy)


class UpdateSnipeTarget:
    """Change the amount, exit strategy or entry price cap of one of the user's targets before its
    order is sent; the amended target is checked against the risk limits as a new one is
    (CreateSnipeTarget)."""

    def __init__(
        self, store: EventStore, traders: TraderDirectory, clock: Clock, book: TradeBook, rules: PairRules | None = None
    ) -> None:
        self.store, self.traders, self.clock, self.book, self.rules = store, traders, clock, book, rules

    async def __call__(self, request: SnipeAmendment) -> None:
        target = await _own_target(self.store, request.user_id, request.target_id)
        if target.exit_plan is None or target.symbol is None or target.launch_at is None:  # creation sets them
            raise InvalidTransition(f"snipe target {target.target_id}", target.status.value, "be amended uncreated")
        settings = await self.traders.settings_for(request.user_id)
        plan = target.exit_plan
        if request.exit_strategy is not None:
            plan = resolve_exit_plan(request.exit_strategy, settings.custom_exit_plans)
        amount = (target.quote_amount if request.quote_amount is None
                  else to_decimal(request.quote_amount, "quote amount"))
        cap = None if request.clear_max_entry_price else (
            request.max_entry_price if request.max_entry_price is not None else target.max_entry_price)
        cause = Cause(self.clock.now(), request.target_id)
        # First: a target already sent is a conflict, not a risk.
        target.amend(amount, plan, request.user_id, cause, max_entry_price=cap)
        await _check_risk(self.store, self.book, settings, target.symbol, amount, plan, target.live, target.launch_at,
                          await known_pair_rules(self.rules, target.symbol))
        await repository.save(self.store, target)


class CancelSnipeTarget:
    """Cancel one of the user's targets before its order is sent; its timed snipe is dropped."""

    def __init__(self, store: EventStore, scheduler: Scheduler, clock: Clock) -> None:
        self.store, self.scheduler, self.clock = store, scheduler, clock

    async def __call__(self, user_id: str, target_id: str, reason: str = "cancelled by the trader") -> None:
        target = await _own_target(self.store, user_id, target_id)
        target.cancel(reason, user_id, Cause(self.clock.now(), target_id))
        await repository.save(self.store, target)
        await self.scheduler.cancel(EXECUTE_SNIPE, target_id)
