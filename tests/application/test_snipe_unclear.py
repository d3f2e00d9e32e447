"""ExecuteSnipe after sends and queries with no clear answer: a buy that landed is always found
and recorded as the fill, never recorded as failed or rejected, never sent a second time.

MEXC facts these tests stand on (FACTS.md): a filled market order may briefly answer "not found"
on query; a reused newClientOrderId has no documented rule; POST order may answer before the
order fills (status NEW), and GET order may answer 429, 700003 or a firewall's 403.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from adapters.clock import ManualClock
from adapters.paper.exchange import PaperExchange
from application.errors import AmbiguousOutcome, OrderRefused, RateLimited
from application.ports import OrderReport, OrderSide, OrderStatus
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from domain.position import position_id_for, position_stream
from domain.target import TargetStatus, target_stream
from domain.values import ClientOrderId, Symbol
from tests.adapters.paper_support import LAUNCH, listing
from tests.application.support import DEADLINE, World, before_launch, world_at

ORDER_TIMEOUT = timedelta(seconds=3)  # MexcRestClient's order_timeout


class LaggingWire:
    """The paper exchange behind MEXC's wire at a busy launch: the send that reaches the
    exchange fills, but its reply never comes (the client gives up after ORDER_TIMEOUT), and the
    order answers "not found" on query until `lag` after it was placed. Sends before the pair
    opens get 10007 as usual. With `refuse_resend_for_balance`, a resend after the landed order
    is refused with 10101 (that order spent the balance), not as a duplicate client order id."""

    def __init__(self, paper: PaperExchange, clock: ManualClock, lag: timedelta,
                 refuse_resend_for_balance: bool = False) -> None:
        self.paper, self.clock, self.lag = paper, clock, lag
        self.refuse_resend_for_balance = refuse_resend_for_balance
        self.sends: list[datetime] = []
        self.placed_at: datetime | None = None

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.paper, name)

    async def place_market_buy(self, symbol: Symbol, quote_amount: Decimal, coid: ClientOrderId) -> OrderReport:
        self.sends.append(self.clock.now())
        if self.placed_at is not None and self.refuse_resend_for_balance:
            raise OrderRefused("MEXC 10101: Insufficient balance", "10101")
        await self.paper.place_market_buy(symbol, quote_amount, coid)
        self.placed_at = self.clock.now()
        self.clock.advance(ORDER_TIMEOUT)
        raise AmbiguousOutcome("no reply (ReadTimeout); the request may have been processed")

    async def query_order(self, symbol: Symbol, coid: ClientOrderId) -> OrderReport | None:
        if self.placed_at is None or self.clock.now() < self.placed_at + self.lag:
            return None
        return await self.paper.query_order(symbol, coid)


def executor(world: World, exchange: object) -> ExecuteSnipe:
    return ExecuteSnipe(world.store, exchange, world.paper, world.traders, world.locks, world.clock, world.book,  # type: ignore[arg-type]
                        world.timing)


def buys(world: World) -> list[OrderReport]:
    return [o for o in world.paper.orders if o.side is OrderSide.BUY]


async def assert_recorded_as_the_one_fill(world: World, tid: str) -> None:
    [bought] = buys(world)
    target = await world.target(tid)
    assert target.status is TargetStatus.FILLED, target.failure
    assert target.fill is not None and target.fill.quantity == bought.executed_quantity
    names = await world.events(target_stream(tid))
    assert "SnipeFailed" not in names and "SnipeOrderRejected" not in names
    assert await world.events(position_stream(position_id_for(tid))) == ["PositionOpened"]
    [position] = world.book.open_positions("alice")
    assert position.quantity == bought.executed_quantity


class TestAFillLandingAtTheDeadline:
    async def test_a_send_timing_out_past_the_deadline_whose_order_shows_late_is_recorded_as_the_fill(self) -> None:
        """The pair opens 28.5 s late; the send then lands but times out 3 s later, past the
        30 s deadline, and the order answers "not found" for another 100 ms. It is looked for
        through the visibility grace: the fill and its position are recorded."""
        world = world_at(before_launch(), listings=[listing(open_delay_ms=28_500)])
        tid = await world.scheduled_target()
        wire = LaggingWire(world.paper, world.clock, lag=ORDER_TIMEOUT + timedelta(milliseconds=100))

        outcome = await executor(world, wire)(tid)

        assert outcome.result is SnipeResult.FILLED, outcome.detail
        assert wire.placed_at is not None and wire.placed_at + ORDER_TIMEOUT > DEADLINE
        assert wire.sends[-1] == wire.placed_at  # nothing sent after the send that landed
        await assert_recorded_as_the_one_fill(world, tid)

    async def test_a_landed_send_invisible_for_seconds_is_never_sent_again(self) -> None:
        """The audit's proof: the first send lands (its reply is lost) and the order answers "not
        found" for 3 s, then 6 s. With a 2 s resend grace it was sent again with the same client
        order id: a second buy unless MEXC refuses a reused id, which is undocumented. The resend
        now waits the whole visibility grace, and the order shows before it."""
        for lag in (3, 6):
            world = world_at(before_launch())
            tid = await world.scheduled_target()
            wire = LaggingWire(world.paper, world.clock, lag=timedelta(seconds=lag))

            outcome = await executor(world, wire)(tid)

            assert outcome.result is SnipeResult.FILLED, outcome.detail
            assert wire.sends == [LAUNCH], f"sent again after a {lag} s lag"
            await assert_recorded_as_the_one_fill(world, tid)

    async def test_a_resend_refused_for_balance_after_a_landed_send_is_recorded_as_the_fill(self) -> None:
        """The first send lands (its reply is lost) and spent the balance; the order is still
        invisible when the 10 s resend grace ends, so it is sent again, and that resend is
        refused with 10101. The refusal is not recorded: the visibility grace finds the fill."""
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        wire = LaggingWire(world.paper, world.clock, lag=timedelta(seconds=15),
                           refuse_resend_for_balance=True)

        outcome = await executor(world, wire)(tid)

        assert outcome.result is SnipeResult.FILLED, outcome.detail
        assert wire.sends == [LAUNCH, LAUNCH + ORDER_TIMEOUT + timedelta(seconds=10)]
        await assert_recorded_as_the_one_fill(world, tid)

    async def test_a_lost_send_still_not_found_after_the_grace_is_recorded_as_failed_then(self) -> None:
        """The last send before the deadline was lost on the way: no order exists. The failure
        is recorded only once the order stayed "not found" for the whole visibility grace."""
        world = world_at(before_launch(), listings=[listing(open_delay_ms=600_000)])
        tid = await world.scheduled_target()
        real_place = world.paper.place_market_buy
        lost_at: list[datetime] = []

        async def place(symbol, quote_amount, coid):  # noqa: ANN001, ANN202
            if world.clock.now() >= DEADLINE - timedelta(milliseconds=500) and not lost_at:
                lost_at.append(world.clock.now() + ORDER_TIMEOUT)
                world.clock.advance(ORDER_TIMEOUT)
                raise AmbiguousOutcome("no reply (ReadTimeout); the request may have been processed")
            return await real_place(symbol, quote_amount, coid)

        world.paper.place_market_buy = place  # type: ignore[method-assign]

        outcome = await world.execute_snipe()(tid)

        assert outcome.result is SnipeResult.FAILED and "no fill by the deadline" in outcome.detail
        assert buys(world) == []
        [failed] = [r for r in await world.store.load(target_stream(tid)) if r.event.type_name == "SnipeFailed"]
        assert failed.occurred_at >= lost_at[0] + timedelta(seconds=10)
        assert (await world.target(tid)).status is TargetStatus.FAILED


class TestBConfirmingAnAcknowledgedBuy:
    """POST order answered (status NEW, as MexcExchange reports MEXC's reply): the order exists.
    An error from the GET that follows it must be answered by asking again, never by a resend."""

    class Wire:
        def __init__(self, paper: PaperExchange, query_errors: list[Exception]) -> None:
            self.paper, self.query_errors, self.posts = paper, query_errors, 0

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self.paper, name)

        async def place_market_buy(self, symbol, quote_amount, coid):  # noqa: ANN001, ANN201
            self.posts += 1
            report = await self.paper.place_market_buy(symbol, quote_amount, coid)
            return dataclasses.replace(report, status=OrderStatus.NEW, executed_quantity=Decimal(0),
                                       executed_quote=Decimal(0))

        async def query_order(self, symbol, coid):  # noqa: ANN001, ANN201
            if self.query_errors:
                raise self.query_errors.pop(0)
            return await self.paper.query_order(symbol, coid)

    @pytest.mark.parametrize("error", [
        RateLimited("MEXC rate limited (429): retry after 0.1 s", timedelta(milliseconds=100), "429"),
        AmbiguousOutcome("MEXC 503: service unavailable"),
        OrderRefused("MEXC HTTP 403: forbidden", "http-403"),
    ], ids=["429", "503", "403"])
    async def test_a_query_error_after_the_acknowledgement_is_asked_again_not_resent(self, error: Exception) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        wire = self.Wire(world.paper, [error, error])

        outcome = await executor(world, wire)(tid)

        assert wire.posts == 1
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 1, outcome.detail
        await assert_recorded_as_the_one_fill(world, tid)

    async def test_when_the_fill_cannot_be_learnt_the_target_stays_executing_for_reconciliation(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        wire = self.Wire(world.paper, [OrderRefused("MEXC HTTP 403: forbidden", "http-403")] * 1000)

        with pytest.raises(AmbiguousOutcome, match="not resending"):
            await executor(world, wire)(tid)

        assert wire.posts == 1
        assert (await world.target(tid)).status is TargetStatus.EXECUTING
        assert "SnipeOrderRejected" not in await world.events(target_stream(tid))
        # The reconciliation later resumes it by its client order id: the fill, and no new buy.
        world.clock.advance(timedelta(minutes=1))
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 0
        assert wire.posts == 1
        await assert_recorded_as_the_one_fill(world, tid)


class TestDNoResendWhileALandedOrderMayStillShow:
    async def test_an_order_showing_1_5_s_after_a_timeout_is_found_before_any_resend(self) -> None:
        """Whether MEXC refuses a reused client order id is undocumented: a resend must not be
        what finds out. The order is looked for through the resend grace and found."""
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        wire = LaggingWire(world.paper, world.clock, lag=ORDER_TIMEOUT + timedelta(milliseconds=1500))

        outcome = await executor(world, wire)(tid)

        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 1, outcome.detail
        assert wire.sends == [LAUNCH]
        await assert_recorded_as_the_one_fill(world, tid)
