"""One snipe, traced: worker tick -> use case -> exchange call, as one span tree, with the
metrics it leaves in the Prometheus view. On the paper exchange (virtual time) and on the
real MEXC adapter against the fake MEXC server (127.0.0.1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client.parser import text_string_to_metric_families

from adapters.clock import SystemClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryLockService, InMemoryTraderDirectory
from adapters.mexc.exchange import MexcExchange
from adapters.mexc.limits import RateLimiter
from adapters.paper.exchange import Fault
from adapters.telemetry import OtelTelemetry, configure_telemetry
from adapters.telemetry.instrument import InstrumentedExchange, InstrumentedListingFeed
from application import repository
from application.errors import NotYetOpen
from application.ports import ClockOffset, OrderReport, TraderSettings
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.target import SnipeTarget
from domain.values import ClientOrderId, Symbol
from tests.adapters.paper_support import LAUNCH
from tests.application.support import World, before_launch, coid_of, world_at
from tests.fakes.mexc_http import FakeMexcServer
from tests.mexc.support import NEW, client_for, new_symbol


@pytest.fixture
def traced() -> tuple[OtelTelemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    telemetry, shutdown = configure_telemetry("sniper-test", None, True, exporter)
    yield telemetry, exporter
    shutdown()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def samples(telemetry: OtelTelemetry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text, content_type = telemetry.render_metrics()
    assert content_type.startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def assert_snipe_tree(spans: tuple[ReadableSpan, ...], leaf: str) -> tuple[ReadableSpan, ReadableSpan, ReadableSpan]:
    [tick] = by_name(spans, "agent.tick")
    [use_case] = by_name(spans, "use_case.execute_snipe")
    buys = by_name(spans, leaf)
    assert buys, [s.name for s in spans]
    buy = buys[-1]
    assert tick.parent is None
    assert use_case.parent is not None and use_case.parent.span_id == tick.context.span_id
    assert all(b.parent is not None and b.parent.span_id == use_case.context.span_id for b in buys)
    assert {s.context.trace_id for s in spans} == {tick.context.trace_id}
    return tick, use_case, buy


class _NotOpenTwice:
    """The paper exchange behind a clock measured to 300 µs (so the snipe plans a bracket of sends
    around the open), refusing the first two sends as not open (10007); it opens for the third
    (the virtual clock moves to the launch). Each send notes the order spans and not-open counts
    the telemetry holds as it leaves."""

    def __init__(self, world: World, exporter: InMemorySpanExporter, telemetry: OtelTelemetry) -> None:
        self.inner, self.clock, self.exporter, self.telemetry = world.paper, world.clock, exporter, telemetry
        self.seen_at_send: list[tuple[int, float]] = []

    def __getattr__(self, name: str):  # noqa: ANN204 - everything else as the paper exchange
        return getattr(self.inner, name)

    async def prepare(self, symbol: Symbol) -> timedelta | None:
        await self.inner.prepare(symbol)
        return ClockOffset(timedelta(0), timedelta(microseconds=300), timedelta(microseconds=60))

    def seen_errors(self) -> float:
        return samples(self.telemetry).get(("sniper_exchange_errors_total", frozenset({("kind", "NotYetOpen")})), 0.0)

    async def place_market_buy(
        self, symbol: Symbol, quote_amount: Decimal, client_order_id: ClientOrderId
    ) -> OrderReport:
        self.seen_at_send.append(
            (len(by_name(self.exporter.get_finished_spans(), "mexc.place_market_buy")), self.seen_errors())
        )
        if len(self.seen_at_send) <= 2:
            raise NotYetOpen("MEXC 10007: symbol not support api", "10007")
        self.clock.set(max(self.clock.now(), LAUNCH))
        return await self.inner.place_market_buy(symbol, quote_amount, client_order_id)


class TestPaperSnipe:
    async def test_the_tick_use_case_and_order_spans_form_one_tree_and_the_metrics_count_it(self, traced) -> None:
        telemetry, exporter = traced
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        exchange = InstrumentedExchange(world.paper, telemetry, mode="paper")
        execute = ExecuteSnipe(world.store, exchange, world.paper, world.traders, world.locks, world.clock,
                               world.book, world.timing, telemetry)

        with telemetry.span("agent.tick", agent="strategy"):
            outcome = await execute(tid)

        assert outcome.result is SnipeResult.FILLED
        spans = exporter.get_finished_spans()
        tick, use_case, buy = assert_snipe_tree(spans, "mexc.place_market_buy")
        assert dict(tick.attributes) == {"agent": "strategy"}
        assert use_case.attributes["target_id"] == tid
        assert use_case.attributes["symbol"] == "NEWUSDT"
        assert use_case.attributes["result"] == "filled"
        assert buy.attributes["symbol"] == "NEWUSDT"
        assert buy.attributes["client_order_id"] == coid_of(tid).value
        assert buy.attributes["mode"] == "paper"
        assert buy.status.status_code is StatusCode.UNSET
        [prepare] = by_name(spans, "mexc.prepare")
        assert prepare.parent.span_id == use_case.context.span_id
        assert prepare.end_time <= buy.start_time  # prepared, then bought
        assert not any("key" in k.lower() or "secret" in k.lower() for s in spans for k in s.attributes)

        metrics = samples(telemetry)
        assert metrics[("sniper_orders_total", frozenset({("side", "buy"), ("mode", "paper")}))] == 1
        assert metrics[("sniper_fills_total", frozenset({("side", "buy"), ("mode", "paper")}))] == 1
        assert metrics[("sniper_snipe_latency_ms_count", frozenset({("mode", "paper")}))] == 1
        # Virtual time: the order is accepted at the launch instant, 0 ms late, in the lowest bucket.
        assert metrics[("sniper_snipe_latency_ms_bucket", frozenset({("mode", "paper"), ("le", "0.1")}))] == 1

    async def test_a_refused_order_is_an_error_on_its_span_and_counted_by_kind(self, traced) -> None:
        telemetry, exporter = traced
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        world.paper.faults.append(Fault.INSUFFICIENT_BALANCE)
        execute = ExecuteSnipe(world.store, InstrumentedExchange(world.paper, telemetry, mode="paper"), world.paper,
                               world.traders, world.locks, world.clock, world.book, world.timing, telemetry)

        with telemetry.span("agent.tick", agent="strategy"):
            outcome = await execute(tid)
        await asyncio.sleep(0)  # a failed order's span and count are made at the loop's next turn

        assert outcome.result is SnipeResult.FAILED
        _, use_case, buy = assert_snipe_tree(exporter.get_finished_spans(), "mexc.place_market_buy")
        assert buy.status.status_code is StatusCode.ERROR
        assert buy.attributes["error.type"] == "OrderRefused"
        [event] = [e for e in buy.events if e.name == "exception"]
        assert event.attributes["exception.type"].endswith("OrderRefused")
        assert use_case.status.status_code is StatusCode.UNSET  # the use case handled it: a result, not a crash
        assert use_case.attributes["result"] == "failed"
        metrics = samples(telemetry)
        assert metrics[("sniper_exchange_errors_total", frozenset({("kind", "OrderRefused")}))] == 1
        assert ("sniper_orders_total", frozenset({("side", "buy"), ("mode", "paper")})) not in metrics
        assert not any(name.startswith("sniper_snipe_latency_ms") for name, _ in metrics)

    async def test_after_a_not_open_refusal_the_next_send_leaves_before_the_refusals_telemetry_is_made(
        self, traced
    ) -> None:
        """In the bracket around the open the send after a 10007 leaves at once: the refused send's
        span and error count (a failed span made first held that send back 1.4 ms) come after it."""
        telemetry, exporter = traced
        world = world_at(before_launch())
        tid = await world.scheduled_target()
        refusing = _NotOpenTwice(world, exporter, telemetry)
        execute = ExecuteSnipe(world.store, InstrumentedExchange(refusing, telemetry, mode="paper"), world.paper,
                               world.traders, world.locks, world.clock, world.book, world.timing, telemetry)

        outcome = await execute(tid)
        await asyncio.sleep(0)

        assert outcome.result is SnipeResult.FILLED and outcome.not_open == 2 and outcome.attempts == 3
        # What each send found made of the sends before it: nothing, each time.
        assert refusing.seen_at_send == [(0, 0.0)] * 3
        buys = by_name(exporter.get_finished_spans(), "mexc.place_market_buy")
        refused = [b for b in buys if b.status.status_code is StatusCode.ERROR]
        assert len(buys) == 3 and len(refused) == 2
        for span in refused:
            [event] = span.events
            assert event.name == "exception" and event.attributes["exception.type"] == "NotYetOpen"
            assert "exception.stacktrace" not in event.attributes
            assert span.start_time <= event.timestamp == span.end_time
        assert refusing.seen_errors() == 2

    async def test_the_listing_feed_is_traced_and_the_adapter_extras_stay_reachable(self, traced) -> None:
        telemetry, exporter = traced
        world = world_at(before_launch())
        feed = InstrumentedListingFeed(world.paper, telemetry)
        with telemetry.span("agent.tick", agent="calendar"):
            entries = await feed.calendar()
            await feed.symbol_states()
        assert [e.symbol.code for e in entries] == ["NEWUSDT"]
        tick, calendar, states = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)
        assert (tick.name, calendar.name, states.name) == ("agent.tick", "mexc.calendar", "mexc.symbol_states")
        assert calendar.parent.span_id == tick.context.span_id == states.parent.span_id
        assert feed.calls is world.paper.calls  # what the wrapper does not define is the adapter's

    async def test_any_telemetry_port_gets_the_order_span_and_its_annotations(self) -> None:
        """Without OtelTelemetry's deferred spans the wrapper opens an ordinary span and annotates it."""
        events: list[tuple[str, ...]] = []

        class Recording:
            @contextmanager
            def span(self, name: str, **attributes: object) -> Iterator[None]:
                events.append(("open", name))
                yield
                events.append(("close", name))

            def annotate(self, **attributes: object) -> None:
                events.append(("annotate", *sorted(attributes)))

            def count(self, name: str, amount: int = 1, **attributes: object) -> None:
                events.append(("count", name))

            def observe(self, name: str, value: float, **attributes: object) -> None: ...

            def gauge(self, name: str, value: float, **attributes: object) -> None: ...

        world = world_at(before_launch())
        world.clock.set(LAUNCH)
        exchange = InstrumentedExchange(world.paper, Recording(), mode="paper")
        await exchange.place_market_buy(NEW, Decimal("10"), coid_of("t-x"))
        assert events == [("open", "mexc.place_market_buy"), ("annotate", "exchange_order_id", "order_status"),
                          ("close", "mexc.place_market_buy"), ("count", "sniper_orders_total")]

    async def test_an_exception_escaping_a_span_marks_it_failed_and_propagates(self, traced) -> None:
        telemetry, exporter = traced
        with pytest.raises(ValueError), telemetry.span("agent.tick", agent="calendar"):
            raise ValueError("bad tick")
        [span] = exporter.get_finished_spans()
        assert span.status.status_code is StatusCode.ERROR and "bad tick" in span.status.description
        assert [e.name for e in span.events] == ["exception"]


