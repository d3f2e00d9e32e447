"""ManagePositions when the exchange does not simply fill the exit."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from adapters.paper.exchange import Fault
from application.ports import PriceTick
from domain.events import ExitOrderFailed, ExitOrderSubmitted, TakeProfitHit
from domain.position import position_stream
from domain.values import Symbol
from tests.adapters.paper_support import LAUNCH
from tests.application.support import NEW, World, filled_position

AT_TP = LAUNCH + timedelta(seconds=60)  # the scenario's price is 0.6 here: +20 % on the 0.5 entry


async def filled_world() -> tuple[World, str]:
    return await filled_position(AT_TP)


def tick(world: World, price: str = "0.6") -> PriceTick:
    return PriceTick(NEW, Decimal(price), world.clock.now())


async def position_events(world: World, position_id: str) -> list:
    return [r.event for r in await world.store.load(position_stream(position_id))]


class TestRefusedExit:
    async def test_a_refused_exit_is_recorded_and_the_position_stays_open(self) -> None:
        world, pid = await filled_world()
        world.paper.faults.append(Fault.INSUFFICIENT_BALANCE)

        [outcome] = await world.manage().on_tick(tick(world))

        assert outcome.filled is False and outcome.reason == "take_profit"
        assert "insufficient balance" in outcome.detail
        events = await position_events(world, pid)
        assert [type(e).__name__ for e in events] == ["PositionOpened", "ExitOrderSubmitted", "ExitOrderFailed"]
        submitted, failed = events[1], events[2]
        assert isinstance(submitted, ExitOrderSubmitted) and isinstance(failed, ExitOrderFailed)
        assert failed.client_order_id == submitted.client_order_id and "insufficient balance" in failed.reason
        [view] = world.book.open_positions("alice")
        assert (view.status, view.remaining) == ("open", Decimal("20.00"))

    async def test_a_later_tick_retries_with_a_new_client_order_id(self) -> None:
        world, pid = await filled_world()
        world.paper.faults.append(Fault.INSUFFICIENT_BALANCE)
        await world.manage().on_tick(tick(world))
        world.clock.advance(timedelta(seconds=1))

        [outcome] = await world.manage().on_tick(tick(world))

        assert outcome.filled is True and outcome.quantity == "8.00" and outcome.price == "0.6"
        events = await position_events(world, pid)
        submits = [e for e in events if isinstance(e, ExitOrderSubmitted)]
        assert len(submits) == 2 and submits[0].client_order_id != submits[1].client_order_id
        hit = events[-1]
        assert isinstance(hit, TakeProfitHit)
        assert (hit.quantity, hit.proceeds, hit.fee, hit.cost_released, hit.realised_pnl) == (
            Decimal("8.00"), Decimal("4.800"), Decimal("0.0024000"), Decimal("4.00200000"), Decimal("0.79560000"),
        )
        [view] = world.book.open_positions("alice")
        assert (view.status, view.remaining) == ("partially exited", Decimal("12.00"))

    async def test_the_same_tick_does_not_retry_a_refused_exit_in_a_loop(self) -> None:
        world, _ = await filled_world()
        world.paper.faults.extend([Fault.INSUFFICIENT_BALANCE, Fault.INSUFFICIENT_BALANCE])
        outcomes = await world.manage().on_tick(tick(world))
        assert len(outcomes) == 1
        assert len(world.order_calls()) == 1


class TestAmbiguousExit:
    async def test_a_lost_reply_is_resolved_by_query_and_recorded_once(self) -> None:
        world, pid = await filled_world()
        world.paper.faults.append(Fault.TIMEOUT_AFTER_ACCEPT)

        [outcome] = await world.manage().on_tick(tick(world))

        assert outcome.filled is True and outcome.quantity == "8.00"
        sells = world.order_calls()
        assert len(sells) == 1
        coid = sells[0].split()[-1]
        assert world.paper.calls == [sells[0], f"query NEWUSDT {coid}"]
        events = await position_events(world, pid)
        assert [type(e).__name__ for e in events] == ["PositionOpened", "ExitOrderSubmitted", "TakeProfitHit"]
        assert events[-1].client_order_id == coid

    async def test_an_exit_that_never_reached_the_exchange_stays_pending_through_the_grace_then_is_retried(
        self,
    ) -> None:
        # A timeout, then "not found": it may only be not visible yet. No failure is recorded
        # (that would free the coins for a second sell); after the grace it is called missing.
        world, pid = await filled_world()
        world.paper.faults.append(Fault.TIMEOUT_BEFORE_ACCEPT)
        manage = world.manage()

        [outcome] = await manage.on_tick(tick(world))

        assert outcome.filled is False and "not visible yet" in outcome.detail
        events = await position_events(world, pid)
        assert isinstance(events[-1], ExitOrderSubmitted)
        world.clock.advance(timedelta(seconds=5))
        assert await manage.on_tick(tick(world)) == []
        assert len(world.order_calls()) == 1
        assert world.book.open_positions("alice")[0].remaining == Decimal("20.00")

        world.clock.advance(timedelta(seconds=6))  # 11 s after the send: past the grace
        [retry] = await manage.on_tick(tick(world))
        assert retry.filled is True
        names = [type(e).__name__ for e in await position_events(world, pid)]
        assert names[1:] == ["ExitOrderSubmitted", "ExitOrderFailed", "ExitOrderSubmitted", "TakeProfitHit"]
        assert world.book.open_positions("alice")[0].remaining == Decimal("12.00")


class TestHaltsAndScope:
    async def test_no_exit_order_while_the_user_is_halted(self) -> None:
        world, pid = await filled_world()
        await world.emergency_stop()("alice", "hold everything", "ops")
        assert await world.manage().on_tick(tick(world)) == []
        assert world.order_calls() == []
        assert [type(e).__name__ for e in await position_events(world, pid)] == ["PositionOpened"]

        await world.clear_stop()("alice", "ops")
        [outcome] = await world.manage().on_tick(tick(world))
        assert outcome.filled is True

    async def test_a_tick_for_another_symbol_leaves_the_position_alone(self) -> None:
        world, pid = await filled_world()
        other = PriceTick(Symbol("OTHER", "USDT"), Decimal("100"), world.clock.now())
        assert await world.manage().on_tick(other) == []
        assert world.order_calls() == []

    async def test_stop_loss_closes_everything_and_books_the_loss_for_the_day(self) -> None:
        world, pid = await filled_world()
        world.clock.set(LAUNCH + timedelta(seconds=120))  # scenario price 0.44: -12 %
        [outcome] = await world.manage().on_tick(tick(world, "0.44"))
        assert (outcome.reason, outcome.filled, outcome.quantity) == ("stop_loss", True, "20.00")
        assert world.book.open_positions("alice") == []
        # 20 x 0.44 = 8.8, fee 0.0044, cost 10.005
        assert world.book.realised_pnl_on("alice", LAUNCH.date()) == Decimal("-1.2094")
        assert (await position_events(world, pid))[-1].__class__.__name__ == "PositionClosed"



async def test_a_pending_exit_left_by_a_crash_is_resolved_before_anything_new() -> None:
    """Crash after ExitOrderSubmitted, with the sell on the exchange: the next tick asks by
    client order id, records the fill it finds, and does not sell the same shares again."""
    from application import repository
    from domain.events import Cause, StopLossHit
    from domain.position import Position

    world, pid = await filled_world()
    position = await repository.get(world.store, Position, position_stream(pid))
    decision = position.decide_exit(Decimal("0.4"), world.clock.now())
    assert decision is not None and decision.reason.value == "stop_loss"
    coid = position.submit_exit(decision, Cause(world.clock.now(), position.target_id))
    await repository.save(world.store, position)
    await world.paper.place_market_sell(NEW, decision.quantity, coid)  # then the process died
    world.paper.calls.clear()

    outcomes = await world.manage().on_tick(tick(world, "0.4"))

    assert outcomes == []
    assert not any(c.startswith("sell") for c in world.paper.calls)
    events = await position_events(world, pid)
    assert [type(e).__name__ for e in events][-2:] == ["StopLossHit", "PositionClosed"]
    assert isinstance(events[-2], StopLossHit) and events[-2].client_order_id == coid.value


async def test_a_pending_exit_that_never_reached_the_exchange_is_failed_then_decided_again() -> None:
    from application import repository
    from domain.events import Cause
    from domain.position import Position

    world, pid = await filled_world()
    position = await repository.get(world.store, Position, position_stream(pid))
    decision = position.decide_exit(Decimal("0.4"), world.clock.now())
    assert decision is not None
    position.submit_exit(decision, Cause(world.clock.now(), position.target_id))
    await repository.save(world.store, position)  # died before sending

    manage = world.manage()
    # "Not found" right after a send may only mean "not visible yet": nothing new is sold yet.
    assert await manage.on_tick(tick(world, "0.4")) == []
    world.clock.advance(timedelta(seconds=5))
    assert await manage.on_tick(tick(world, "0.4")) == []
    world.clock.advance(timedelta(seconds=6))  # past the grace: it never reached the exchange
    [outcome] = await manage.on_tick(tick(world, "0.4"))

    assert outcome.filled and outcome.reason == "stop_loss"
    names = [type(e).__name__ for e in await position_events(world, pid)]
    assert [n for n in names[1:] if n != "PositionPeakRaised"] == [
        "ExitOrderSubmitted", "ExitOrderFailed", "ExitOrderSubmitted", "StopLossHit", "PositionClosed"]


class AcknowledgedOnly:
    """The exchange's reply to a sell says only "accepted" (as MEXC's does); the fill shows
    up when the order is queried later."""

    def __init__(self, paper) -> None:  # noqa: ANN001
        self.paper = paper
        self.visible = False
        self.sells = 0

    async def place_market_sell(self, symbol, quantity, client_order_id):  # noqa: ANN001, ANN201
        from dataclasses import replace

        from application.ports import OrderStatus

        self.sells += 1
        filled = await self.paper.place_market_sell(symbol, quantity, client_order_id)
        return replace(filled, status=OrderStatus.NEW, executed_quantity=Decimal(0), executed_quote=Decimal(0),
                       average_price=Decimal(0), fee=Decimal(0))

    async def query_order(self, symbol, client_order_id):  # noqa: ANN001, ANN201
        return await self.paper.query_order(symbol, client_order_id) if self.visible else None

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.paper, name)


async def test_an_exit_accepted_but_not_yet_filled_stays_pending_and_is_never_sold_twice() -> None:
    from application.use_cases.positions import ManagePositions

    world, pid = await filled_world()
    exchange = AcknowledgedOnly(world.paper)
    manage = ManagePositions(world.store, exchange, world.clock, world.book)
    [first] = await manage.on_tick(tick(world, "0.4"))
    assert not first.filled and "not done yet" in first.detail
    for _ in range(3):  # later ticks ask about the pending exit; none sends another
        world.clock.advance(timedelta(seconds=1))
        assert await manage.on_tick(tick(world, "0.4")) == []
    assert exchange.sells == 1
    exchange.visible = True
    world.clock.advance(timedelta(seconds=1))
    await manage.on_tick(tick(world, "0.4"))
    names = [type(e).__name__ for e in await position_events(world, pid)]
    assert "ExitOrderFailed" not in names and names[-2:] == ["StopLossHit", "PositionClosed"]
    assert exchange.sells == 1
