"""ExecuteSnipe at the edges: leases, resumes, deadlines, rate limits, live trading, halts."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.memory import InMemoryLockService
from adapters.paper.exchange import Fault
from application import repository
from application.errors import AmbiguousOutcome, ClockSkew, NotFound
from application.ports import OrderStatus, TraderSettings
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from domain.events import Cause, RiskCheckFailed, SnipeFailed, SnipeOrderFilled, SnipeOrderRejected
from domain.position import position_id_for, position_stream
from domain.risk import RiskProfile
from domain.target import TargetStatus, target_stream
from tests.adapters.paper_support import LAUNCH, listing
from tests.application.support import NEW, before_launch, coid_of, live_profile, world_at

MS = timedelta(milliseconds=1)


def buy_call(target_id: str, amount: str = "10") -> str:
    return f"buy NEWUSDT {amount} {coid_of(target_id)}"


def query_call(target_id: str) -> str:
    return f"query NEWUSDT {coid_of(target_id)}"


class TestBaseline:
    async def test_a_scheduled_target_fills_once_at_launch(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 1
        assert outcome.fill is not None and outcome.fill.created_at == LAUNCH
        assert world.paper.calls == ["prepare NEWUSDT", buy_call(tid)]
        assert (await world.target(tid)).status is TargetStatus.FILLED
        assert await world.events(position_stream(position_id_for(tid))) == ["PositionOpened"]
        [pos] = world.book.open_positions("alice")
        assert (pos.quantity, pos.cost, pos.entry_price) == (Decimal("20.00"), Decimal("10.0050"), Decimal("0.5"))


class TestSkips:
    async def test_skipped_while_another_executor_holds_the_lease(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        async with world.locks.lease(f"snipe:{tid}", timedelta(minutes=2)) as held:
            assert held
            outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.SKIPPED
        assert "another executor" in outcome.detail
        assert world.paper.calls == []
        assert (await world.target(tid)).status is TargetStatus.SCHEDULED

    async def test_two_executors_at_once_make_one_buy(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        first, second = await world.clock.run_together([world.execute_snipe()(tid), world.execute_snipe()(tid)])
        assert {first.result, second.result} == {SnipeResult.FILLED, SnipeResult.SKIPPED}
        assert world.order_calls() == [buy_call(tid)]

    async def test_an_executor_that_loses_the_submission_race_stands_down_without_sending(self) -> None:
        """Two processes without a shared lock service both load the target SCHEDULED; the
        store takes only one submission. The other's append conflicts: it must not send."""
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        stale = await world.store.load(target_stream(tid))  # what the slower process loaded
        assert (await world.execute_snipe()(tid)).result is SnipeResult.FILLED
        slower = ExecuteSnipe(_StaleLoadOnce(world.store, target_stream(tid), stale), world.paper, world.paper,
                              world.traders, InMemoryLockService(world.clock), world.clock, TradeBook(), world.timing)

        outcome = await slower(tid)

        assert outcome.result is SnipeResult.SKIPPED and "another executor submitted first" in outcome.detail
        assert world.order_calls() == [buy_call(tid)]
        assert (await world.target(tid)).status is TargetStatus.FILLED

    async def test_an_already_filled_target_is_skipped_without_any_exchange_call(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        assert (await world.execute_snipe()(tid)).result is SnipeResult.FILLED
        world.paper.calls.clear()
        events_before = len(await world.all_events())
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.SKIPPED
        assert outcome.detail == "target is filled"
        assert world.paper.calls == []
        assert len(await world.all_events()) == events_before

    async def test_a_failed_target_is_skipped_without_any_exchange_call(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        target = await world.target(tid)
        target.fail("test", Cause(world.clock.now(), tid))
        await repository.save(world.store, target)
        outcome = await world.execute_snipe()(tid)
        assert (outcome.result, outcome.detail) == (SnipeResult.SKIPPED, "target is failed")
        assert world.paper.calls == []

    async def test_an_unknown_target_is_not_found(self) -> None:
        world = world_at(before_launch())
        with pytest.raises(NotFound):
            await world.execute_snipe()("t-nope")
        assert world.paper.calls == []


class _StaleLoadOnce:
    """An event store whose first load of one stream answers with an older history."""

    def __init__(self, store, stream_id: str, history) -> None:  # noqa: ANN001
        self._store, self._stream_id, self._history = store, stream_id, history

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._store, name)

    async def load(self, stream_id: str):  # noqa: ANN201
        if stream_id == self._stream_id and self._history is not None:
            history, self._history = self._history, None
            return history
        return await self._store.load(stream_id)


class TestResume:
    async def test_an_order_the_exchange_already_has_is_recorded_without_a_new_buy(self) -> None:
        world = world_at(LAUNCH)
        tid = await world.scheduled_target()
        await world.leave_executing(tid)
        # The crashed executor's order did reach the exchange.
        placed = await world.paper.place_market_buy(NEW, Decimal("10"), coid_of(tid))
        world.clock.advance(timedelta(seconds=5))
        world.paper.calls.clear()

        outcome = await world.execute_snipe()(tid)

        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 0
        assert world.paper.calls == [query_call(tid)]
        target = await world.target(tid)
        assert target.status is TargetStatus.FILLED
        assert target.fill is not None and target.fill.exchange_order_id == placed.exchange_order_id
        assert target.fill.quantity == placed.executed_quantity and target.fill.fee == placed.fee
        assert await world.events(position_stream(position_id_for(tid))) == ["PositionOpened"]

    async def test_with_no_order_on_the_exchange_it_looks_through_the_visibility_grace_then_sends(self) -> None:
        """The crashed run may have sent up to now, and its order may answer "not found" for a
        moment: it is looked for through the 10 s visibility grace before the one resend."""
        world = world_at(LAUNCH + timedelta(seconds=1))
        tid = await world.scheduled_target()
        await world.leave_executing(tid)
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 1
        assert world.paper.calls[-2:] == ["prepare NEWUSDT", buy_call(tid)]
        assert len(world.paper.calls) > 3 and set(world.paper.calls[:-2]) == {query_call(tid)}
        assert outcome.fill is not None and outcome.fill.created_at == LAUNCH + timedelta(seconds=11)

    async def test_a_resume_before_launch_waits_for_launch_to_send(self) -> None:
        # More than the largest clock offset the sends follow (5 s) ahead: no run can have sent yet.
        world = world_at(before_launch(6))
        tid = await world.scheduled_target()
        await world.leave_executing(tid)
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED
        assert outcome.attempts == 1  # no "not yet open" burst before the pair opens
        assert outcome.fill is not None and outcome.fill.created_at == LAUNCH

    async def test_a_resume_under_an_emergency_stop_sends_nothing(self) -> None:
        world = world_at(LAUNCH)
        tid = await world.scheduled_target()
        await world.leave_executing(tid)
        await world.emergency_stop()("alice", "manual halt", "ops")
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.REFUSED
        assert "emergency stop" in outcome.detail
        assert world.order_calls() == []
        target = await world.target(tid)
        assert target.status is TargetStatus.FAILED and "manual halt" in (target.failure or "")

    async def test_a_resume_under_an_emergency_stop_still_records_a_fill_that_happened(self) -> None:
        world = world_at(LAUNCH)
        tid = await world.scheduled_target()
        await world.leave_executing(tid)
        await world.paper.place_market_buy(NEW, Decimal("10"), coid_of(tid))
        await world.emergency_stop()("global", "manual halt", "ops")
        world.paper.calls.clear()
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED
        assert world.paper.calls == [query_call(tid)]

    async def test_a_resume_after_the_deadline_with_no_order_fails_without_sending(self) -> None:
        world = world_at(LAUNCH + timedelta(minutes=5))
        tid = await world.scheduled_target()
        await world.leave_executing(tid)
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FAILED and outcome.attempts == 0
        assert world.order_calls() == []
        assert (await world.target(tid)).status is TargetStatus.FAILED


class TestDeadline:
    async def test_a_deadline_already_passed_fails_with_no_order(self) -> None:
        world = world_at(LAUNCH + SnipeTiming().snipe_window)
        tid = await world.scheduled_target()
        outcome = await world.execute_snipe()(tid)
        assert (outcome.result, outcome.detail) == (SnipeResult.FAILED, "snipe window closed")
        assert world.paper.calls == []
        assert (await world.events(target_stream(tid)))[-1] == "SnipeFailed"
        assert (await world.target(tid)).status is TargetStatus.FAILED

    async def test_not_yet_open_is_retried_until_the_pair_opens(self) -> None:
        world = world_at(before_launch(), listings=[listing(open_delay_ms=45)])
        tid = await world.scheduled_target()
        outcome = await world.execute_snipe()(tid)
        # Sent at 0, 20, 40 ms ("not yet open"), filled at 60 ms.
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 4
        assert outcome.fill is not None and outcome.fill.created_at == LAUNCH + 60 * MS
        filled = [r.event for r in await world.store.load(target_stream(tid)) if isinstance(r.event, SnipeOrderFilled)]
        assert filled[0].attempts == 4 and filled[0].latency_ms == Decimal(60)

    async def test_a_pair_that_never_opens_in_the_window_fails_with_no_order(self) -> None:
        world = world_at(before_launch(), listings=[listing(open_delay_ms=600_000)])
        tid = await world.scheduled_target(deadline_at=LAUNCH + timedelta(seconds=1))
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FAILED
        assert outcome.attempts == 50
        assert "no fill by the deadline" in outcome.detail and "not open" in outcome.detail
        assert world.clock.now() >= LAUNCH + timedelta(seconds=1)
        assert world.paper.calls[-1] == query_call(tid)  # one last look before giving up
        assert await world.paper.query_order(NEW, coid_of(tid)) is None


class TestExchangeReplies:
    @pytest.mark.parametrize(
        ("retry_interval", "expected_wait"),
        [
            (timedelta(milliseconds=20), timedelta(milliseconds=100)),
            (timedelta(milliseconds=250), timedelta(milliseconds=250))
        ],
        ids=["retry_after_longer", "retry_interval_longer"],
    )
    async def test_rate_limited_waits_at_least_retry_after(
        self, retry_interval: timedelta, expected_wait: timedelta,
    ) -> None:
        world = world_at(before_launch(), timing=SnipeTiming(retry_interval=retry_interval))
        tid = await world.scheduled_target()
        world.paper.faults.append(Fault.RATE_LIMITED)  # retry_after = 100 ms
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 2
        assert outcome.fill is not None and outcome.fill.created_at == LAUNCH + expected_wait
        assert world.order_calls() == [buy_call(tid), buy_call(tid)]

    async def test_lost_reply_is_resolved_by_query_not_by_a_second_buy(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        world.paper.faults.append(Fault.TIMEOUT_AFTER_ACCEPT)
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 1
        assert world.paper.calls == ["prepare NEWUSDT", buy_call(tid), query_call(tid)]

    async def test_a_timeout_before_accept_is_resent_with_the_same_id_after_the_resend_grace(self) -> None:
        """Lost on the way: the order is looked for (backing off) through the whole 10 s
        visibility grace, since a landed order may answer "not found" for a while and a resend
        with the same id is a double buy unless MEXC refuses it (undocumented); only then is it
        sent again, still inside the 30 s window."""
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        world.paper.faults.append(Fault.TIMEOUT_BEFORE_ACCEPT)
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 2
        # Queries at 0, 20, 60, 140, 300, 620, 1120 ms, then every 500 ms to 9620, and at 10 s.
        assert world.paper.calls == ["prepare NEWUSDT", buy_call(tid), *[query_call(tid)] * 25, buy_call(tid)]
        assert outcome.fill is not None and outcome.fill.created_at == LAUNCH + timedelta(seconds=10)

    async def test_a_final_refusal_fails_fast_with_its_code(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        world.paper.faults.append(Fault.INSUFFICIENT_BALANCE)
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FAILED and outcome.attempts == 1
        assert world.order_calls() == [buy_call(tid)]
        rejected = [
            r.event for r in await world.store.load(target_stream(tid)) if isinstance(r.event, SnipeOrderRejected)
        ]
        assert [(e.code, e.attempts) for e in rejected] == [("10101", 1)]
        assert world.book.open_positions("alice") == []


class TestRefusals:
    async def test_a_live_target_for_a_paper_user_is_refused(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target(live=True)  # alice's profile is paper (live=False)
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.REFUSED
        assert "live trading is not enabled" in outcome.detail
        assert world.paper.calls == []
        events = [r.event for r in await world.store.load(target_stream(tid))]
        assert isinstance(events[-2], RiskCheckFailed)
        assert "live trading is not enabled for this user" in events[-2].reasons
        assert isinstance(events[-1], SnipeFailed)
        assert (await world.target(tid)).status is TargetStatus.FAILED

    async def test_a_live_target_for_a_live_user_goes_ahead(self) -> None:
        world = world_at(before_launch(), traders=[TraderSettings("alice", risk=live_profile())])
        tid = await world.scheduled_target(live=True)
        assert (await world.execute_snipe()(tid)).result is SnipeResult.FILLED

    async def test_risk_limits_refuse_before_any_exchange_call(self) -> None:
        small = RiskProfile(Decimal("5"), 3, Decimal("50"), Decimal("300"))
        world = world_at(before_launch(), traders=[TraderSettings("alice", risk=small)])
        tid = await world.scheduled_target()
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.REFUSED and "exceeds the per-snipe limit 5" in outcome.detail
        assert world.paper.calls == []

    async def test_a_user_who_no_longer_exists_is_refused(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target(user_id="ghost")
        outcome = await world.execute_snipe()(tid)
        assert (outcome.result, outcome.detail) == (SnipeResult.REFUSED, "unknown user")
        assert world.paper.calls == []

    async def test_an_emergency_stop_activated_after_scheduling_refuses_at_the_executor(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        await world.emergency_stop()("alice", "too many losses", "safety-monitor")
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.REFUSED and "too many losses" in outcome.detail
        assert world.paper.calls == []
        assert (await world.target(tid)).status is TargetStatus.FAILED

    async def test_another_users_stop_does_not_halt_this_one(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        await world.emergency_stop()("bob", "bob only", "ops")
        assert (await world.execute_snipe()(tid)).result is SnipeResult.FILLED

    async def test_a_global_stop_during_the_wait_for_launch_fails_the_snipe_unsent(self) -> None:
        world = world_at(before_launch(2))
        tid = await world.scheduled_target()

        async def operator() -> None:
            await world.clock.sleep_until(LAUNCH - timedelta(seconds=1))
            await world.emergency_stop()("global", "exchange incident", "ops")

        outcome, _ = await world.clock.run_together([world.execute_snipe()(tid), operator()])

        assert outcome.result is SnipeResult.REFUSED and "global emergency stop" in outcome.detail
        assert world.paper.calls == ["prepare NEWUSDT"]  # prepared, never sent
        assert await world.paper.query_order(NEW, coid_of(tid)) is None
        target = await world.target(tid)
        assert target.status is TargetStatus.FAILED
        assert await world.events(target_stream(tid)) == [
            "SnipeTargetCreated", "SnipeTargetReady", "SnipeScheduled", "SnipeOrderSubmitted", "SnipeFailed",
        ]
        # The stop is read for the last time just before the launch, so the launch instant itself
        # carries no database read: refused 300 ms ahead (`_HALT_CHECK_LEAD`).
        assert world.clock.now() == LAUNCH - timedelta(milliseconds=300)

    async def test_after_the_stop_is_cleared_a_new_target_trades(self) -> None:
        world = world_at(before_launch())
        await world.emergency_stop()("global", "incident", "ops")
        await world.clear_stop()("global", "ops")
        tid = await world.scheduled_target()
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED
        assert outcome.fill is not None and outcome.fill.status is OrderStatus.FILLED


class TestUnclearReplies:
    async def test_clock_skew_resyncs_then_resends(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        real_buy = world.paper.place_market_buy
        skews = [ClockSkew("timestamp outside recvWindow")]

        async def buy(symbol, amount, client_order_id):  # noqa: ANN001, ANN202
            if skews:
                world.paper.calls.append("skewed")
                raise skews.pop()
            return await real_buy(symbol, amount, client_order_id)

        world.paper.place_market_buy = buy  # type: ignore[method-assign]
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 2
        assert world.paper.calls == ["prepare NEWUSDT", "skewed", "prepare NEWUSDT", buy_call(tid)]

    async def test_an_acknowledged_order_is_followed_to_its_fill(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        real_buy = world.paper.place_market_buy

        async def buy(symbol, amount, client_order_id):  # noqa: ANN001, ANN202
            filled = await real_buy(symbol, amount, client_order_id)
            return dataclasses.replace(
                filled, status=OrderStatus.NEW, executed_quantity=Decimal(0), executed_quote=Decimal(0)
            )

        world.paper.place_market_buy = buy  # type: ignore[method-assign]
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED
        assert outcome.fill is not None and outcome.fill.executed_quantity == Decimal("20.00")
        assert world.paper.calls[-1] == query_call(tid)

    async def test_when_the_order_cannot_be_resolved_nothing_is_resent_and_a_resume_settles_it(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        world.paper.faults.append(Fault.TIMEOUT_AFTER_ACCEPT)
        real_query = world.paper.query_order
        outage = [True]

        async def query(symbol, client_order_id):  # noqa: ANN001, ANN202
            if outage[0]:
                world.paper.calls.append("query failed")
                raise AmbiguousOutcome("gateway timeout")
            return await real_query(symbol, client_order_id)

        world.paper.query_order = query  # type: ignore[method-assign]
        with pytest.raises(AmbiguousOutcome, match="not resending"):
            await world.execute_snipe()(tid)
        assert world.order_calls() == [buy_call(tid)]
        assert world.paper.calls.count("query failed") == 3
        assert (await world.target(tid)).status is TargetStatus.EXECUTING

        outage[0] = False  # the exchange answers again; a later run resumes
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 0
        assert world.order_calls() == [buy_call(tid)]


class TestOrderAlreadyExists:
    async def test_a_duplicate_client_id_reply_is_resolved_by_query_and_recorded_as_the_fill(self) -> None:
        """Another worker's send landed between our query and our send: the exchange says the
        client id exists. That is our order, not a failure: one order, a filled target."""
        world = world_at(LAUNCH)
        tid = await world.scheduled_target()
        await world.paper.place_market_buy(NEW, Decimal("10"), coid_of(tid))  # the other worker's send

        outcome = await world.execute_snipe()(tid)

        assert outcome.result is SnipeResult.FILLED
        assert len(world.paper.orders) == 1
        assert (await world.target(tid)).status is TargetStatus.FILLED
        names = await world.events(target_stream(tid))
        assert "SnipeFailed" not in names and "SnipeOrderRejected" not in names


class _UnlistedMarket:
    """Market data of an exchange whose symbol list does not have the new pair yet."""

    async def symbol_rules(self, symbol):  # noqa: ANN001, ANN201
        raise NotFound(f"{symbol} is not in exchangeInfo yet")

    async def last_price(self, symbol):  # noqa: ANN001, ANN201
        return None


class TestPairNotYetListed:
    async def test_the_buy_goes_out_and_the_fill_shows_the_quantity_step(self) -> None:
        from application.use_cases.snipe import ExecuteSnipe
        from domain.position import Position

        world = world_at(before_launch())
        tid = await world.scheduled_target()
        snipe = ExecuteSnipe(world.store, world.paper, _UnlistedMarket(), world.traders, world.locks, world.clock,
                             world.book, world.timing)

        outcome = await snipe(tid)

        assert outcome.result is SnipeResult.FILLED and outcome.fill is not None
        position = await repository.get(world.store, Position, position_stream(position_id_for(tid)))
        expected = -outcome.fill.executed_quantity.normalize().as_tuple().exponent
        assert position.quantity_scale == max(0, expected)


class _SlowToShowExchange:
    """Says the client id already exists, then needs a few queries before the order shows."""

    def __init__(self, paper, hidden_queries: int) -> None:  # noqa: ANN001
        self.paper, self.hidden = paper, hidden_queries
        self.sends = 0

    def __getattr__(self, name):  # noqa: ANN001, ANN204
        return getattr(self.paper, name)

    async def place_market_buy(self, symbol, quote_amount, client_order_id):  # noqa: ANN001, ANN201
        from application.errors import OrderAlreadyExists

        self.sends += 1
        if self.sends == 1:
            await self.paper.place_market_buy(symbol, quote_amount, client_order_id)
        raise OrderAlreadyExists(f"{client_order_id} exists")

    async def query_order(self, symbol, client_order_id):  # noqa: ANN001, ANN201
        if self.hidden > 0:
            self.hidden -= 1
            return None
        return await self.paper.query_order(symbol, client_order_id)


class TestOrderKnownToExist:
    async def test_it_is_never_sent_again_while_it_is_not_yet_visible(self) -> None:
        from application.use_cases.snipe import ExecuteSnipe

        world = world_at(before_launch())
        tid = await world.scheduled_target()
        exchange = _SlowToShowExchange(world.paper, hidden_queries=4)
        snipe = ExecuteSnipe(world.store, exchange, world.paper, world.traders, world.locks, world.clock,
                             world.book, world.timing)

        outcome = await snipe(tid)

        assert outcome.result is SnipeResult.FILLED
        assert exchange.sends == 1
        assert len(world.paper.orders) == 1