TARGET_ID = "t-trace-e2e"


@pytest.fixture
async def mexc_rig(traced) -> AsyncIterator[tuple[FakeMexcServer, ExecuteSnipe, OtelTelemetry, InMemorySpanExporter]]:
    telemetry, exporter = traced
    async with FakeMexcServer(symbols=[new_symbol()]) as server:
        limiter = RateLimiter(max_wait=0.5, telemetry=telemetry)
        async with client_for(server, order_timeout=0.5, timeout=1.0, limiter=limiter) as client:
            clock = SystemClock()
            store = InMemoryEventStore()
            exchange = InstrumentedExchange(MexcExchange(client, clock_samples=2), telemetry, mode="paper")
            execute = ExecuteSnipe(
                store, exchange, exchange, InMemoryTraderDirectory([TraderSettings("user-1")]),
                InMemoryLockService(clock), clock, TradeBook(), SnipeTiming(retry_interval=timedelta(milliseconds=10)),
                telemetry,
            )
            now = clock.now()
            cause = Cause(now, "corr-trace")
            target = SnipeTarget.create(TARGET_ID, "user-1", "coin-new", NEW, now, Decimal("10"), PRESETS["balanced"],
                                        Decimal("0.95"), False, cause)
            target.mark_ready("ready", Decimal("0.95"), 60, cause)
            target.schedule(now, now + timedelta(seconds=5), cause)
            await repository.save(store, target)
            yield server, execute, telemetry, exporter


