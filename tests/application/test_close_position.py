"""ClosePosition: a person's close by hand, through the exit path of ManagePositions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.paper.exchange import Fault
from application import repository
from application.accounts import OneAccount
from application.errors import NotFound
from application.use_cases.positions import ClosePosition, ManagePositions, PositionClosure, PositionNotClosed
from domain.errors import EmergencyStopActive, InvalidTransition
from domain.events import Cause, ExitOrderSubmitted, ManualExitFilled
from domain.position import Position, PositionStatus, position_stream
from tests.application.support import World
from tests.application.test_positions import filled_world, position_events, tick


def close(world: World) -> ClosePosition:
    return ClosePosition(world.store, OneAccount(world.paper), world.clock, market=world.paper)


def sells(world: World) -> list[str]:
    return [c for c in world.paper.calls if c.startswith("sell")]


class TestCloseByHand:
    async def test_sells_everything_held_and_records_who_and_why(self) -> None:
        world, pid = await filled_world()

        closure = await close(world)("alice", pid)

        assert (closure.state, closure.already, closure.detail) == ("closed", False, "")
        assert closure.sold == Decimal("20.00") and closure.price == Decimal("0.6")
        assert closure.position.remaining == 0 and closure.position.last_exit == "ManualExitFilled"
        # 20 sold at 0.6 = 12 before the paper fee, on a cost of 10.01
        assert closure.realised_pnl == closure.position.realised_pnl > Decimal("1.9")
        events = await position_events(world, pid)
        assert [type(e).__name__ for e in events][-3:] == ["ExitOrderSubmitted", "ManualExitFilled", "PositionClosed"]
        submitted, filled = events[-3], events[-2]
        assert isinstance(submitted, ExitOrderSubmitted) and isinstance(filled, ManualExitFilled)
        assert (submitted.reason, submitted.requested_by, filled.requested_by) == ("manual", "alice", "alice")

    async def test_who_asked_may_be_named(self) -> None:
        world, pid = await filled_world()
        await close(world)("alice", pid, requested_by="telegram:alice")
        filled = [e for e in await position_events(world, pid) if isinstance(e, ManualExitFilled)]
        assert filled[0].requested_by == "telegram:alice"

    async def test_a_second_close_answers_the_state_and_sells_nothing(self) -> None:
        world, pid = await filled_world()
        first = await close(world)("alice", pid)
        again = await close(world)("alice", pid)

        assert len(sells(world)) == 1
        assert (again.state, again.already) == ("closed", True)
        assert (again.sold, again.price, again.realised_pnl) == (first.sold, first.price, first.realised_pnl)

    async def test_a_sell_whose_reply_was_lost_is_closing_then_settled_by_its_client_order_id(self) -> None:
        world, pid = await filled_world()
        world.paper.faults.append(Fault.TIMEOUT_AFTER_ACCEPT)

        first = await close(world)("alice", pid)
        assert first.state in ("closing", "closed")  # found at once by its client order id, or later
        again = await close(world)("alice", pid)

        assert (again.state, again.already) == ("closed", True)
        assert len(sells(world)) == 1

    async def test_another_users_position_is_unknown(self) -> None:
        world, pid = await filled_world()
        with pytest.raises(NotFound, match="unknown position id"):
            await close(world)("bob", pid)
        with pytest.raises(NotFound):
            await close(world)("alice", "p-nothing")
        assert sells(world) == []

    async def test_refused_while_a_persons_stop_holds_with_who_and_when(self) -> None:
        world, pid = await filled_world()
        await world.emergency_stop()("alice", "market looks wrong", "alice")

        with pytest.raises(EmergencyStopActive) as refused:
            await close(world)("alice", pid)

        assert str(refused.value).startswith("emergency stop pressed by alice at ")
        assert str(refused.value).endswith(" UTC: market looks wrong")
        assert sells(world) == []

    async def test_a_global_stop_refuses_too(self) -> None:
        world, pid = await filled_world()
        await world.emergency_stop()("global", "exchange incident", "ops")
        with pytest.raises(EmergencyStopActive, match="global emergency stop pressed by ops"):
            await close(world)("alice", pid)

    async def test_an_automatic_stop_lets_a_person_close(self) -> None:
        world, pid = await filled_world()
        await world.emergency_stop()("alice", "daily loss limit", "safety-monitor", automatic=True)
        assert (await close(world)("alice", pid)).state == "closed"

    async def test_a_refused_sell_raises_and_the_position_stays_open(self) -> None:
        world, pid = await filled_world()
        world.paper.faults.append(Fault.INSUFFICIENT_BALANCE)

        with pytest.raises(PositionNotClosed, match="nothing sold"):
            await close(world)("alice", pid)

        position = await repository.get(world.store, Position, position_stream(pid))
        assert (position.status, position.remaining) == (PositionStatus.OPEN, Decimal("20.00"))
        assert (await close(world)("alice", pid)).state == "closed"  # asked again: it sells

    async def test_an_exit_of_the_plan_in_flight_refuses_a_close(self) -> None:
        world, pid = await filled_world()
        position = await repository.get(world.store, Position, position_stream(pid))
        decision = position.decide_exit(Decimal("0.6"), world.clock.now())
        assert decision is not None
        position.submit_exit(decision, Cause(world.clock.now(), "t"))
        await repository.save(world.store, position)

        with pytest.raises(InvalidTransition, match="selling by its take profit exit"):
            await close(world)("alice", pid)
        assert sells(world) == []

    async def test_a_close_left_pending_by_an_earlier_call_is_settled_not_sent_again(self) -> None:
        world, pid = await filled_world()
        position = await repository.get(world.store, Position, position_stream(pid))
        position.submit_exit(position.decide_manual_exit(Decimal("0.6"), "alice"), Cause(world.clock.now(), "t"))
        await repository.save(world.store, position)  # recorded, then the process died before the send

        closer = close(world)
        first = await closer("alice", pid)  # not on the exchange: pending for the grace
        assert (first.state, first.already) == ("closing", True)
        world.clock.advance(timedelta(seconds=11))
        second = await closer("alice", pid)  # past the grace: recorded failed, then sold

        assert (second.state, second.already) == ("closed", False)
        assert len(sells(world)) == 1


class _HeldSells:
    """The paper exchange with every sell held until `go` is set: two processes racing on one store."""

    def __init__(self, world: World) -> None:
        self.paper, self.go = world.paper, asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.paper, name)

    async def place_market_sell(self, symbol, quantity, coid):  # noqa: ANN001, ANN201
        await self.go.wait()
        return await self.paper.place_market_sell(symbol, quantity, coid)


async def _race(held: _HeldSells, *calls: Awaitable[object]) -> list[object]:
    tasks = [asyncio.ensure_future(c) for c in calls]
    for _ in range(50):  # both reach the exchange or the store before any sell answers
        await asyncio.sleep(0)
    held.go.set()
    return list(await asyncio.gather(*tasks, return_exceptions=True))


class TestRaces:
    async def test_two_closes_at_once_from_two_processes_sell_once(self) -> None:
        world, pid = await filled_world()
        held = _HeldSells(world)
        one, two = (ClosePosition(world.store, OneAccount(held), world.clock, market=world.paper) for _ in range(2))

        first, second = await _race(held, one("alice", pid), two("alice", pid))

        assert len(sells(world)) == 1
        assert isinstance(first, PositionClosure) and isinstance(second, PositionClosure)
        assert {(first.state, first.already), (second.state, second.already)} == {("closed", False), ("closing", True)}
        assert (await close(world)("alice", pid)).state == "closed"
        assert len(sells(world)) == 1

    async def test_a_close_racing_the_risk_managers_stop_loss_sells_once(self) -> None:
        world, pid = await filled_world()
        held = _HeldSells(world)
        manage = ManagePositions(world.store, held, world.clock, world.book)  # type: ignore[arg-type]
        closer = ClosePosition(world.store, OneAccount(held), world.clock, market=world.paper)

        ticked, closed = await _race(held, manage.on_tick(tick(world, "0.3")), closer("alice", pid))

        assert len(sells(world)) == 1
        # Whichever recorded its sell first sold; the other sent nothing (a close that lost says the plan is selling).
        lost = isinstance(closed, InvalidTransition) and "stop loss" in str(closed)
        assert isinstance(closed, PositionClosure) or lost
        assert not isinstance(ticked, BaseException)
        await manage.on_tick(tick(world, "0.2"))  # the next tick: nothing more to sell
        assert len(sells(world)) == 1
