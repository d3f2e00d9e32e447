"""End to end: ExecuteSnipe (the application's use case) on MexcExchange against the fake
exchange, in real time on 127.0.0.1. One target, at most one order, whatever the wire does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.clock import SystemClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryLockService, InMemoryTraderDirectory
from adapters.mexc.exchange import MexcExchange
from adapters.mexc.rest import MexcRestClient
from application import repository
from application.ports import OrderStatus, TraderSettings
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.snipe import ExecuteSnipe, SnipeOutcome, SnipeResult
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.target import SnipeTarget, TargetStatus, target_stream
from tests.fakes.mexc_http import ORDER, QUERY_ORDER, FakeMexcServer, Fault, FaultKind
from tests.mexc.support import NEW, client_for, new_symbol

TARGET_ID = "t-mexc-e2e"
RETRY = timedelta(milliseconds=10)


@dataclass
class Rig:
    server: FakeMexcServer
    client: MexcRestClient
    store: InMemoryEventStore
    clock: SystemClock
    execute: ExecuteSnipe

    async def schedule(self, quote: Decimal = Decimal("10"), start_in: timedelta = timedelta(0),
                       window: timedelta = timedelta(seconds=5)) -> None:
        now = self.clock.now()
        execute_at = now + start_in
        cause = Cause(now, "corr-e2e")
        target = SnipeTarget.create(TARGET_ID, "user-1", "coin-new", NEW, execute_at, quote, PRESETS["balanced"],
                                    Decimal("0.95"), False, cause)
        target.mark_ready("ready", Decimal("0.95"), 60, cause)
        target.schedule(execute_at, execute_at + window, cause)
        await repository.save(self.store, target)

    async def target(self) -> SnipeTarget:
        return await repository.get(self.store, SnipeTarget, target_stream(TARGET_ID))


@asynccontextmanager
async def rig_on(order_timeout: float, skew_ms: int = 0) -> AsyncIterator[Rig]:
    async with (
        FakeMexcServer(symbols=[new_symbol()], skew_ms=skew_ms) as server,
        client_for(server, order_timeout=order_timeout, timeout=1.0) as client,
    ):
        clock = SystemClock()
        store = InMemoryEventStore()
        exchange = MexcExchange(client, clock_samples=3)
        execute = ExecuteSnipe(
            store, exchange, exchange, InMemoryTraderDirectory([TraderSettings("user-1")]),
            InMemoryLockService(clock), clock, TradeBook(), SnipeTiming(retry_interval=RETRY),
        )
        yield Rig(server, client, store, clock, execute)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    # The order timeout is short so the timeout faults stay fast.
    async with rig_on(order_timeout=0.25) as made:
        yield made


def assert_filled(outcome: SnipeOutcome) -> None:
    assert outcome.result is SnipeResult.FILLED, outcome.detail
    assert outcome.fill is not None and outcome.fill.status is OrderStatus.FILLED


async def test_a_pair_opening_200ms_after_the_executor_starts_is_bought_on_the_first_attempt_after_open(
    rig: Rig,
) -> None:
    await rig.schedule()
    opens_at = rig.server.open_in("NEWUSDT", 0.2)
    outcome = await rig.execute(TARGET_ID)

    assert_filled(outcome)
    arrivals = rig.server.order_arrivals
    assert outcome.attempts == len(arrivals)
    after_open = [a for a in arrivals if a.server_ms is not None and a.server_ms >= opens_at]
    before_open = arrivals[: len(arrivals) - len(after_open)]
    assert before_open and all(a.outcome == "10007" for a in before_open)
    assert [a.outcome for a in after_open] == ["accepted"]  # the first attempt after open filled
    assert after_open[0].server_ms - opens_at < 250  # generous: retry interval 10 ms + a local round trip
    [order] = rig.server.accepted_orders()
    assert order.orig_quote_qty == Decimal("10")
    assert all(a.client_order_id == order.client_order_id for a in arrivals)  # one id for every attempt

    target = await rig.target()
    assert target.status is TargetStatus.FILLED
    assert target.fill is not None
    assert (target.fill.quantity, target.fill.quote_spent, target.fill.price) == (
        Decimal("33.33"), Decimal("9.999"), Decimal("0.3"),
    )


async def test_a_timeout_after_accept_leaves_exactly_one_order_and_a_filled_target(rig: Rig) -> None:
    await rig.schedule()
    rig.server.inject(Fault(FaultKind.TIMEOUT_AFTER_ACCEPT, ORDER, delay=1.0))
    outcome = await rig.execute(TARGET_ID)

    assert_filled(outcome)
    assert len(rig.server.accepted_orders()) == 1
    assert [a.outcome for a in rig.server.order_arrivals] == ["fault:timeout-after-accept"]  # never resent
    assert rig.server.hits[QUERY_ORDER] >= 1  # resolved by client order id
    assert (await rig.target()).status is TargetStatus.FILLED


async def test_a_timeout_before_accept_leaves_exactly_one_order_too(rig: Rig) -> None:
    # A window longer than the 10 s visibility grace: the resend waits all of it (real seconds).
    await rig.schedule(window=timedelta(seconds=13))
    rig.server.inject(Fault(FaultKind.TIMEOUT_BEFORE_ACCEPT, ORDER, delay=1.0))
    outcome = await rig.execute(TARGET_ID)

    assert_filled(outcome)
    # Lost on the way: the query found nothing for the whole grace, so the same client id was sent again.
    assert [a.outcome for a in rig.server.order_arrivals] == ["fault:timeout-before-accept", "accepted"]
    assert len(rig.server.accepted_orders()) == 1
    assert (await rig.target()).status is TargetStatus.FILLED


async def test_a_5xx_after_accept_is_resolved_by_query_not_resent(rig: Rig) -> None:
    await rig.schedule()
    rig.server.inject(Fault(FaultKind.SERVER_ERROR, ORDER, status=502, accept=True))
    outcome = await rig.execute(TARGET_ID)

    assert_filled(outcome)
    assert rig.server.hits[ORDER] == 1 and len(rig.server.accepted_orders()) == 1


async def test_rate_limited_sends_wait_and_still_buy_once(rig: Rig) -> None:
    await rig.schedule()
    rig.server.inject(Fault(FaultKind.RATE_LIMITED, ORDER, times=2, retry_after="0.05"))
    outcome = await rig.execute(TARGET_ID)

    assert_filled(outcome)
    assert [a.outcome for a in rig.server.order_arrivals] == ["fault:429", "fault:429", "accepted"]
    assert len(rig.server.accepted_orders()) == 1


async def test_insufficient_balance_fails_the_target_with_the_reason(rig: Rig) -> None:
    await rig.schedule()
    rig.server.balances["USDT"] = Decimal("5")
    outcome = await rig.execute(TARGET_ID)

    assert outcome.result is SnipeResult.FAILED
    assert "10101" in outcome.detail or "Insufficient balance" in outcome.detail
    assert rig.server.hits[ORDER] == 1  # fail fast: no retries of a final refusal
    assert (await rig.target()).status is TargetStatus.FAILED


async def test_market_orders_disabled_fails_fast(rig: Rig) -> None:
    await rig.schedule()
    rig.server.symbols["NEWUSDT"].market_orders = False
    outcome = await rig.execute(TARGET_ID)

    assert outcome.result is SnipeResult.FAILED and "30019" in outcome.detail
    assert rig.server.hits[ORDER] == 1


async def test_two_executors_at_once_still_place_one_order(rig: Rig) -> None:
    await rig.schedule(start_in=timedelta(milliseconds=50))
    rig.server.open_in("NEWUSDT", 0.1)
    first, second = await asyncio.gather(rig.execute(TARGET_ID), rig.execute(TARGET_ID))
    assert sorted(o.result.value for o in (first, second)) == ["filled", "skipped"]
    assert len(rig.server.accepted_orders()) == 1


async def test_an_order_briefly_invisible_after_a_timeout_is_resolved_as_the_one_fill() -> None:
    """FACTS.md: a filled market order may briefly answer "not found". The resend after that
    "not found" is refused as a duplicate client id (OrderAlreadyExists), which is resolved
    by query once the order shows: one order, a filled target, no rejection recorded."""
    async with (
        FakeMexcServer(symbols=[new_symbol()], order_visibility_delay=0.3) as server,
        client_for(server, order_timeout=0.25) as client,
    ):
        clock = SystemClock()
        store = InMemoryEventStore()
        exchange = MexcExchange(client, clock_samples=2)
        execute = ExecuteSnipe(store, exchange, exchange, InMemoryTraderDirectory([TraderSettings("user-1")]),
                               InMemoryLockService(clock), clock, TradeBook(), SnipeTiming(retry_interval=RETRY))
        rig = Rig(server, client, store, clock, execute)
        await rig.schedule()
        server.inject(Fault(FaultKind.TIMEOUT_AFTER_ACCEPT, ORDER, delay=1.0))
        outcome = await execute(TARGET_ID)

        assert_filled(outcome)
        assert len(server.accepted_orders()) == 1
        outcomes = {a.outcome for a in server.order_arrivals}
        assert outcomes <= {"fault:timeout-after-accept", "-2010"}  # every resend refused as a duplicate
        assert (await rig.target()).status is TargetStatus.FILLED



@pytest.mark.parametrize("kind", [FaultKind.MALFORMED_JSON])
async def test_a_malformed_exchange_info_places_no_order_and_says_why(rig: Rig, kind: FaultKind) -> None:
    """Rules read from a garbled symbol list would be guesses: the target fails with the
    reason, nothing is sent, nothing is raised."""
    from tests.fakes.mexc_http import EXCHANGE_INFO

    rig.server.inject(Fault(kind, EXCHANGE_INFO, times=20))
    await rig.schedule()
    outcome = await rig.execute(TARGET_ID)
    assert outcome.result is SnipeResult.FAILED and "unreadable" in outcome.detail
    assert rig.server.accepted_orders() == []
    assert (await rig.target()).status is TargetStatus.FAILED


@pytest.mark.parametrize("kind", [FaultKind.SERVER_ERROR, FaultKind.CORRUPT_BODY])
async def test_an_exchange_info_outage_does_not_cost_the_snipe(rig: Rig, kind: FaultKind) -> None:
    """A 5xx or a transfer garbled on the wire is passing trouble, not data we misread: the
    order goes out as asked, once, and the exchange judges it."""
    from tests.fakes.mexc_http import EXCHANGE_INFO

    rig.server.inject(Fault(kind, EXCHANGE_INFO, times=20, status=503))
    await rig.schedule()
    outcome = await rig.execute(TARGET_ID)
    assert_filled(outcome)
    assert len(rig.server.accepted_orders("NEWUSDT")) == 1


@pytest.mark.parametrize("skew_ms", [400, -300])
async def test_the_order_goes_out_when_mexcs_clock_reads_the_launch_not_ours(skew_ms: int) -> None:
    """MEXC's clock is ahead (or behind) ours: the launch is its instant. The first send arrives
    when the exchange's clock reads the launch, measured by the clock sync ahead of it, instead of
    `skew_ms` late (or early, burning retries on 'not yet open')."""
    async with rig_on(order_timeout=1.0, skew_ms=skew_ms) as rig:
        await rig.schedule(start_in=timedelta(seconds=1))
        # The calendar announces the launch as a time of day; the exchange opens the pair when
        # ITS clock reads it: skew_ms before (or after) ours does.
        launch = (await rig.target()).execute_at
        assert launch is not None
        opens_at_ms = int(launch.timestamp() * 1000)
        rig.server.symbols["NEWUSDT"].opens_at_ms = opens_at_ms
        outcome = await rig.execute(TARGET_ID)
        server = rig.server

    assert_filled(outcome)
    first = server.order_arrivals[0]
    assert first.server_ms is not None
    # On the exchange's clock the first send lands just after its open (a local round trip and the
    # clock sync's precision), never skew_ms away from it.
    assert -50 <= first.server_ms - opens_at_ms < 60, (first.server_ms - opens_at_ms, skew_ms)
    assert outcome.attempts <= 6