class TestMexcSnipe:
    async def test_the_leaf_is_the_real_mexc_adapter_call_and_names_the_accepted_order(self, mexc_rig) -> None:
        server, execute, telemetry, exporter = mexc_rig
        with telemetry.span("agent.tick", agent="strategy"):
            outcome = await execute(TARGET_ID)

        assert outcome.result is SnipeResult.FILLED, outcome.detail
        spans = exporter.get_finished_spans()
        _, use_case, buy = assert_snipe_tree(spans, "mexc.place_market_buy")
        [order] = server.accepted_orders()
        assert buy.attributes["client_order_id"] == order.client_order_id
        assert buy.attributes["exchange_order_id"] == str(order.order_id)
        assert buy.attributes["quote_amount"] == "10"
        assert use_case.attributes["result"] == "filled"
        # The market order is followed to its fill by client order id, inside the same use case.
        assert all(q.parent.span_id == use_case.context.span_id for q in by_name(spans, "mexc.query_order"))
        metrics = samples(telemetry)
        assert metrics[("sniper_orders_total", frozenset({("side", "buy"), ("mode", "paper")}))] == 1
        latency_count = metrics[("sniper_snipe_latency_ms_count", frozenset({("mode", "paper")}))]
        latency_sum = metrics[("sniper_snipe_latency_ms_sum", frozenset({("mode", "paper")}))]
        assert latency_count == 1 and 0 < latency_sum < 5000

    async def test_waits_imposed_by_the_local_rate_budget_are_observed(self, traced, monkeypatch) -> None:
        telemetry, _ = traced
        now = [0.0]
        limiter = RateLimiter({"GET /api/v3/x": (1, 0.05)}, margin=0.0, max_wait=1.0, clock=lambda: now[0],
                              telemetry=telemetry)
        budget = limiter.budget("GET /api/v3/x")
        await limiter.acquire(budget, 1)  # under budget: no wait, nothing observed
        assert not any(n.startswith("sniper_rate_limit_wait_ms") for n, _ in samples(telemetry))

        real_sleep = asyncio.sleep

        async def virtual_sleep(seconds: float) -> None:
            now[0] += seconds
            await real_sleep(0)

        monkeypatch.setattr(asyncio, "sleep", virtual_sleep)
        await limiter.acquire(budget, 1)  # the window is full: waits until the first hit leaves it
        monkeypatch.undo()
        metrics = samples(telemetry)
        group = ("group", "GET /api/v3/x")
        assert metrics[("sniper_rate_limit_wait_ms_count", frozenset({group}))] == 1
        assert metrics[("sniper_rate_limit_wait_ms_sum", frozenset({group}))] == pytest.approx(50.0, abs=1.0)


