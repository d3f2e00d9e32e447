"""A buy's fill is recorded without waiting for the budget of its fee lookup (issue 14), against the fake
exchange in real time on 127.0.0.1.

Fifty traders of one IP filling in the same ten seconds spend MEXC's myTrades budget whole (50 x weight
10 = 500): a fill held back until its fee could be read opened its position up to ~12 s late, its exits
blind in the listing's wildest seconds. Now the snipe records the fill and opens the position at once
with the fee unknown, then learns the fee when budget frees and records it once (EntryFeeLearnt), the
position's quantity adjusted as a fee known at the fill would have had it; what a stopped worker left
unknown, the reconciliation learns.

The IP's budget here runs on a clock the test moves: spent, it frees only when the test says so, so the
order of things is shown by what is recorded while it is spent, not by timing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.clock import SystemClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryLockService, InMemoryTraderDirectory
from adapters.mexc.exchange import MexcExchange
from adapters.mexc.limits import RateLimiter, scope_of
from adapters.mexc.rest import MexcRestClient
from application import repository
from application.ports import PriceTick, TraderSettings
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.positions import ManagePositions
from application.use_cases.reconcile import ReconcileWithExchange
from application.use_cases.snipe import ExecuteSnipe, SnipeOutcome, SnipeResult
from domain.events import Cause, DustWrittenOff, EntryFeeLearnt, PositionOpened, SnipeOrderFilled, StopLossHit
from domain.exit_plans import PRESETS
from domain.position import Position, PositionStatus, position_id_for, position_stream
from domain.target import SnipeTarget, target_stream
from tests.fakes.mexc_http import MY_TRADES, FakeMexcServer, Fault, FaultKind
from tests.mexc.support import NEW, client_for, new_symbol
from tests.mexc.test_exit_fees import BOUGHT, FEE

TARGET_ID = "t-late-fee"
PID = position_id_for(TARGET_ID)
WINDOW = 1.0
SPENT_BUDGET = {MY_TRADES: (40, WINDOW)}  # the IP's myTrades budget: four lookups a window


class MovedClock:
    """The IP limiter's monotonic clock: it moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Worker:
    """One worker process's pieces over the shared store: its exchange (its own client), book and use cases."""

    exchange: MexcExchange
    store: InMemoryEventStore
    clock: SystemClock
    book: TradeBook

    def snipe(self) -> ExecuteSnipe:
        return ExecuteSnipe(self.store, self.exchange, self.exchange, InMemoryTraderDirectory([TraderSettings("u1")]),
                            InMemoryLockService(self.clock), self.clock, self.book,
                            SnipeTiming(retry_interval=timedelta(milliseconds=10)))

    def manage(self) -> ManagePositions:
        return ManagePositions(self.store, self.exchange, self.clock, self.book)

    def reconcile(self) -> ReconcileWithExchange:
        return ReconcileWithExchange(self.store, self.exchange, self.snipe(), self.manage(), self.clock, self.book)

    async def position(self) -> Position:
        return await repository.get(self.store, Position, position_stream(PID))

    async def position_events(self) -> list[object]:
        return [r.event for r in await self.store.load(position_stream(PID))]


async def schedule(store: InMemoryEventStore, clock: SystemClock) -> None:
    """u1 snipes 10 USDT of NEW, now."""
    now = clock.now()
    target = SnipeTarget.create(TARGET_ID, "u1", "c", NEW, now, Decimal("10"), PRESETS["balanced"], Decimal("0.9"),
                                False, Cause(now, "x"))
    target.mark_ready("r", Decimal("0.9"), 60, Cause(now, "x"))
    target.schedule(now, now + timedelta(seconds=5), Cause(now, "x"))
    await repository.save(store, target)


async def until_opened(store: InMemoryEventStore, snipe: asyncio.Future[SnipeOutcome]) -> None:
    """Wait for the position to be recorded (bounded: before the fix it never was while the budget was spent)."""
    async with asyncio.timeout(10):
        while not await store.load(position_stream(PID)):
            assert not snipe.done(), snipe.result()
            await asyncio.sleep(0.005)


@pytest.fixture
async def server() -> AsyncIterator[FakeMexcServer]:
    async with FakeMexcServer(symbols=[new_symbol()], charge_fees=True) as fake:
        yield fake


@pytest.fixture
async def spent(server: FakeMexcServer) -> AsyncIterator[tuple[MexcRestClient, MovedClock]]:
    """A trader's client whose IP's myTrades budget the other traders of the launch have spent."""
    moved = MovedClock()
    ip = RateLimiter(SPENT_BUDGET, scope=scope_of(server.base_url), clock=moved, margin=0.0)
    ip.budget(MY_TRADES).take(40, moved())
    async with client_for(server, ip_limiter=ip) as client:
        yield client, moved


