"""(b) Open to first accepted buy: each round lists a fresh pair on the fake server that opens at
an announced instant a little ahead (an exact millisecond of server time, as MEXC announces
it); before that the server answers 10007. The figure is the server's arrival stamp of the
first accepted order minus the open instant on the same perf_counter axis.

Ours is the product's path: ExecuteSnipe (risk checks, MexcExchange.prepare, the target
recorded as submitted, SystemClock.sleep_until(launch), then place_market_buy retried on
NotYetOpen every `retry_interval`), on a target scheduled for the announced launch.

ccxt's is the script a user would write: load_markets() ahead, asyncio.sleep to the
announced launch, then create_order(market buy by cost) retried at once while MEXC answers
10007 (ccxt raises BadSymbol for it), rate limiter off.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async

from adapters.clock import SystemClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryLockService, InMemoryTraderDirectory
from adapters.mexc.exchange import MexcExchange
from adapters.mexc.fake.http import FakeMexcServer
from application import repository
from application.ports import TraderSettings
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from bench.rig import CCXT, OURS, QUOTE_AMOUNT, Arrivals, fake_symbol, wall_minus_perf_ns
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.target import SnipeTarget
from domain.values import Symbol

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WINDOW = timedelta(seconds=5)  # the snipe window after launch (both sides give up after it)
_rounds = itertools.count(1)


@dataclass
class SnipeResults:
    samples: dict[str, list[int]] = field(default_factory=lambda: {OURS: [], CCXT: []})
    attempts: dict[str, list[int]] = field(default_factory=lambda: {OURS: [], CCXT: []})
    failures: dict[str, list[str]] = field(default_factory=lambda: {OURS: [], CCXT: []})


def _open_pair(server: FakeMexcServer, lead: float) -> tuple[Symbol, int]:
    base = f"BN{next(_rounds)}"
    launch_ms = server.now_ms() + int(lead * 1000)
    server.add_symbol(fake_symbol(base, launch_ms))
    return Symbol(base, "USDT"), launch_ms


async def _ours_round(exchange: MexcExchange, symbol: Symbol, launch_ms: int, timing: SnipeTiming) -> tuple[bool, str]:
    clock = SystemClock()
    store = InMemoryEventStore()
    execute = ExecuteSnipe(store, exchange, exchange, InMemoryTraderDirectory([TraderSettings("user-1")]),
                           InMemoryLockService(clock), clock, TradeBook(), timing)
    launch = EPOCH + timedelta(milliseconds=launch_ms)
    target_id = f"bench-{symbol.base.lower()}"
    cause = Cause(clock.now(), "bench")
    target = SnipeTarget.create(target_id, "user-1", f"coin-{symbol.base}", symbol, launch, QUOTE_AMOUNT,
                                PRESETS["balanced"], Decimal("0.95"), False, cause)
    target.mark_ready("ready", Decimal("0.95"), 60, cause)
    target.schedule(launch, launch + WINDOW, cause)
    await repository.save(store, target)
    outcome = await execute(target_id)
    return outcome.result is SnipeResult.FILLED, outcome.detail


async def _ccxt_round(exchange: Any, symbol: Symbol, launch_ms: int) -> tuple[bool, str]:
    market = f"{symbol.base}/{symbol.quote}"
    await exchange.load_markets(True)  # ahead of the launch: the new pair is listed
    await asyncio.sleep(launch_ms / 1000 - time.time())
    give_up = launch_ms / 1000 + WINDOW.total_seconds()
    while True:
        try:
            order = await exchange.create_order(market, "market", "buy", None, None, {"cost": float(QUOTE_AMOUNT)})
            return True, f"order {order['id']}"
        except ccxt_async.BadSymbol as exc:  # MEXC 10007 "symbol not support api": not open yet
            if "10007" not in str(exc) or time.time() > give_up:
                return False, str(exc)


async def run(server: FakeMexcServer, ours: MexcExchange, ccxt: Any, arrivals: Arrivals, *,
              rounds: int, lead: tuple[float, float], timing: SnipeTiming, rng: random.Random) -> SnipeResults:
    results = SnipeResults()
    for index in range(2 * rounds):
        side = (OURS, CCXT)[(index + index // 2) % 2]  # ours, ccxt, ccxt, ours, ours, ccxt...
        gc.collect()
        arrivals.side = side
        first = len(arrivals.by_side[side])
        symbol, launch_ms = _open_pair(server, rng.uniform(*lead))
        if side == OURS:
            filled, detail = await _ours_round(ours, symbol, launch_ms, timing)
        else:
            filled, detail = await _ccxt_round(ccxt, symbol, launch_ms)
        opened_perf = launch_ms * 1_000_000 - wall_minus_perf_ns()
        mine = arrivals.by_side[side][first:]
        accepted = [a for a in mine if a.outcome == "accepted"]
        if not filled or not accepted:
            results.failures[side].append(f"{symbol}: {detail}")
        else:
            results.samples[side].append(accepted[0].perf_ns - opened_perf)
            results.attempts[side].append(mine.index(accepted[0]) + 1)
        server.symbols.pop(symbol.code, None)  # keep exchangeInfo (and ccxt's load_markets) small
    return results
