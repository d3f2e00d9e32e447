"""ExecuteSnipe resuming a target an earlier run left executing (a crash, a job retried after an
error, the start-up or periodic reconciliation): an order that run may have sent is looked for
through the visibility grace before anything is sent again or any failure is recorded.

MEXC facts these tests stand on (FACTS.md): a filled market order may briefly answer "not found"
on query; whether MEXC refuses a reused newClientOrderId is undocumented, so a resend must never
be what finds out that the first order landed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from adapters.clock import ManualClock
from adapters.paper.exchange import PaperExchange
from application.ports import OrderReport, OrderSide
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from domain.target import TargetStatus, target_stream
from domain.values import ClientOrderId, Symbol
from tests.adapters.paper_support import LAUNCH
from tests.application.support import DEADLINE, NEW, World, coid_of, world_at

MS = timedelta(milliseconds=1)


class HiddenForAMoment:
    """The paper exchange behind MEXC's wire: an order answers "not found" on query until `lag`
    after it landed. Every send is noted (the paper refuses a reused client order id; MEXC's
    behaviour there is undocumented, so a resend at all is the failure these tests look for)."""

    def __init__(self, paper: PaperExchange, clock: ManualClock, lag: timedelta) -> None:
        self.paper, self.clock, self.lag = paper, clock, lag
        self.landed_at: datetime | None = None
        self.sends: list[datetime] = []
        self.queries: list[datetime] = []

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.paper, name)

    async def land(self, coid: ClientOrderId) -> None:
        """The crashed run's send: it reached the exchange now; its reply was lost with the run."""
        await self.paper.place_market_buy(NEW, Decimal("10"), coid)
        self.landed_at = self.clock.now()

    async def place_market_buy(self, symbol: Symbol, quote_amount: Decimal, coid: ClientOrderId) -> OrderReport:
        self.sends.append(self.clock.now())
        report = await self.paper.place_market_buy(symbol, quote_amount, coid)
        self.landed_at = self.clock.now()
        return report

    async def query_order(self, symbol: Symbol, coid: ClientOrderId) -> OrderReport | None:
        self.queries.append(self.clock.now())
        if self.landed_at is None or self.clock.now() < self.landed_at + self.lag:
            return None
        return await self.paper.query_order(symbol, coid)


def executor(world: World, exchange: object, book: TradeBook | None = None) -> ExecuteSnipe:
    return ExecuteSnipe(world.store, exchange, world.paper, world.traders, world.locks, world.clock,  # type: ignore[arg-type]
                        book or world.book, world.timing)


def buys(world: World) -> list[OrderReport]:
    return [o for o in world.paper.orders if o.side is OrderSide.BUY]


async def crashed_after_submitting(world: World) -> str:
    tid = await world.scheduled_target()
    await world.leave_executing(tid)  # SnipeOrderSubmitted recorded; the run then died (or raised)
    return tid


class TestAnOrderTheEarlierRunSent:
    async def test_an_order_still_invisible_when_the_job_is_retried_is_found_not_sent_again(self) -> None:
        """The send landed 50 ms after the launch and the run died; the job is retried 550 ms
        later, while the order still answers "not found" (for 1 s): it is found, not resent."""
        world = world_at(LAUNCH - timedelta(seconds=2))
        tid = await crashed_after_submitting(world)
        wire = HiddenForAMoment(world.paper, world.clock, lag=timedelta(seconds=1))
        world.clock.set(LAUNCH + 50 * MS)
        await wire.land(coid_of(tid))
        world.clock.set(LAUNCH + 600 * MS)

        outcome = await executor(world, wire)(tid)

        assert wire.sends == [], f"resent with the same client order id after a 'not found' ({outcome.detail})"
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 0, outcome.detail
        assert len(buys(world)) == 1
        assert (await world.target(tid)).status is TargetStatus.FILLED

    async def test_an_order_sent_just_before_the_deadline_is_found_by_a_resume_just_after_it(self) -> None:
        """No send is possible after the deadline, but a failure must not be recorded on one
        "not found" either: the order landed 500 ms before the deadline and shows 3 s later."""
        world = world_at(LAUNCH - timedelta(seconds=2))
        tid = await crashed_after_submitting(world)
        wire = HiddenForAMoment(world.paper, world.clock, lag=timedelta(seconds=3))
        world.clock.set(DEADLINE - 500 * MS)
        await wire.land(coid_of(tid))
        world.clock.set(DEADLINE + 1000 * MS)

        outcome = await executor(world, wire)(tid)

        assert outcome.result is SnipeResult.FILLED, outcome.detail
        assert wire.sends == []
        assert "SnipeFailed" not in await world.events(target_stream(tid))

    async def test_long_after_the_deadline_one_query_settles_it(self) -> None:
        """Every order a run could have sent has long been visible: no grace to wait out."""
        world = world_at(LAUNCH - timedelta(seconds=2))
        tid = await crashed_after_submitting(world)
        world.clock.set(DEADLINE + timedelta(minutes=5))
        resumed_at = world.clock.now()

        outcome = await world.execute_snipe()(tid)

        assert outcome.result is SnipeResult.FAILED and outcome.attempts == 0
        assert world.clock.now() == resumed_at
        assert world.order_calls() == []


