"""The rate limiter and the circuit breaker: exact per-endpoint windows with MEXC's weights,
waiting rather than exceeding, Retry-After honoured per endpoint group, a budget cut on 429
that grows back slowly, and a breaker that opens on a storm, probes once, and closes again."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import pytest

from adapters.mexc.errors import CircuitOpen
from adapters.mexc.limits import (
    BreakerState,
    CircuitBreaker,
    CircuitBreakers,
    EndpointBudget,
    RateLimiter,
    SlidingWindow,
    weight_of,
)
from application.errors import RateLimited
from tests.fakes.mexc_http import DEPTH, PING, TICKER_PRICE, FakeMexcServer, Fault, FaultKind
from tests.mexc.support import client_for, new_symbol


class FakeTime:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_weights_follow_facts_md() -> None:
    assert weight_of("GET", "/api/v3/exchangeInfo") == 10
    assert weight_of("GET", "/api/v3/order") == 2
    assert weight_of("POST", "/api/v3/order") == 1
    assert weight_of("GET", "/api/v3/openOrders") == 3
    assert weight_of("GET", "/api/v3/account") == 10
    assert weight_of("GET", "/api/v3/ticker/price", all_symbols=True) == 2
    assert weight_of("GET", "/api/v3/ticker/24hr", all_symbols=True) == 40
    assert weight_of("GET", "/api/v3/somethingNew") == 1


def test_the_sliding_window_is_exact() -> None:
    window = SlidingWindow(5, 1.0)
    for i in range(5):
        assert window.wait_for(1, 100.0 + i / 10, 5) == 0.0
        window.take(1, 100.0 + i / 10)
    assert window.wait_for(1, 100.5, 5) == pytest.approx(0.5)  # the first leaves the window at 101.0
    assert window.wait_for(1, 101.0, 5) == 0.0
    assert window.wait_for(3, 101.0, 5) == pytest.approx(0.2)  # needs two more slots: the second leaves at 101.1


def test_weighted_budget_per_endpoint() -> None:
    clock = FakeTime()
    budget = EndpointBudget("GET /api/v3/exchangeInfo", budget=500, seconds=10.0)
    taken = sum(1 for _ in range(60) if budget.try_take(10, clock()) == 0.0)
    assert taken == 50  # 500 / weight 10


def test_a_429_blocks_the_group_cuts_the_budget_and_it_grows_back_slowly() -> None:
    clock = FakeTime()
    budget = EndpointBudget("GET /api/v3/depth", budget=500, seconds=10.0, recovery=50.0)
    budget.penalize(2.0, clock())
    assert budget.try_take(1, clock()) == pytest.approx(2.0)  # Retry-After in force
    clock.now += 2.0
    assert budget.limit(clock()) == 250  # halved
    clock.now += 10.0
    assert budget.limit(clock()) == 350  # +10 per second (500 over 50 s)
    clock.now += 100.0
    assert budget.limit(clock()) == 500
    assert budget.try_take(1, clock()) == 0.0


def test_the_breaker_opens_probes_once_and_closes() -> None:
    clock = FakeTime()
    breaker = CircuitBreaker("POST /api/v3/order", failure_threshold=3, cool_down=1.0, max_cool_down=4.0, clock=clock)
    for _ in range(3):
        assert breaker.before_call() is False
        breaker.on_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen) as info:
        breaker.before_call()
    assert info.value.retry_after == timedelta(seconds=1.0)
    assert isinstance(info.value, RateLimited)  # never AmbiguousOutcome: it was not sent
    clock.now += 1.0
    assert breaker.before_call() is True  # the one probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller while the probe is out
    breaker.on_failure()
    assert breaker.state is BreakerState.OPEN and breaker.cool_down == 2.0
    clock.now += 2.0
    assert breaker.before_call() is True
    breaker.on_abandon()  # the probe never went out: another may try
    assert breaker.before_call() is True
    breaker.on_success()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0 and breaker.cool_down == 1.0
    assert list(breaker.transitions) == [
        (BreakerState.CLOSED, BreakerState.OPEN), (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.OPEN), (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


async def test_the_fast_path_costs_microseconds() -> None:
    limiter = RateLimiter(default_budget=10**9)
    budget = limiter.budget("POST /api/v3/order")
    breaker = CircuitBreakers().breaker("POST /api/v3/order")
    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        breaker.before_call()
        await limiter.acquire(budget, 1)
    per_call = (time.perf_counter() - started) / n
    assert per_call < 50e-6  # typically 1-3 µs; the bound is generous on purpose


async def test_a_429_is_rate_limited_and_retry_after_is_honoured(server: FakeMexcServer) -> None:
    server.inject(Fault(FaultKind.RATE_LIMITED, TICKER_PRICE, retry_after="0.4"))
    async with client_for(server, limiter=RateLimiter(max_wait=0.1)) as c:
        with pytest.raises(RateLimited) as info:
            await c.ticker_price("NEWUSDT")
        limited_at = time.monotonic()
        assert info.value.code == "429"
        assert info.value.retry_after == timedelta(seconds=0.4)
        # Within Retry-After the limiter refuses locally: the exchange sees nothing more.
        with pytest.raises(RateLimited) as local:
            await c.ticker_price("NEWUSDT")
        assert local.value.code == "local-budget"
        assert server.hits[TICKER_PRICE] == 1
        # Other endpoint groups are not held back.
        assert (await c.depth("NEWUSDT")).asks
        # Close to the end of the block the limiter waits the rest out, then sends.
        await asyncio.sleep(0.35)
        assert await c.ticker_price("NEWUSDT")
        assert time.monotonic() - limited_at >= 0.39
        assert server.statuses(TICKER_PRICE) == [429, 200]
        budget = c.endpoint("GET", "/api/v3/ticker/price").budget
        assert budget.limit(time.monotonic()) < budget.base  # cut, growing back


async def test_the_limiter_waits_rather_than_exceed_the_budget() -> None:
    async with FakeMexcServer(symbols=[new_symbol()], endpoint_budgets={PING: 3}, window_seconds=0.25) as server:
        # Same budget and window as the exchange, plus a margin for the network's jitter.
        limiter = RateLimiter({PING: (3, 0.25)}, max_wait=1.0, margin=0.05)
        async with client_for(server, limiter=limiter) as c:
            started = time.monotonic()
            for _ in range(7):
                await c.ping()
            elapsed = time.monotonic() - started
    assert server.statuses(PING) == [200] * 7  # never a 429
    assert elapsed >= 0.55  # 3 + 3 + 1: two waits of a window and its margin


async def test_abuse_gets_418_which_blocks_every_endpoint() -> None:
    async with FakeMexcServer(symbols=[new_symbol()], endpoint_budgets={PING: 1}, ban_after=2, ban_seconds=7) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as raw:
            statuses = [(await raw.get("/api/v3/ping")).status_code for _ in range(4)]
        assert statuses == [200, 429, 429, 418]
        async with client_for(server) as c:
            with pytest.raises(RateLimited) as info:
                await c.depth("NEWUSDT")
            assert info.value.code == "418"
            assert info.value.retry_after == timedelta(seconds=7)
            with pytest.raises(RateLimited):
                await c.ping()  # blocked locally too: a ban is not per endpoint
            with pytest.raises(RateLimited):
                await c.depth("NEWUSDT")
        assert server.hits[DEPTH] == 1


async def test_a_429_storm_trips_the_breaker_and_recovers_through_half_open(server: FakeMexcServer) -> None:
    server.inject(Fault(FaultKind.RATE_LIMITED, TICKER_PRICE, times=10**6, retry_after="0.02"))
    breakers = CircuitBreakers(failure_threshold=3, cool_down=0.1, max_cool_down=0.2)
    async with client_for(server, breakers=breakers, limiter=RateLimiter(max_wait=0.05, recovery=0.5)) as c:
        attempts, refusals, storm_ends = 0, [], time.monotonic() + 0.6
        price = None
        while price is None:
            if time.monotonic() >= storm_ends:
                server.clear_faults()
            attempts += 1
            assert attempts < 1000
            try:
                price = await c.ticker_price("NEWUSDT")
            except RateLimited as exc:  # CircuitOpen is one; nothing else may escape
                refusals.append(type(exc).__name__)
                await asyncio.sleep(min(exc.retry_after.total_seconds(), 0.05))
        breaker = c.endpoint("GET", "/api/v3/ticker/price").breaker
        assert breaker.state is BreakerState.CLOSED
        transitions = list(breaker.transitions)
        assert transitions[0] == (BreakerState.CLOSED, BreakerState.OPEN)
        assert (BreakerState.HALF_OPEN, BreakerState.OPEN) in transitions  # probes during the storm failed
        assert transitions[-1] == (BreakerState.HALF_OPEN, BreakerState.CLOSED)
        assert "CircuitOpen" in refusals
        assert server.hits[TICKER_PRICE] < attempts  # failing fast kept calls off the exchange
        # The budget was cut and grows back within the (short, for the test) recovery time.
        budget = c.endpoint("GET", "/api/v3/ticker/price").budget
        await asyncio.sleep(0.6)
        assert budget.limit(time.monotonic()) == budget.base
