"""Start-up reconciliation: every order we may have sent is resolved before trading."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from application import repository
from application.ports import OrderReport, OrderSide, OrderStatus
from application.use_cases.positions import ManagePositions
from application.use_cases.reconcile import ReconcileWithExchange
from application.use_cases.snipe import SnipeResult
from domain.events import Cause
from domain.position import Position, position_id_for, position_stream
from domain.target import TargetStatus, target_stream
from domain.values import ClientOrderId
from tests.adapters.paper_support import LAUNCH
from tests.application.support import NEW, World, before_launch, coid_of, world_at


def reconcile(world: World, exchange=None) -> ReconcileWithExchange:  # noqa: ANN001
    return ReconcileWithExchange(world.store, exchange or world.paper, world.execute_snipe(), world.manage(),
                                 world.clock, world.book)


async def exit_sent_unrecorded() -> tuple[World, str]:
    """A filled snipe's position, a minute after launch, with an exit recorded as submitted and
    sold on the exchange, its fill not recorded yet (as when the worker died meanwhile)."""
    world = world_at(before_launch())
    tid = await world.scheduled_target()
    assert (await world.execute_snipe()(tid)).result is SnipeResult.FILLED
    pid = position_id_for(tid)
    position = await repository.get(world.store, Position, position_stream(pid))
    world.clock.set(LAUNCH + timedelta(seconds=60))
    decision = position.decide_exit(Decimal("0.4"), world.clock.now())
    assert decision is not None
    coid = position.submit_exit(decision, Cause(world.clock.now(), tid))
    await repository.save(world.store, position)
    await world.paper.place_market_sell(NEW, decision.quantity, coid)
    return world, pid


async def test_a_snipe_sent_before_a_crash_is_recorded_as_filled_without_a_second_order() -> None:
    world = world_at(before_launch())
    tid = await world.scheduled_target()
    await world.leave_executing(tid)
    world.clock.set(LAUNCH + timedelta(seconds=1))
    await world.paper.place_market_buy(NEW, Decimal("10"), coid_of(tid))  # sent, then the worker died
    world.clock.set(LAUNCH + timedelta(minutes=5))  # restarted long after the window

    report = await reconcile(world)()

    assert [o.result for o in report.snipes] == [SnipeResult.FILLED]
    assert (await world.target(tid)).status is TargetStatus.FILLED
    assert await world.store.load(position_stream(position_id_for(tid)))
    assert len(world.paper.orders) == 1
    assert report.clean


async def test_a_snipe_that_never_left_is_failed_after_its_window_and_nothing_is_sent() -> None:
    world = world_at(before_launch())
    tid = await world.scheduled_target()
    await world.leave_executing(tid)
    world.clock.set(LAUNCH + timedelta(minutes=5))

    report = await reconcile(world)()

    assert [o.result for o in report.snipes] == [SnipeResult.FAILED]
    assert (await world.target(tid)).status is TargetStatus.FAILED
    assert world.paper.orders == []
    assert "SnipeFailed" in await world.events(target_stream(tid))


async def test_a_pending_exit_that_filled_is_recorded() -> None:
    world, pid = await exit_sent_unrecorded()

    report = await reconcile(world)()

    assert report.exits_settled == [pid]
    rebuilt = await repository.get(world.store, Position, position_stream(pid))
    assert rebuilt.status.value == "closed" and rebuilt.pending_exit is None


class _ExchangeWithAStrangeOrder:
    def __init__(self, paper, order: OrderReport) -> None:  # noqa: ANN001
        self.paper, self.order = paper, order

    def __getattr__(self, name):  # noqa: ANN001, ANN204
        return getattr(self.paper, name)

    async def open_orders(self, symbol=None):  # noqa: ANN001, ANN201
        return [self.order]


async def test_an_open_order_that_is_not_ours_is_reported_not_touched() -> None:
    world = world_at(before_launch())
    stranger = OrderReport(NEW, ClientOrderId("web-order-1"), "x-1", OrderSide.BUY, OrderStatus.NEW,
                           Decimal(0), Decimal(0), Decimal(0))
    exchange = _ExchangeWithAStrangeOrder(world.paper, stranger)

    report = await reconcile(world, exchange)()

    assert report.unaccounted_orders == [stranger]
    assert not report.clean
    assert not [c for c in world.paper.calls if c.startswith("cancel")]


class _ExchangeTheTickBeats:
    """The paper exchange, with the risk manager's round settling the same pending exit while
    reconciliation waits for its answer to the order query (the race seen in a worker replay)."""

    def __init__(self, paper, other_round) -> None:  # noqa: ANN001
        self.paper, self.other_round = paper, other_round

    def __getattr__(self, name):  # noqa: ANN001, ANN204
        return getattr(self.paper, name)

    async def query_order(self, symbol, client_order_id):  # noqa: ANN001, ANN201
        race, self.other_round = self.other_round, None
        if race is not None:
            await race()
        return await self.paper.query_order(symbol, client_order_id)


async def test_an_exit_settled_by_the_risk_manager_meanwhile_is_found_settled_not_an_error(caplog) -> None:  # noqa: ANN001
    world, pid = await exit_sent_unrecorded()
    risk_manager = world.manage()  # the worker's other agent, on the same store

    async def tick_settles_first() -> None:
        assert await risk_manager.settle_pending_exit(pid) is True

    exchange = _ExchangeTheTickBeats(world.paper, tick_settles_first)
    manage = ManagePositions(world.store, exchange, world.clock, world.book)
    caplog.set_level("INFO")

    report = await ReconcileWithExchange(world.store, world.paper, world.execute_snipe(), manage, world.clock,
                                         world.book)()

    assert report.exits_settled == [pid] and report.clean
    history = await world.events(position_stream(pid))
    assert history.count("ExitOrderSubmitted") == 1 and history.count("PositionClosed") == 1, history
    assert len([n for n in history if n.endswith("Hit") or n.endswith("Filled")]) == 1, history
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR", "CRITICAL") or r.exc_info]
    assert len([r for r in caplog.records if "settled meanwhile" in r.getMessage()]) == 1