async def test_the_fill_opens_the_position_at_once_and_its_fee_is_recorded_once_when_budget_frees(
    server: FakeMexcServer, spent: tuple[MexcRestClient, MovedClock],
) -> None:
    client, moved = spent
    worker = Worker(MexcExchange(client, clock_samples=1), InMemoryEventStore(), SystemClock(), TradeBook())
    await schedule(worker.store, worker.clock)
    snipe = asyncio.ensure_future(worker.snipe()(TARGET_ID))
    await until_opened(worker.store, snipe)

    # Recorded while the budget is still spent: the fill, with its fee unknown, and the position,
    # open and in the book the exits follow; no fee lookup has gone out.
    opened = await worker.position()
    assert (opened.remaining, opened.entry_fee_known, opened.status) == (BOUGHT, False, PositionStatus.OPEN)
    [fill] = [r.event for r in await worker.store.load(target_stream(TARGET_ID))
              if isinstance(r.event, SnipeOrderFilled)]
    assert (fill.quantity, fill.fee, fill.fee_asset) == (BOUGHT, 0, "")
    assert [p.position_id for p in worker.book.open_positions(symbol=NEW.code)] == [PID]
    assert server.hits[MY_TRADES] == 0
    assert not snipe.done()  # the snipe goes on: it waits for budget to learn the fee

    moved.now += WINDOW  # the window moves on: the spent budget frees
    async with asyncio.timeout(10):
        outcome = await snipe

    assert outcome.result is SnipeResult.FILLED and outcome.fee_late
    assert outcome.fill is not None and outcome.fill.fee_asset == ""  # what was recorded at the fill
    events = await worker.position_events()
    assert [type(e) for e in events] == [PositionOpened, EntryFeeLearnt]
    assert events[1] == EntryFeeLearnt(PID, FEE, "NEW", FEE, Decimal(0), Decimal(0))
    position = await worker.position()
    assert position.remaining == position.quantity == BOUGHT - FEE == server.balances["NEW"]
    assert server.hits[MY_TRADES] == 1

    # Recorded once: the reconciliation finds nothing left to learn, and asks nothing.
    report = await worker.reconcile()()
    assert (report.entry_fees_learnt, report.entry_fees_unknown) == ([], [])
    assert len(await worker.position_events()) == 2 and server.hits[MY_TRADES] == 1
    await worker.book.catch_up(worker.store)
    view = worker.book.positions[PID]
    assert (view.quantity, view.remaining, view.cost) == (BOUGHT - FEE, BOUGHT - FEE, position.total_cost)


async def test_a_worker_stopped_before_learning_the_fee_leaves_it_to_the_reconciliation_after_restart(
    server: FakeMexcServer, spent: tuple[MexcRestClient, MovedClock],
) -> None:
    client, _ = spent
    store, clock = InMemoryEventStore(), SystemClock()
    first = Worker(MexcExchange(client, clock_samples=1), store, clock, TradeBook())
    await schedule(store, clock)
    snipe = asyncio.ensure_future(first.snipe()(TARGET_ID))
    await until_opened(store, snipe)
    snipe.cancel()  # the worker stops while its snipe waits for budget to learn the fee
    with pytest.raises(asyncio.CancelledError):
        await snipe
    assert not (await first.position()).entry_fee_known

    # The restarted worker: its own client (the IP's budget free again), book and use cases.
    async with client_for(server, ip_limiter=RateLimiter(scope=scope_of(server.base_url))) as fresh:
        second = Worker(MexcExchange(fresh, clock_samples=1), store, clock, TradeBook())
        report = await second.reconcile()()
        again = await second.reconcile()()

    assert report.entry_fees_learnt == [PID] and report.entry_fees_unknown == [] and report.clean
    assert again.entry_fees_learnt == []
    position = await second.position()
    assert position.remaining == BOUGHT - FEE == server.balances["NEW"]
    assert [type(e) for e in await second.position_events()] == [PositionOpened, EntryFeeLearnt]
    assert server.hits[MY_TRADES] == 1


async def test_a_position_sold_before_its_fee_was_learnt_keeps_what_its_exit_recorded(
    server: FakeMexcServer,
) -> None:
    """The stop-loss sold what the account held (the fee unknown, it read the balance) and wrote the rest
    off: the fee learnt after changes neither its coins nor its P&L, and is recorded for the record."""
    async with client_for(server, read_attempts=1) as client:
        worker = Worker(MexcExchange(client, clock_samples=1), InMemoryEventStore(), SystemClock(), TradeBook())
        server.inject(Fault(FaultKind.ERROR_CODE, MY_TRADES, times=1000, status=400, code=700007, message="no"))
        await schedule(worker.store, worker.clock)
        outcome = await worker.snipe()(TARGET_ID)
        assert outcome.result is SnipeResult.FILLED and not outcome.fee_late
        server.symbols["NEWUSDT"].price = Decimal("0.2")
        await worker.manage().on_tick(PriceTick(NEW, Decimal("0.2"), worker.clock.now()))
        server.clear_faults()
        sold = await worker.position()
        assert sold.status is PositionStatus.CLOSED and not sold.entry_fee_known

        report = await worker.reconcile()()

    assert report.entry_fees_learnt == [PID]
    position = await worker.position()
    assert (position.quantity, position.total_cost, position.realised_pnl) == (
        sold.quantity, sold.total_cost, sold.realised_pnl)
    events = await worker.position_events()
    [hit] = [e for e in events if isinstance(e, StopLossHit)]
    [dust] = [e for e in events if isinstance(e, DustWrittenOff)]
    assert hit.quantity + dust.quantity == BOUGHT
    assert events[-1] == EntryFeeLearnt(PID, FEE, "NEW", Decimal(0), Decimal(0), Decimal(0))
