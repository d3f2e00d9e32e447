"""Micro-benchmark: reading MEXC's hot REST replies (bytes in, typed values out).

    .venv/bin/python -m bench.parse                # about 20 s
    .venv/bin/python -m bench.parse --repeat 15

Each figure is the whole read the client does after the HTTP reply arrives: JSON decoding as
`adapters.mexc.rest` does it, then `adapters.mexc.models` (shapes, fallbacks, bounds). Replies:

- order: a POST /api/v3/order reply with its fill, as the snipe reads it (on the order path);
- exchangeInfo: 2,000 symbols, as the worker reads the market before a listing;
- myTrades: a page of 100 fills, as a position settles its fees.

Per reply: the median and the best of `--repeat` timings, each the mean of a loop sized to
take about 0.2 s. Nothing leaves the process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from adapters.mexc import models, rest

ORDER = {
    "symbol": "NEWUSDT", "orderId": "C02__444166016412123136091", "orderListId": -1,
    "clientOrderId": "snipe-2f7c9a0e5b", "price": "0.3", "origQty": "0", "executedQty": "33.33",
    "cummulativeQuoteQty": "9.999", "status": "FILLED", "type": "MARKET", "side": "BUY",
    "origQuoteOrderQty": "10", "transactTime": 1_764_000_000_123,
}


def _symbol(n: int) -> dict[str, Any]:
    return {
        "symbol": f"C{n}USDT", "status": "1", "baseAsset": f"C{n}", "baseAssetPrecision": 2, "quoteAsset": "USDT",
        "quotePrecision": 4, "quoteAssetPrecision": 4, "baseCommissionPrecision": 2, "quoteCommissionPrecision": 4,
        "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"], "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False, "quoteAmountPrecision": "1.000000000000000000000000000000",
        "baseSizePrecision": "0", "permissions": ["SPOT"], "filters": [],
        "maxQuoteAmount": "2000000.000000000000000000",
        "makerCommission": "0", "takerCommission": "0.0005", "quoteAmountPrecisionMarket": "1.000000000000000000",
        "maxQuoteAmountMarket": "100000.000000000000000000", "fullName": f"Coin {n}", "tradeSideType": 1,
    }


def _trade(n: int) -> dict[str, Any]:
    return {
        "symbol": "NEWUSDT", "id": f"fb1a6bd6a40f4c{n:018d}", "orderId": "C02__444166016412123136091",
        "orderListId": -1, "price": "0.3001", "qty": "1.11", "quoteQty": "0.333111", "commission": "0.000166",
        "commissionAsset": "USDT", "time": 1_764_000_000_123 + n, "isBuyer": True, "isMaker": False,
        "isBestMatch": True, "isSelfTrade": False, "clientOrderId": None,
    }


REPLIES: dict[str, tuple[bytes, Callable[[Any], Any]]] = {
    "order reply": (msgspec.json.encode(ORDER), models.parse_order),
    "exchangeInfo, 2000 symbols": (
        msgspec.json.encode({"timezone": "CST", "serverTime": 1_764_000_000_000,
                             "symbols": [_symbol(n) for n in range(2000)]}),
        models.parse_exchange_info,
    ),
    "myTrades, 100 fills": (msgspec.json.encode([_trade(n) for n in range(100)]), models.parse_trades),
}


def read(body: bytes, parse: Callable[[Any], Any]) -> Any:
    """What the client does with a 2xx body (adapters.mexc.rest: decode, then the model)."""
    return parse(rest._decoder.decode(body))


def measure(body: bytes, parse: Callable[[Any], Any], repeat: int) -> tuple[float, float]:
    """(median, best) seconds per read."""
    read(body, parse)
    loops, started = 1, time.perf_counter()
    while time.perf_counter() - started < 0.05:
        read(body, parse)
        loops += 1
    loops = max(1, int(loops * 0.2 / max(time.perf_counter() - started, 1e-9)))
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(loops):
            read(body, parse)
        timings.append((time.perf_counter() - started) / loops)
    return statistics.median(timings), min(timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parse", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="timings per reply (default 9)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    print(f"{'reply':<28} {'bytes':>9} {'median':>12} {'best':>12}")
    for name, (body, parse) in REPLIES.items():
        median, best = measure(body, parse, args.repeat)
        print(f"{name:<28} {len(body):>9} {_shown(median):>12} {_shown(best):>12}")
    return 0


def _shown(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


if __name__ == "__main__":
    sys.exit(main())
