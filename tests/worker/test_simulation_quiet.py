"""The simulation agent's backtest holds the GIL for about a second, so it waits while a snipe is
near: in flight here, due in this worker's scheduler, or scheduled or executing anywhere (the
trade history: in SAQ mode whichever worker takes the snipe job runs it, this one included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from adapters.clock import ManualClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryScheduler
from application import repository
from application.ports import ScheduledJob
from application.trade_book import TradeBook
from application.use_cases.listings import EXECUTE_SNIPE
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.target import SnipeTarget
from domain.values import Symbol
from entrypoints.worker import snipe_near

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def scheduled_elsewhere(store: InMemoryEventStore, execute_in: timedelta, tid: str = "t-1") -> SnipeTarget:
    """A target another worker scheduled: only the trade history knows it."""
    launch = NOW + execute_in
    cause = Cause(NOW, f"corr-{tid}")
    target = SnipeTarget.create(tid, "alice", "coin-1", Symbol("NEW", "USDT"), launch, Decimal("10"),
                                PRESETS["balanced"], Decimal("0.9"), False, cause)
    target.mark_ready("sts2-st2-tt4", Decimal("0.95"), 7200, cause)
    target.schedule(launch, launch + timedelta(seconds=30), cause)
    await repository.save(store, target)
    return target


async def near(store: InMemoryEventStore, scheduler: InMemoryScheduler | None = None, in_flight: int = 0) -> bool:
    return await snipe_near(store, TradeBook(), scheduler or InMemoryScheduler(), ManualClock(NOW), lambda: in_flight)


async def test_nothing_scheduled_anywhere_lets_the_backtest_run() -> None:
    assert await near(InMemoryEventStore()) is False


async def test_a_snipe_in_flight_here_defers_it() -> None:
    assert await near(InMemoryEventStore(), in_flight=1) is True


async def test_a_job_due_soon_in_this_worker_defers_it() -> None:
    scheduler = InMemoryScheduler()
    await scheduler.schedule(ScheduledJob(EXECUTE_SNIPE, "t-9", NOW + timedelta(seconds=90)))
    assert await near(InMemoryEventStore(), scheduler) is True


async def test_a_snipe_another_worker_scheduled_defers_it_only_when_near() -> None:
    soon, later = InMemoryEventStore(), InMemoryEventStore()
    await scheduled_elsewhere(soon, timedelta(seconds=90))
    await scheduled_elsewhere(later, timedelta(minutes=10))
    assert await near(soon) is True
    assert await near(later) is False


async def test_a_snipe_executing_anywhere_defers_it() -> None:
    store = InMemoryEventStore()
    target = await scheduled_elsewhere(store, timedelta(hours=1))
    target.submit_order(Cause(NOW, "corr"))
    await repository.save(store, target)
    assert await near(store) is True
