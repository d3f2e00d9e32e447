"""The in-process set-up of (2) call -> wire: one fake MEXC server on 127.0.0.1, our client and
ccxt's, both aimed at it, in one process and one event loop, so the server's arrival stamps
(time.perf_counter_ns when the request's bytes were read) compare directly with the clients'
perf_counter_ns stamps. Also the keys and refusal codes the out-of-process bench (bench/open.py)
shares.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from adapters.mexc.exchange import MexcExchange
from adapters.mexc.limits import RateLimiter
from adapters.mexc.rest import MexcRestClient
from tests.fakes.mexc_http import FakeMexcServer, FakeSymbol, OrderArrival

KEY, SECRET = "bench-key", "bench-secret"
QUOTE_AMOUNT = Decimal("10")
OURS, CCXT = "ours", "ccxt"
# Refusals that would mean a client signs or stamps wrongly (FACTS.md): must never happen.
SIGNATURE_OR_TIMESTAMP = frozenset({"700001", "700002", "602", "700003", "10072"})


def fake_symbol(base: str, opens_at_ms: int | None = None) -> FakeSymbol:
    return FakeSymbol(symbol=f"{base}USDT", base=base, price=Decimal("0.3"), opens_at_ms=opens_at_ms)


@dataclass
class Arrivals:
    """Collects the server's order arrivals, each tagged with the side that was sending."""

    side: str = ""
    by_side: dict[str, list[OrderArrival]] = field(default_factory=lambda: {OURS: [], CCXT: []})
    last: OrderArrival | None = None

    def __call__(self, arrival: OrderArrival) -> None:
        self.last = arrival
        self.by_side[self.side].append(arrival)

    def outcomes(self, side: str) -> Counter[str]:
        return Counter(a.outcome for a in self.by_side[side])

    def refused_for_signature_or_timestamp(self, side: str) -> int:
        return sum(1 for a in self.by_side[side] if a.outcome in SIGNATURE_OR_TIMESTAMP)


def wall_minus_perf_ns(samples: int = 50) -> int:
    """time.time_ns() - time.perf_counter_ns(), from the tightest of several bracketed readings,
    to place the server's open instant (wall-clock ms) on the perf_counter axis."""
    best: tuple[int, int] | None = None
    for _ in range(samples):
        before = time.perf_counter_ns()
        wall = time.time_ns()
        after = time.perf_counter_ns()
        spread = after - before
        if best is None or spread < best[0]:
            best = (spread, wall - (before + after) // 2)
    if best is None:  # not reached: at least one sample is taken
        raise RuntimeError("no clock sample")
    return best[1]


def new_server() -> FakeMexcServer:
    # The fake's request budget is lifted: the benchmark sends far more orders than 500 per 10 s
    # and measures latency, not rate limiting.
    return FakeMexcServer(api_key=KEY, api_secret=SECRET, balances={"USDT": "1000000000"}, endpoint_budget=10**9)


def our_exchange(server: FakeMexcServer) -> MexcExchange:
    """The product's client with its defaults (timeouts, breakers, recvWindow 5000); the local
    rate limiter still runs on every call, with a budget large enough not to throttle the benchmark."""
    client = MexcRestClient(KEY, SECRET, server.base_url, limiter=RateLimiter(default_budget=10**9))
    return MexcExchange(client)


def ccxt_exchange(server: FakeMexcServer) -> Any:
    """ccxt's async MEXC client as a user would configure it, pointed at the fake:
    rate limiter off, spot (and contract, read by load_markets) URLs on the fake, currencies
    not fetched (that endpoint needs a MEXC wallet; it is not on the order path)."""
    import ccxt.async_support as ccxt_async  # the bench extra; the other benches run without it

    exchange = ccxt_async.mexc({
        "apiKey": KEY,
        "secret": SECRET,
        "enableRateLimit": False,
        "has": {"fetchCurrencies": False},
    })
    api = exchange.urls["api"]
    api["spot"]["public"] = api["spot"]["private"] = server.base_url  # ccxt appends /api/v3/<path>
    api["contract"]["public"] = server.base_url + "/api/v1/contract"
    return exchange
