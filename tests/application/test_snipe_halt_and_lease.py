"""ExecuteSnipe between the launch and the fill: an emergency stop pressed while the pair still
answers "not yet open" stops the retries; the lease on the snipe is held (renewed) for as long
as its executor waits or retries, so no second executor sends beside it."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

from adapters.memory import InMemoryLockService
from application.ports import Lease, OrderReport, OrderSide
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from domain.target import TargetStatus, target_stream
from domain.values import ClientOrderId, Symbol
from tests.adapters.paper_support import LAUNCH, listing
from tests.application.support import World, before_launch, world_at

MS = timedelta(milliseconds=1)


def buys(world: World) -> list[OrderReport]:
    return [o for o in world.paper.orders if o.side is OrderSide.BUY]


class TimedSends:
    """The paper exchange, noting when each buy was sent."""

    def __init__(self, world: World) -> None:
        self.paper, self.clock = world.paper, world.clock
        self.sent_at: list[datetime] = []

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.paper, name)

    async def place_market_buy(self, symbol: Symbol, quote_amount: Decimal, coid: ClientOrderId) -> OrderReport:
        self.sent_at.append(self.clock.now())
        return await self.paper.place_market_buy(symbol, quote_amount, coid)


class SlowReads:
    """The event store of a slow database: every read of the whole history takes `delay`."""

    def __init__(self, world: World, delay: timedelta) -> None:
        self.store, self.clock, self.delay = world.store, world.clock, delay
        self.read_at: list[datetime] = []

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.store, name)

    async def read_all(self, after: int = 0, limit: int | None = None):  # noqa: ANN201
        self.read_at.append(self.clock.now())
        await self.clock.sleep(self.delay)
        return await self.store.read_all(after, limit)


class TestCStopDuringNotYetOpen:
    async def test_a_stop_pressed_while_the_pair_answers_not_yet_open_stops_the_retries_unsent(self) -> None:
        world = world_at(before_launch(), listings=[listing(open_delay_ms=10_000)])  # opens 10 s late
        tid = await world.scheduled_target()
        pressed_at = LAUNCH + timedelta(seconds=2)

        async def operator() -> None:
            await world.clock.sleep_until(pressed_at)
            await world.emergency_stop()("global", "market looks wrong", "ops")

        outcome, _ = await world.clock.run_together([world.execute_snipe()(tid), operator()])

        assert outcome.result is SnipeResult.REFUSED
        assert outcome.detail == "global emergency stop: market looks wrong"
        assert buys(world) == []
        target = await world.target(tid)
        assert target.status is TargetStatus.FAILED and target.failure == "global emergency stop: market looks wrong"
        records = await world.store.load(target_stream(tid))
        assert [r.event.type_name for r in records][-2:] == ["SnipeOrderSubmitted", "SnipeFailed"]
        # Seen by the next check between resends: the stop is read at most every 200 ms.
        assert pressed_at < records[-1].occurred_at <= pressed_at + 250 * MS
        assert outcome.attempts <= (2000 + 250) // 20 + 1

    async def test_the_stop_is_read_off_the_send_path_and_never_before_the_first_send(self) -> None:
        """With a database whose reads take 40 ms (two retry intervals), the first send still
        leaves at the launch instant, every resend still follows 20 ms after the reply before
        it, and the stop is read again about every 200 ms meanwhile."""
        world = world_at(before_launch(), listings=[listing(open_delay_ms=1_000)])
        tid = await world.scheduled_target()
        sends, store = TimedSends(world), SlowReads(world, timedelta(milliseconds=40))
        execute = ExecuteSnipe(store, sends, world.paper, world.traders, world.locks, world.clock,  # type: ignore[arg-type]
                               world.book, world.timing)

        [outcome] = await world.clock.run_together([execute(tid)])

        assert outcome.result is SnipeResult.FILLED
        assert sends.sent_at[0] == LAUNCH
        assert [b - a for a, b in itertools.pairwise(sends.sent_at)] == [20 * MS] * (len(sends.sent_at) - 1)
        assert outcome.fill is not None and outcome.fill.created_at == LAUNCH + 1000 * MS
        # No read between the last pre-launch check (300 ms ahead, a 40 ms read) and the first send.
        assert not [t for t in store.read_at if LAUNCH - 250 * MS < t <= LAUNCH]
        during_retries = [t for t in store.read_at if LAUNCH < t < LAUNCH + 1000 * MS]
        assert 3 <= len(during_retries) <= 5
        assert all(b - a >= 200 * MS for a, b in itertools.pairwise(during_retries))


class RefusingRenewals(InMemoryLockService):
    """A lock service that hands out leases but refuses to renew them (a lease lost to a lock
    server restart, or taken over while its holder was paused)."""

    async def renew(self, lease: Lease, ttl: timedelta) -> bool:
        return False


class CountingLocks(InMemoryLockService):
    """The in-memory lock service, noting when each renewal was asked for."""

    def __init__(self, clock) -> None:  # noqa: ANN001
        super().__init__(clock)
        self.renewed_at: list[datetime] = []

    async def renew(self, lease: Lease, ttl: timedelta) -> bool:
        self.renewed_at.append(self._clock.now())
        return await super().renew(lease, ttl)


class TestELeaseHeldWhileWaiting:
    async def test_a_snipe_started_hours_ahead_keeps_its_lease_and_a_second_executor_is_kept_out(self) -> None:
        """`sniper snipe --at` three hours ahead marks the target executing at once. The
        reconciliation (any worker's) meets it executing an hour before launch: the lease is
        still held, so it stands aside, and one buy goes out at the launch."""
        start = LAUNCH - timedelta(hours=3)
        world = world_at(start)
        tid = await world.scheduled_target()
        locks = CountingLocks(world.clock)
        first = ExecuteSnipe(world.store, world.paper, world.paper, world.traders, locks, world.clock, world.book,
                             world.timing)
        # Another process: its own trade book, the same lock service (Redis in production).
        second = ExecuteSnipe(world.store, world.paper, world.paper, world.traders, locks, world.clock, TradeBook(),
                              world.timing)

        async def reconciliation() -> object:
            await world.clock.sleep_until(LAUNCH - timedelta(hours=1))
            assert (await world.target(tid)).status is TargetStatus.EXECUTING
            return await second(tid)

        bought, stood_aside = await world.clock.run_together([first(tid), reconciliation()])

        assert stood_aside.result is SnipeResult.SKIPPED and stood_aside.detail == "another executor holds this snipe"
        assert bought.result is SnipeResult.FILLED and bought.fill is not None and bought.fill.created_at == LAUNCH
        assert world.order_calls() == [f"buy NEWUSDT 10 {(await world.target(tid)).client_order_id}"]
        # Renewed every third of the ttl (5 s), once more just before the last second before the
        # launch (the lease then holds for the first sends), none in that second.
        gaps = {b - a for a, b in itertools.pairwise(locks.renewed_at[:-1])}
        assert gaps == {timedelta(seconds=5)}
        assert locks.renewed_at[-1] == LAUNCH - timedelta(milliseconds=1050)

    async def test_an_executor_whose_lease_renewal_is_refused_stands_down_unsent(self) -> None:
        world = world_at(LAUNCH - timedelta(minutes=10))
        tid = await world.scheduled_target()
        execute = ExecuteSnipe(world.store, world.paper, world.paper, world.traders, RefusingRenewals(world.clock),
                               world.clock, world.book, world.timing)

        outcome = await execute(tid)

        assert outcome.result is SnipeResult.SKIPPED and "lost the lease" in outcome.detail
        assert world.order_calls() == []
        assert world.clock.now() < LAUNCH
        # Left executing: whoever holds the snipe now (or the reconciliation) resolves and sends it.
        assert (await world.target(tid)).status is TargetStatus.EXECUTING
        assert (await world.execute_snipe()(tid)).result is SnipeResult.FILLED
        assert len(buys(world)) == 1

    async def test_the_lease_is_renewed_between_resends_too(self) -> None:
        """A short ttl (3 s) and a pair opening 10 s late: a second executor trying 5 s after the
        launch finds the lease held, and the first buys."""
        timing = SnipeTiming(lease_ttl=timedelta(seconds=3), send_in_flight=timedelta(seconds=1))
        world = world_at(before_launch(), listings=[listing(open_delay_ms=10_000)], timing=timing)
        tid = await world.scheduled_target()
        second = ExecuteSnipe(world.store, world.paper, world.paper, world.traders, world.locks, world.clock,
                              TradeBook(), timing)

        async def later() -> object:
            await world.clock.sleep_until(LAUNCH + timedelta(seconds=5))
            return await second(tid)

        first_outcome, second_outcome = await world.clock.run_together([world.execute_snipe()(tid), later()])

        assert second_outcome.result is SnipeResult.SKIPPED
        assert second_outcome.detail == "another executor holds this snipe"
        assert first_outcome.result is SnipeResult.FILLED
        assert len(buys(world)) == 1

    async def test_an_executor_that_loses_its_lease_between_resends_stops_sending(self) -> None:
        world = world_at(before_launch(), listings=[listing(open_delay_ms=600_000)],
                         timing=SnipeTiming(lease_ttl=timedelta(seconds=3), send_in_flight=timedelta(seconds=1)))
        tid = await world.scheduled_target()
        execute = ExecuteSnipe(world.store, world.paper, world.paper, world.traders, RefusingRenewals(world.clock),
                               world.clock, world.book, world.timing)

        outcome = await execute(tid)

        assert outcome.result is SnipeResult.SKIPPED and "lost the lease" in outcome.detail
        # The first renewal falls due a second after the executor started (2 s before launch).
        assert world.clock.now() < LAUNCH + timedelta(milliseconds=300)
        assert (await world.target(tid)).status is TargetStatus.EXECUTING
        assert buys(world) == []
