"""(a) Call to arrival: perf_counter_ns just before `await place_market_buy(...)` /
`await exchange.create_order(...)`, to the server's perf_counter_ns when that order's bytes
arrived. The pair is open: every order is a MARKET buy by quote amount that fills."""

from __future__ import annotations

import gc
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from adapters.mexc.exchange import MexcExchange
from bench.rig import CCXT, OURS, QUOTE_AMOUNT, Arrivals, fake_symbol
from domain.values import ClientOrderId, Symbol
from tests.fakes.mexc_http import FakeMexcServer

BASE = "OPEN"
_ids = itertools.count(1)


@dataclass
class SendResult:
    samples: dict[str, list[int]] = field(default_factory=lambda: {OURS: [], CCXT: []})
    not_accepted: dict[str, int] = field(default_factory=lambda: {OURS: 0, CCXT: 0})


async def _ours(exchange: MexcExchange, symbol: Symbol, arrivals: Arrivals) -> tuple[int, bool]:
    coid = ClientOrderId(f"bench-a-{next(_ids)}")
    arrivals.last = None
    started = time.perf_counter_ns()
    await exchange.place_market_buy(symbol, QUOTE_AMOUNT, coid)
    arrival = arrivals.last
    if arrival is None:
        raise RuntimeError("the fake exchange saw no order")
    return arrival.perf_ns - started, arrival.outcome == "accepted"


async def _ccxt(exchange: Any, arrivals: Arrivals) -> tuple[int, bool]:
    arrivals.last = None
    started = time.perf_counter_ns()
    await exchange.create_order(f"{BASE}/USDT", "market", "buy", None, None, {"cost": float(QUOTE_AMOUNT)})
    arrival = arrivals.last
    if arrival is None:
        raise RuntimeError("the fake exchange saw no order")
    return arrival.perf_ns - started, arrival.outcome == "accepted"


async def run(server: FakeMexcServer, ours: MexcExchange, ccxt: Any, arrivals: Arrivals, *,
              samples: int, block: int, warmup: int) -> SendResult:
    server.add_symbol(fake_symbol(BASE))
    symbol = Symbol(BASE, "USDT")
    await ours.prepare(symbol)  # clock sync, warm connection, the pair's rules
    await ccxt.load_markets(True)
    result = SendResult()

    async def one(side: str, keep: bool) -> None:
        arrivals.side = side
        took, accepted = await (_ours(ours, symbol, arrivals) if side == OURS else _ccxt(ccxt, arrivals))
        if keep:
            result.samples[side].append(took)
            if not accepted:
                result.not_accepted[side] += 1

    for _ in range(warmup):
        await one(OURS, False)
        await one(CCXT, False)
    # Alternating blocks; which side opens a block alternates too.
    sides = (OURS, CCXT)
    for index in range(0, samples, block):
        gc.collect()
        for side in sides if (index // block) % 2 == 0 else sides[::-1]:
            for _ in range(min(block, samples - index)):
                await one(side, True)
    return result
