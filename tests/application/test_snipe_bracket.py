"""The bracket around the open (SendPlanner.plan): with a clock offset known to within a spread,
the first send reaches the exchange just before the earliest instant the open can be, the next
ones follow one at a time with the same client order id, and the not-open refusals are counted
and bounded by the plan. Many traders on one launch share the IP's budget: fewer sends each."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from adapters.clock import ManualClock
from adapters.memory import InMemoryLaunchRoster
from adapters.paper.exchange import PaperExchange
from application.errors import NotYetOpen
from application.ports import ClockOffset, OrderReport
from application.timing import SnipeTiming
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from domain.target import TargetStatus
from domain.values import ClientOrderId, Symbol
from tests.adapters.paper_support import LAUNCH
from tests.application.support import World, before_launch, coid_of, world_at

US = timedelta(microseconds=1)


class _OffsetExchange:
    """The paper exchange behind a clock `true_offset` ahead of ours, measured as `measured` ± `spread`.
    A send reaches it `latency` after it leaves and its reply comes back as long again (the virtual
    clock moves on by that); before the launch on its clock it refuses as not open (10007). (Their
    clock is behind ours in these tests: the paper fills behind it follow our clock.)"""

    def __init__(self, inner: PaperExchange, clock: ManualClock, *, true_offset: timedelta, measured: timedelta,
                 spread: timedelta, latency: timedelta) -> None:
        self.inner, self.clock = inner, clock
        self.true_offset, self.measured, self.spread, self.latency = true_offset, measured, spread, latency
        self.sends: list[tuple[datetime, datetime, ClientOrderId, bool]] = []  # left, arrived (its clock), id, taken
        self.in_flight = 0

    def __getattr__(self, name: str):  # noqa: ANN204 - everything else as the paper exchange
        return getattr(self.inner, name)

    async def prepare(self, symbol: Symbol) -> timedelta | None:
        await self.inner.prepare(symbol)
        return ClockOffset(self.measured, self.spread, self.latency)

    async def place_market_buy(
        self, symbol: Symbol, quote_amount: Decimal, client_order_id: ClientOrderId
    ) -> OrderReport:
        self.in_flight += 1
        assert self.in_flight == 1, "two sends in flight at once"
        left = self.clock.now()
        arrived = left + self.latency + self.true_offset
        self.clock.advance(2 * self.latency)
        try:
            if arrived < LAUNCH:
                self.sends.append((left, arrived, client_order_id, False))
                raise NotYetOpen("MEXC 10007: symbol not support api", "10007")
            self.sends.append((left, arrived, client_order_id, True))
            return await self.inner.place_market_buy(symbol, quote_amount, client_order_id)
        finally:
            self.in_flight -= 1


def _executor(world: World, exchange: _OffsetExchange, roster: InMemoryLaunchRoster | None = None) -> ExecuteSnipe:
    return ExecuteSnipe(world.store, exchange, world.paper, world.traders, world.locks, world.clock, world.book,  # type: ignore[arg-type]
                        world.timing, roster=roster)


class TestBracket:
    async def test_the_first_send_arrives_before_the_open_and_the_next_ones_follow_until_one_is_taken(self) -> None:
        world = world_at(before_launch())
        # Their clock is 180 µs behind ours; we measured -100 ± 300 µs (the truth is inside).
        exchange = _OffsetExchange(world.paper, world.clock, true_offset=-180 * US, measured=-100 * US,
                                   spread=300 * US, latency=60 * US)
        tid = await world.scheduled_target()
        outcome = await _executor(world, exchange)(tid)

        assert outcome.result is SnipeResult.FILLED
        assert (await world.target(tid)).status is TargetStatus.FILLED
        first_left, first_arrived, _, taken = exchange.sends[0]
        assert not taken and first_arrived < LAUNCH  # aimed before the earliest the open can be
        assert {coid for _, _, coid, _ in exchange.sends} == {coid_of(tid)}  # one client order id
        refused = [s for s in exchange.sends if not s[3]]
        assert [s[3] for s in exchange.sends] == [False] * len(refused) + [True]  # exactly one taken, the last
        # Back to back: each send left as the previous reply came (one round trip apart).
        lefts = [left for left, _, _, _ in exchange.sends]
        assert all(b - a == 2 * exchange.latency for a, b in zip(lefts, lefts[1:], strict=False))
        # The taken one arrived within one round trip after the open (on the exchange's clock).
        assert LAUNCH <= exchange.sends[-1][1] < LAUNCH + 2 * exchange.latency
        # Refusals are counted, and bounded: the bracket spans twice the spread, a guard and the
        # first send's cost, one round trip per send.
        assert outcome.not_open == len(refused) == outcome.attempts - 1
        assert 1 <= outcome.not_open <= SnipeTiming().bracket_sends
        assert outcome.not_open <= (600 + 100 + 200 + 60) // 120 + 1

    async def test_without_a_measured_spread_one_send_goes_at_the_estimated_open(self) -> None:
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FILLED and outcome.attempts == 1 and outcome.not_open == 0

    async def test_a_clock_wrong_beyond_its_spread_falls_back_to_spaced_sends(self) -> None:
        world = world_at(before_launch())
        # The measurement says 0 ± 100 µs but their clock is 5 ms behind: the bracket ends before the open.
        exchange = _OffsetExchange(world.paper, world.clock, true_offset=-5000 * US, measured=timedelta(0),
                                   spread=100 * US, latency=50 * US)
        tid = await world.scheduled_target()
        outcome = await _executor(world, exchange)(tid)
        assert outcome.result is SnipeResult.FILLED
        lefts = [left for left, _, _, _ in exchange.sends]
        gaps = [b - a for a, b in zip(lefts, lefts[1:], strict=False)]
        # Back to back inside the bracket, then `retry_interval` apart (plus the round trip).
        assert gaps[0] == 100 * US
        assert gaps[-1] == world.timing.retry_interval + 100 * US
        assert outcome.not_open == len(exchange.sends) - 1


class TestManyTraders:
    async def test_fifty_traders_on_one_launch_each_send_a_shorter_bracket_and_space_the_rest(self) -> None:
        world = world_at(before_launch())
        roster = InMemoryLaunchRoster(world.clock)
        launch = f"NEWUSDT:{int(LAUNCH.timestamp() * 1000)}"
        for n in range(49):  # the other traders of this launch, in this process or another
            await roster.join(launch, f"other-{n}", timedelta(minutes=1))
        # Their clock is 5 s behind what we measured (far outside the spread): the open comes late.
        exchange = _OffsetExchange(world.paper, world.clock, true_offset=-timedelta(seconds=5), measured=timedelta(0),
                                   spread=200 * US, latency=50 * US)
        tid = await world.scheduled_target()
        outcome = await _executor(world, exchange, roster)(tid)

        assert outcome.result is SnipeResult.FILLED
        half = world.timing.launch_order_budget // 2
        dense = half // 50
        lefts = [left for left, _, _, _ in exchange.sends]
        gaps = [b - a for a, b in zip(lefts, lefts[1:], strict=False)]
        assert gaps[:dense - 1] == [100 * US] * (dense - 1)  # the bracket: this trader's share of it
        # After it, `retry_interval` apart, but at most its share of the other half in any 10 s:
        # 50 traders together stay inside the budget.
        assert all(gap >= world.timing.retry_interval + 100 * US for gap in gaps[dense - 1:])
        after = lefts[dense:]
        assert len(after) > dense  # the open came 5 s late: the pace was held for a while
        for n, start in enumerate(after):
            assert sum(1 for t in after[n:] if t < start + timedelta(seconds=10)) <= dense
        assert sum(1 for t in lefts if t < lefts[0] + timedelta(seconds=10)) <= 2 * dense
        # Its last send still arrives after the latest instant the open could be (as measured: our
        # launch + the spread), less the 200 µs the first send is allowed for its cost (none here).
        assert exchange.sends[dense - 1][1] - exchange.true_offset >= LAUNCH + 200 * US - 200 * US

    async def test_the_roster_counts_each_member_once_and_forgets_a_launch_after_its_ttl(self) -> None:
        clock = ManualClock(LAUNCH)
        roster = InMemoryLaunchRoster(clock)
        assert await roster.join("X:1", "a", timedelta(seconds=5)) == 1
        assert await roster.join("X:1", "b", timedelta(seconds=5)) == 2
        assert await roster.join("X:1", "a", timedelta(seconds=5)) == 2
        clock.advance(timedelta(seconds=6))
        assert await roster.join("X:1", "c", timedelta(seconds=5)) == 1