class TestNoOrderFromTheEarlierRun:
    async def test_after_the_launch_the_resend_waits_for_the_visibility_grace(self) -> None:
        world = world_at(LAUNCH - timedelta(seconds=2))
        tid = await crashed_after_submitting(world)
        wire = HiddenForAMoment(world.paper, world.clock, lag=timedelta(0))
        world.clock.set(LAUNCH + 600 * MS)

        outcome = await executor(world, wire)(tid)

        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 1, outcome.detail
        assert wire.sends == [LAUNCH + 10_600 * MS]
        assert wire.queries[0] == LAUNCH + 600 * MS and wire.queries[-1] == LAUNCH + 10_600 * MS
        assert len(buys(world)) == 1

    async def test_within_the_largest_clock_lead_before_the_launch_it_is_looked_for_first_too(self) -> None:
        """The earlier run sent when MEXC's clock read the launch, which may be up to 5 s before
        ours (`MAX_CLOCK_LEAD`): resumed 1 s before the launch, it may have sent already. The
        safe side costs the launch instant: the buy goes out after the grace, 9 s late."""
        world = world_at(LAUNCH - timedelta(seconds=1))
        tid = await crashed_after_submitting(world)
        wire = HiddenForAMoment(world.paper, world.clock, lag=timedelta(0))

        outcome = await executor(world, wire)(tid)

        assert outcome.result is SnipeResult.FILLED, outcome.detail
        assert wire.sends == [LAUNCH + timedelta(seconds=9)]

    async def test_earlier_than_that_it_queries_once_and_sends_at_the_launch(self) -> None:
        world = world_at(LAUNCH - timedelta(seconds=5, milliseconds=1))
        tid = await crashed_after_submitting(world)
        wire = HiddenForAMoment(world.paper, world.clock, lag=timedelta(0))

        outcome = await executor(world, wire)(tid)

        assert outcome.result is SnipeResult.FILLED, outcome.detail
        assert wire.sends == [LAUNCH]
        assert wire.queries == [LAUNCH - timedelta(seconds=5, milliseconds=1)]

    async def test_the_lease_is_renewed_while_the_order_is_looked_for(self) -> None:
        """A short lease (3 s) outlives no grace: it is renewed during the look, so a second
        executor (another worker's reconciliation) trying 5 s in is kept out."""
        timing = SnipeTiming(lease_ttl=timedelta(seconds=3), send_in_flight=timedelta(seconds=1))
        world = world_at(LAUNCH - timedelta(seconds=2), timing=timing)
        tid = await crashed_after_submitting(world)
        world.clock.set(LAUNCH + 600 * MS)
        second = executor(world, world.paper, TradeBook())

        async def later() -> object:
            await world.clock.sleep(timedelta(seconds=5))
            return await second(tid)

        first_outcome, second_outcome = await world.clock.run_together([world.execute_snipe()(tid), later()])

        assert second_outcome.result is SnipeResult.SKIPPED, second_outcome.detail
        assert first_outcome.result is SnipeResult.FILLED, first_outcome.detail
        assert len(buys(world)) == 1


class TestAfterTheLockServiceLostItsData:
    async def test_a_taker_after_the_first_since_the_fence_restarted_waits_out_the_earlier_lease(self) -> None:
        """Redis lost its data while run A (lease ttl 15 s, last renewed 1 s before the launch)
        still believes in its lease and has a send in flight. B took the lease first after the
        loss (told `first`) and released it at once; C takes it next, not first, with a token
        above nothing it can compare. The fence epoch recorded with A's submission is not C's:
        C looks for the order until the visibility grace after one ttl from the counter's restart
        (B's take), and finds A's order, landed 12 s after the launch, instead of sending again."""
        world = world_at(LAUNCH - timedelta(seconds=2))
        tid = await crashed_after_submitting(world)  # A's submission, with its lease's token and epoch
        ttl = world.timing.lease_ttl
        wire = HiddenForAMoment(world.paper, world.clock, lag=timedelta(0))
        world.clock.set(LAUNCH - timedelta(seconds=1))
        world.locks.lose_data()
        world.clock.set(LAUNCH - 500 * MS)
        async with world.locks.lease(f"snipe:{tid}", ttl) as b:
            assert b is not None and b.first  # B gives up at once: halted, failed, or stopped
        world.clock.set(LAUNCH + 600 * MS)

        async def a_lands() -> None:  # A's send, started while its lease held, lands late
            await world.clock.sleep(LAUNCH + timedelta(seconds=12) - world.clock.now())
            await wire.land(coid_of(tid))

        outcome, _ = await world.clock.run_together([executor(world, wire)(tid), a_lands()])

        assert wire.sends == [], f"sent again while the earlier holder's order was in flight ({outcome.detail})"
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 0, outcome.detail
        assert len(buys(world)) == 1

    async def test_with_no_order_it_sends_only_after_the_grace_past_one_ttl_from_the_restart(self) -> None:
        world = world_at(LAUNCH - timedelta(seconds=2))
        tid = await crashed_after_submitting(world)
        ttl = world.timing.lease_ttl
        wire = HiddenForAMoment(world.paper, world.clock, lag=timedelta(0))
        world.locks.lose_data()
        world.clock.set(LAUNCH - 500 * MS)
        async with world.locks.lease(f"snipe:{tid}", ttl) as b:
            assert b is not None and b.first
        world.clock.set(LAUNCH + 600 * MS)

        outcome = await executor(world, wire)(tid)

        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 1, outcome.detail
        assert wire.sends == [LAUNCH - 500 * MS + ttl + timedelta(seconds=10)]