class TestThroughTheSupervisor:
    async def test_the_supervisors_tick_is_the_root_of_the_snipes_tree(self, traced) -> None:
        """The real worker path: the supervisor ticks the strategy agent, which spawns the snipe."""
        from adapters.memory import InMemoryAgentStatusBoard
        from application.agents import StrategyAgent
        from application.supervisor import AgentSpec, Supervisor

        telemetry, exporter = traced
        world = world_at(before_launch(1))
        tid = await world.scheduled_target()
        execute = ExecuteSnipe(world.store, InstrumentedExchange(world.paper, telemetry, mode="paper"), world.paper,
                               world.traders, world.locks, world.clock, world.book, world.timing, telemetry)
        supervisor: Supervisor
        agent: StrategyAgent

        def build() -> StrategyAgent:
            nonlocal agent
            agent = StrategyAgent(execute, world.scheduler, world.scheduler, world.store, world.book, world.clock,
                                  world.timing, lambda work, name: supervisor.spawn(work, name))
            return agent

        supervisor = Supervisor([AgentSpec("strategy", build, timedelta(milliseconds=50))], world.clock,
                                InMemoryAgentStatusBoard(), telemetry=telemetry, wall_clock=SystemClock())
        running = asyncio.create_task(supervisor.run())
        for _ in range(2000):  # virtual time, advanced by the test
            await asyncio.sleep(0.001)
            if agent.outcomes:
                break
            world.clock.advance(timedelta(milliseconds=50))
        supervisor.stop()
        await asyncio.wait_for(running, 5)
        assert agent.outcomes and agent.outcomes[0].result is SnipeResult.FILLED
        spans = exporter.get_finished_spans()
        [use_case] = by_name(spans, "use_case.execute_snipe")
        ticks = {s.context.span_id: s for s in by_name(spans, "agent.tick")}
        root = ticks[use_case.parent.span_id]  # the tick that started the snipe
        assert root.parent is None and dict(root.attributes)["agent"] == "strategy"
        [buy] = by_name(spans, "mexc.place_market_buy")
        assert buy.parent.span_id == use_case.context.span_id
        assert buy.context.trace_id == use_case.context.trace_id == root.context.trace_id
        assert use_case.attributes["target_id"] == tid
