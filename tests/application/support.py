"""A small in-process world for the use-case tests: paper exchange, virtual clock, memory store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from adapters.clock import ManualClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryLockService, InMemoryScheduler, InMemoryTraderDirectory
from adapters.paper.exchange import PaperExchange
from adapters.paper.scenario import Scenario
from application import repository
from application.ports import TraderSettings
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.listings import DetectReadyStates, SyncCalendar
from application.use_cases.positions import ManagePositions
from application.use_cases.safety import ActivateEmergencyStop, ClearEmergencyStop
from application.use_cases.snipe import ExecuteSnipe
from domain.events import Cause, Recorded
from domain.exit_plans import PRESETS
from domain.listing import target_id_for
from domain.position import position_id_for
from domain.risk import DEFAULT_RISK_PROFILE, RiskProfile
from domain.target import SnipeTarget, snipe_client_order_id, target_stream
from domain.values import ClientOrderId, Symbol
from tests.adapters.paper_support import LAUNCH, build_scenario

NEW = Symbol("NEW", "USDT")
COIN = "new-1"
DEADLINE = LAUNCH + SnipeTiming().snipe_window


def live_profile() -> RiskProfile:
    p = DEFAULT_RISK_PROFILE
    return RiskProfile(
        p.max_quote_per_snipe, p.max_concurrent_positions, p.max_daily_loss, p.max_total_exposure, live=True
    )


@dataclass
class World:
    scenario: Scenario
    clock: ManualClock
    store: InMemoryEventStore = field(default_factory=InMemoryEventStore)
    timing: SnipeTiming = field(default_factory=SnipeTiming)
    book: TradeBook = field(default_factory=TradeBook)
    scheduler: InMemoryScheduler = field(default_factory=InMemoryScheduler)

    def __post_init__(self) -> None:
        self.paper = PaperExchange(self.scenario, self.clock)
        self.traders = InMemoryTraderDirectory(self.scenario.trader_settings())
        self.locks = InMemoryLockService(self.clock)

    # --- use cases -----------------------------------------------------------------------

    def execute_snipe(self) -> ExecuteSnipe:
        return ExecuteSnipe(
            self.store, self.paper, self.paper, self.traders, self.locks, self.clock, self.book, self.timing
        )

    def manage(self) -> ManagePositions:
        return ManagePositions(self.store, self.paper, self.clock, self.book)

    def sync_calendar(self, book: TradeBook | None = None) -> SyncCalendar:
        return SyncCalendar(self.store, self.paper, self.traders, self.clock, book or self.book)

    def detect_ready(self) -> DetectReadyStates:
        return DetectReadyStates(
            self.store, self.paper, self.traders, self.scheduler, self.clock, self.book, self.timing
        )

    def emergency_stop(self) -> ActivateEmergencyStop:
        return ActivateEmergencyStop(self.store, self.paper, self.clock, self.book)

    def clear_stop(self) -> ClearEmergencyStop:
        return ClearEmergencyStop(self.store, self.clock, self.book)

    # --- arranging -----------------------------------------------------------------------

    async def scheduled_target(
        self,
        user_id: str = "alice",
        quote_amount: Decimal = Decimal("10"),
        live: bool = False,
        plan: str = "balanced",
        execute_at: datetime = LAUNCH,
        deadline_at: datetime = DEADLINE,
    ) -> str:
        """A target for the scenario's NEW listing, recorded straight to `scheduled`."""
        target_id = target_id_for(user_id, COIN)
        cause = Cause(self.clock.now(), target_id)
        target = SnipeTarget.create(
            target_id, user_id, COIN, NEW, LAUNCH, quote_amount, PRESETS[plan], Decimal("0.20"), live, cause
        )
        target.mark_ready("ready", Decimal("0.95"), 1800, cause)
        target.schedule(execute_at, deadline_at, cause)
        await repository.save(self.store, target)
        return target_id

    async def leave_executing(self, target_id: str) -> None:
        """What a crash between 'order submitted' and the reply leaves behind: the crashed run
        held the snipe's lease (gone now), so the lock service knows of an earlier holder, and
        recorded that lease with its submission, as ExecuteSnipe does."""
        async with self.locks.lease(f"snipe:{target_id}", self.timing.lease_ttl) as held:
            assert held is not None
        target = await self.target(target_id)
        target.submit_order(Cause(self.clock.now(), target_id), held.token, held.epoch)
        await repository.save(self.store, target)

    async def target(self, target_id: str) -> SnipeTarget:
        return await repository.get(self.store, SnipeTarget, target_stream(target_id))

    async def events(self, stream_id: str) -> list[str]:
        return [r.event.type_name for r in await self.store.load(stream_id)]

    async def all_events(self) -> list[Recorded]:
        return await self.store.read_all()

    def order_calls(self) -> list[str]:
        return [c for c in self.paper.calls if c.split()[0] in ("buy", "sell")]


def coid_of(target_id: str) -> ClientOrderId:
    return snipe_client_order_id(target_id)


def world_at(moment: datetime, *, traders: list[TraderSettings] | None = None, timing: SnipeTiming | None = None,
             **scenario: Any) -> World:
    world = World(build_scenario(**scenario), ManualClock(moment), timing=timing or SnipeTiming())
    for settings in traders or ():
        world.traders.put(settings)
    return world


def before_launch(seconds: float = 2) -> datetime:
    return LAUNCH - timedelta(seconds=seconds)


async def filled_position(moment: datetime) -> tuple[World, str]:
    """A world whose target was sniped at launch (20 NEW at 0.5), its clock now at `moment` and
    the exchange's calls so far forgotten; and the position's id."""
    world = world_at(before_launch())
    tid = await world.scheduled_target()
    outcome = await world.execute_snipe()(tid)
    assert outcome.fill is not None
    assert (outcome.fill.executed_quantity, outcome.fill.average_price) == (Decimal("20.00"), Decimal("0.5"))
    world.clock.set(moment)
    world.paper.calls.clear()
    return world, position_id_for(tid)
