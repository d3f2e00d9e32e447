"""Many traders on one IP (issue 14): every REST call of every trader, the fee lookups after the fills
(myTrades, weight 10) too, draws from the IP's per-endpoint budget, one for the process and, through
Redis, one for every worker; a fee lookup waits for budget rather than being sent into a 429 (the fill
itself is reported at once: its fee then learnt after it, tests/mexc/test_fee_after_fill.py), yields to
urgent calls, and a 429 from MEXC holds every trader of the IP back for Retry-After (so nobody knocks
on into a 418 ban). Against the fake exchange, which enforces its budget per IP and endpoint: scaled
down (myTrades 40 per 1 s: four lookups) so that six traders cross it where fifty cross MEXC's."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from decimal import Decimal

import pytest

from adapters.mexc.exchange import MexcExchange
from adapters.mexc.limits import IP_LIMITS, RateLimiter, scope_of
from adapters.redis import redis_client
from adapters.redis.rate_windows import RedisRateWindows
from application.errors import RateLimited
from application.ports import OrderReport
from tests.adapters.redis_support import delete_prefixed
from tests.fakes.mexc_http import MY_TRADES, FakeMexcServer
from tests.mexc.support import NEW, client_for, coid, new_symbol

LOOKUPS = 4  # myTrades calls the scaled-down budget holds in one window
SMALL = {MY_TRADES: (10 * LOOKUPS, 1.0)}  # the fake's budget below, as our limiter knows it


def scaled_down(lookups: int = LOOKUPS) -> FakeMexcServer:
    """The fake, its myTrades budget `lookups` calls per 1 s."""
    return FakeMexcServer(symbols=[new_symbol()], endpoint_budgets={MY_TRADES: 10 * lookups}, window_seconds=1.0,
                          charge_fees=True)


async def buy_and_follow(exchange: MexcExchange, n: int) -> OrderReport:
    """A trader's snipe as ExecuteSnipe makes it: the buy (MEXC's reply has no fill), then the query
    that finds it filled, with its fee read from myTrades when there is budget for it now; else the
    fill is recorded without it and the fee learnt right after (`order_fee`, waiting for budget)."""
    placed = await exchange.place_market_buy(NEW, Decimal("10"), coid(n))
    found = await exchange.query_order(NEW, placed.client_order_id)
    assert found is not None
    if found.fee_asset == "":
        fee = await exchange.order_fee(NEW, found.exchange_order_id, found.side, found.executed_quantity)
        if fee is not None:
            found = replace(found, fee=fee[0], fee_asset=fee[1])
    return found


async def traders(stack: AsyncExitStack, server: FakeMexcServer, count: int,
                  ip: RateLimiter | None) -> list[MexcExchange]:
    """`count` traders, each with its own client (its own key's budgets); `ip`: the IP's budgets they
    all draw from, or None for each its own (how every client counted before: alone)."""
    made = []
    for _ in range(count):
        own = ip if ip is not None else RateLimiter(SMALL, scope=scope_of(server.base_url))
        client = await stack.enter_async_context(client_for(server, limiter=RateLimiter(SMALL), ip_limiter=own))
        made.append(MexcExchange(client, share=None))
    return made


def fee_known(report: OrderReport) -> bool:
    return report.fee_asset == "NEW" and report.fee > 0


async def test_counted_alone_the_traders_fee_lookups_draw_429s() -> None:
    """The reproduction: each trader's client counting only its own calls (as before), six fee lookups
    cross the IP's myTrades budget and the exchange answers 429."""
    async with scaled_down() as server, AsyncExitStack() as stack:
        exchanges = await traders(stack, server, 6, ip=None)
        reports = await asyncio.gather(*(buy_and_follow(e, n) for n, e in enumerate(exchanges)))

    assert 429 in server.statuses(MY_TRADES)
    assert all(r.status.is_final and r.executed_quantity > 0 for r in reports)  # the fills themselves are known


async def test_sharing_the_ips_budget_the_fee_lookups_wait_and_draw_no_429() -> None:
    async with scaled_down() as server, AsyncExitStack() as stack:
        ip = RateLimiter(SMALL, scope=scope_of(server.base_url))
        exchanges = await traders(stack, server, 6, ip)
        reports = await asyncio.gather(*(buy_and_follow(e, n) for n, e in enumerate(exchanges)))

    assert server.statuses(MY_TRADES) == [200] * 6  # two of them waited for the window: none was refused
    assert all(fee_known(r) for r in reports)
    assert server.hits[MY_TRADES] == 6


async def test_a_429_holds_every_trader_of_the_ip_back_for_retry_after_and_the_lookup_is_asked_again() -> None:
    """Our budget thinks more is allowed than the exchange does (another program on the IP, say): the
    third lookup draws a 429 (the exchange takes two per second here). The fourth trader, coming during
    Retry-After, waits it out instead of knocking (a knock there is a violation; enough of them, a 418
    ban of the IP); the refused lookup is asked again after it. One 429, no 418, every fee learnt."""
    async with scaled_down(lookups=2) as server, AsyncExitStack() as stack:
        ip = RateLimiter(scope=scope_of(server.base_url))  # MEXC's real budget: 500 per 10 s
        first, second, third, fourth = await traders(stack, server, 4, ip)
        reports = [await buy_and_follow(first, 0), await buy_and_follow(second, 1)]
        refused = asyncio.ensure_future(buy_and_follow(third, 2))
        async with asyncio.timeout(5):
            while 429 not in server.statuses(MY_TRADES):
                await asyncio.sleep(0.002)
        reports.append(await buy_and_follow(fourth, 3))
        reports.append(await refused)

    assert server.statuses(MY_TRADES) == [200, 200, 429, 200, 200]
    assert all(fee_known(r) for r in reports)


async def test_a_fee_lookup_held_back_longer_than_it_may_wait_is_not_sent_and_the_fill_is_still_reported() -> None:
    async with scaled_down() as server, AsyncExitStack() as stack:
        [exchange] = await traders(stack, server, 1, RateLimiter(scope=scope_of(server.base_url)))
        exchange.client.ip_limiter.penalize(MY_TRADES, 120.0)  # MEXC said Retry-After 120 s on myTrades
        started = time.monotonic()
        report = await buy_and_follow(exchange, 1)

    assert time.monotonic() - started < 5.0  # refused at once: waiting 120 s is longer than a lookup may wait
    assert report.status.is_final and report.executed_quantity > 0 and not fee_known(report)
    assert server.hits[MY_TRADES] == 0


async def test_every_client_of_one_exchange_draws_from_the_process_ip_budget() -> None:
    async with scaled_down() as server, scaled_down() as other:
        a, b = client_for(server), client_for(server, api_key="another-key")
        c = client_for(other)
        try:
            assert a.ip_limiter is b.ip_limiter is IP_LIMITS.for_url(server.base_url)
            assert c.ip_limiter is not a.ip_limiter
            assert a.limiter is not b.limiter  # each key counts its own calls too (MEXC: per UID)
        finally:
            for client in (a, b, c):
                await client.aclose()


async def test_a_background_call_yields_to_an_urgent_one_waiting_for_the_same_budget() -> None:
    limiter = RateLimiter({"GET /x": (2, 0.3)}, margin=0.0, max_wait=1.0)
    budget = limiter.budget("GET /x")
    await limiter.acquire(budget, 1)
    done: list[str] = []

    async def call(name: str, weight: int, background: bool) -> None:
        await limiter.acquire(budget, weight, background=background)
        done.append(name)

    urgent = asyncio.ensure_future(call("urgent", 2, background=False))  # needs the whole budget: waits
    await asyncio.sleep(0.05)
    await call("background", 1, background=True)  # one unit is free, but the urgent call is waiting
    await urgent
    assert done == ["urgent", "background"]


async def test_a_background_call_waits_up_to_its_bound_and_no_longer() -> None:
    limiter = RateLimiter({"GET /x": (1, 0.2)}, margin=0.0, max_wait=0.05, background_wait=1.0)
    budget = limiter.budget("GET /x")
    await limiter.acquire(budget, 1)
    with pytest.raises(RateLimited):
        await limiter.acquire(budget, 1)  # urgent: the window frees in 0.2 s, more than it may wait
    await limiter.acquire(budget, 1, background=True)  # background: waits the window out
    limiter.penalize("GET /x", 5.0)  # a 429 with Retry-After 5 s
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(budget, 1, background=True)
    assert info.value.code == "local-budget" and time.monotonic() - started < 0.5  # refused at once, not sent


# --- across worker processes (Redis) ------------------------------------------------------


@pytest.fixture
async def shared_prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"sniper-test-{secrets.token_hex(6)}"
    yield prefix
    client = redis_client(redis_url)
    try:
        await delete_prefixed(client, prefix)
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_two_workers_share_the_ips_budget_through_redis(redis_url: str, shared_prefix: str) -> None:
    """Two worker processes (each its own IP limiter and Redis client) with three traders each: six
    lookups against a budget of four draw no 429, the last two waiting for the window."""
    one, two = redis_client(redis_url), redis_client(redis_url)
    try:
        async with scaled_down() as server, AsyncExitStack() as stack:
            workers = [RateLimiter(SMALL, scope=scope_of(server.base_url), shared=RedisRateWindows(r, shared_prefix))
                       for r in (one, two)]
            exchanges = [*await traders(stack, server, 3, workers[0]), *await traders(stack, server, 3, workers[1])]
            reports = await asyncio.gather(*(buy_and_follow(e, n) for n, e in enumerate(exchanges)))
    finally:
        await one.aclose()
        await two.aclose()

    assert server.statuses(MY_TRADES) == [200] * 6
    assert all(fee_known(r) for r in reports)


@pytest.mark.redis
async def test_a_429_seen_by_one_worker_holds_the_other_back(redis_url: str, shared_prefix: str) -> None:
    one, two = redis_client(redis_url), redis_client(redis_url)
    try:
        first = RateLimiter(scope="mexc", shared=RedisRateWindows(one, shared_prefix))
        second = RateLimiter(scope="mexc", shared=RedisRateWindows(two, shared_prefix))
        first.penalize(MY_TRADES, 0.6)  # a 429 with Retry-After 0.6 s, in the first worker
        async with asyncio.timeout(2):
            while not await one.exists(f"{shared_prefix}:mexc-ip:mexc:{MY_TRADES}:block"):
                await asyncio.sleep(0.01)
        with pytest.raises(RateLimited):
            await second.acquire(second.budget(MY_TRADES), 10)  # urgent: 0.6 s is more than it waits
        started = time.monotonic()
        await second.acquire(second.budget(MY_TRADES), 10, background=True)  # waits the block out
        assert time.monotonic() - started >= 0.3
        await second.acquire(second.budget("GET /api/v3/order"), 2)  # other groups are not held back
    finally:
        await one.aclose()
        await two.aclose()


async def test_with_the_shared_windows_unreachable_each_process_counts_alone() -> None:
    """Redis down (nothing listens on this port of ours): calls go on, counted by this process alone,
    and only one in a while pays the wait for Redis's answer."""
    unreachable = redis_client("redis://127.0.0.1:19299/0")
    try:
        limiter = RateLimiter({"GET /x": (3, 10.0)}, shared=RedisRateWindows(unreachable, "sniper-test"))
        budget = limiter.budget("GET /x")
        for _ in range(3):
            await limiter.acquire(budget, 1)
        assert budget.window.used == 3
        started = time.monotonic()
        with pytest.raises(RateLimited):
            await limiter.acquire(budget, 1)  # this process's own count still holds the budget
        assert time.monotonic() - started < 0.1
    finally:
        await unreachable.aclose()
