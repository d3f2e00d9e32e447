"""Every number read from MEXC is bounded before any arithmetic: huge or tiny exponents, NaN
and Infinity are unreadable data (UnexpectedReply; ProtobufDecodeError on the WebSocket), and
the answer comes at once. A precision of "1E+1000000" used to hold the event loop for half a
minute (int(10**1000000)).

Each case runs in a child process that is killed after a generous time, so a parser that
freezes fails the test instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from adapters.mexc.errors import UnexpectedReply
from adapters.mexc.models import (
    parse_balances,
    parse_book_ticker,
    parse_depth,
    parse_exchange_info,
    parse_klines,
    parse_order,
    parse_symbol_info,
    parse_trades,
)
from adapters.mexc.protobuf import ProtobufDecodeError, read_decimal
from adapters.mexc.rest import MexcRestClient
from tests.fakes.mexc_http import FakeMexcServer
from tests.mexc.support import new_symbol

GENEROUS = 30.0  # seconds; a bounded parse takes microseconds

# As MEXC could send them: strings, and JSON numbers (the client decodes floats as Decimal).
OUT_OF_RANGE = [
    "1E+1000000", "-1E+1000000", "1E-1000000", "0E-1000000", "1E+31", "1E-31", "NaN", "sNaN", "Infinity",
    "-Infinity", "1" * 41, "1" + "0" * 100, Decimal("1E+1000000"), Decimal("1E-1000000"), 2**64 - 1,
]
NOT_A_PRECISION = ["1E+1000000", "21", "-1", "1E-21", "NaN", "Infinity", Decimal("1E+1000000"), 2**64 - 1]
NOT_A_TIME = ["1E+1000000", "-1", "NaN", "Infinity", 253_402_300_800_000, 2**63, "9" * 25]

SYMBOL = {
    "symbol": "NEWUSDT", "status": "1", "baseAsset": "NEW", "quoteAsset": "USDT", "quotePrecision": 4,
    "baseAssetPrecision": 2, "quoteAssetPrecision": 2, "quoteAmountPrecision": "1", "baseSizePrecision": "0.01",
    "quoteAmountPrecisionMarket": "1", "maxQuoteAmount": "2000000", "maxQuoteAmountMarket": "100000",
    "makerCommission": "0", "takerCommission": "0.0005", "tradeSideType": 1,
}
ORDER = {"symbol": "NEWUSDT", "orderId": "1", "price": "1", "origQty": "1", "executedQty": "1",
         "cummulativeQuoteQty": "1", "origQuoteOrderQty": "1", "time": 1_764_000_000_000}
TRADE = {"orderId": "1", "id": "7", "qty": "1", "quoteQty": "1", "commission": "0.001", "commissionAsset": "NEW",
         "time": 1_764_000_000_000}
KLINE = [1_764_000_000_000, "1", "1", "1", "1", "1", 1_764_000_059_999, "1"]


def with_value(record: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of the nested record with the value at `path` replaced."""
    if not path:
        return value
    copy = dict(record) if isinstance(record, dict) else list(record)
    copy[path[0]] = with_value(record[path[0]], path[1:], value)
    return copy


# (what, parser, a readable record, where its number is): every number the adapter reads.
DECIMALS: list[tuple[str, Callable[[Any], Any], Any, tuple[Any, ...]]] = [
    *[(f"exchangeInfo {k}", parse_symbol_info, SYMBOL, (k,)) for k in (
        "quoteAmountPrecision", "quoteAmountPrecisionMarket", "baseSizePrecision", "maxQuoteAmount",
        "maxQuoteAmountMarket", "makerCommission", "takerCommission")],
    *[(f"order {k}", parse_order, ORDER, (k,)) for k in
      ("price", "origQty", "executedQty", "cummulativeQuoteQty", "origQuoteOrderQty")],
    *[(f"myTrades {k}", parse_trades, [TRADE], (0, k)) for k in ("qty", "quoteQty", "commission")],
    *[(f"account {k}", parse_balances, {"balances": [{"asset": "USDT", "free": "1", "locked": "0"}]},
       ("balances", 0, k)) for k in ("free", "locked")],
    *[(f"bookTicker {k}", parse_book_ticker,
       {"symbol": "NEWUSDT", "bidPrice": "1", "bidQty": "1", "askPrice": "1", "askQty": "1"}, (k,))
      for k in ("bidPrice", "bidQty", "askPrice", "askQty")],
    *[(f"depth {side}[{i}]", parse_depth, {"lastUpdateId": 1, "bids": [["1", "1"]], "asks": [["1", "1"]]},
       (side, 0, i)) for side in ("bids", "asks") for i in (0, 1)],
    *[(f"kline [{i}]", parse_klines, [KLINE], (0, i)) for i in range(1, 6)],
    ("kline quote volume", parse_klines, [KLINE], (0, 7)),
]
PRECISIONS = [(f"exchangeInfo {k}", parse_symbol_info, SYMBOL, (k,))
              for k in ("quotePrecision", "baseAssetPrecision", "quoteAssetPrecision")]
TIMES = [
    ("order time", parse_order, ORDER, ("time",)),
    ("myTrades time", parse_trades, [TRADE], (0, "time")),
    ("kline open time", parse_klines, [KLINE], (0, 0)),
    ("kline close time", parse_klines, [KLINE], (0, 6)),
]
INTEGERS = [
    ("exchangeInfo tradeSideType", parse_symbol_info, SYMBOL, ("tradeSideType",)),
    ("depth lastUpdateId", parse_depth, {"lastUpdateId": 1, "bids": [], "asks": []}, ("lastUpdateId",)),
]


def _child(calls: list[Callable[[], Any]], pipe: Any) -> None:  # noqa: ANN401
    found = []
    for call in calls:
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            found.append((type(exc).__name__, str(exc)[:300]))
        else:
            found.append(("returned", ""))
    pipe.send(found)


def outcomes(calls: list[Callable[[], Any]]) -> list[tuple[str, str]]:
    """Per call, (the class name of the exception it raised, or "returned"; its message): run in
    a child process killed after GENEROUS seconds."""
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(calls, sending), daemon=True)
    child.start()
    try:
        if not receiving.poll(GENEROUS):
            pytest.fail(f"still parsing after {GENEROUS:g} s")
        return receiving.recv()
    finally:
        child.kill()
        child.join()


def assert_unreadable(
    parser: Callable[[Any], Any], records: dict[str, Any], error: type[Exception] = UnexpectedReply,
) -> None:
    found = outcomes([lambda record=record: parser(record) for record in records.values()])
    readable = {value: outcome for value, outcome in zip(records, found, strict=True) if outcome[0] != error.__name__}
    assert readable == {}
    assert all(len(message) < 300 for _, message in found)  # shown cut short, never a megabyte of digits


def each(record: Any, path: tuple[Any, ...], values: list[Any]) -> dict[str, Any]:
    return {repr(value)[:40]: with_value(record, path, value) for value in values}


@pytest.mark.parametrize(("what", "parser", "record", "path"), DECIMALS, ids=[d[0] for d in DECIMALS])
def test_a_decimal_out_of_range_is_unreadable(what: str, parser, record, path) -> None:  # noqa: ANN001
    assert_unreadable(parser, each(record, path, OUT_OF_RANGE))


@pytest.mark.parametrize(("what", "parser", "record", "path"), PRECISIONS, ids=[d[0] for d in PRECISIONS])
def test_a_precision_out_of_range_is_unreadable(what: str, parser, record, path) -> None:  # noqa: ANN001
    assert_unreadable(parser, each(record, path, NOT_A_PRECISION))


@pytest.mark.parametrize(("what", "parser", "record", "path"), TIMES, ids=[d[0] for d in TIMES])
def test_a_time_out_of_range_is_unreadable(what: str, parser, record, path) -> None:  # noqa: ANN001
    assert_unreadable(parser, each(record, path, NOT_A_TIME))


@pytest.mark.parametrize(("what", "parser", "record", "path"), INTEGERS, ids=[d[0] for d in INTEGERS])
def test_an_integer_out_of_range_is_unreadable(what: str, parser, record, path) -> None:  # noqa: ANN001
    assert_unreadable(parser, each(record, path, ["1E+1000000", "NaN", 2**63, "9" * 25]))


@pytest.mark.parametrize("what", ["price", "quantity"])
def test_a_websocket_deal_out_of_range_is_unreadable(what: str) -> None:
    values = ["1E+1000000", "1E-1000000", "NaN", "Infinity", "1" * 41]
    assert_unreadable(lambda value: read_decimal(value, what), {value: value for value in values}, ProtobufDecodeError)


def test_the_records_above_are_readable() -> None:
    """The cases above fail for their one bad number, not for anything else in the record."""
    info = parse_exchange_info({"symbols": [SYMBOL]})["NEWUSDT"]
    assert (info.price_scale, info.min_quantity, info.taker_fee) == (4, Decimal("0.01"), Decimal("0.0005"))
    assert parse_order(ORDER).time_ms == 1_764_000_000_000
    assert parse_trades([TRADE])[0].commission == Decimal("0.001")
    assert parse_klines([KLINE])[0].close_time_ms == 1_764_000_059_999
    assert parse_depth({"lastUpdateId": 1, "bids": [["1", "1"]], "asks": []}).bids == ((Decimal(1), Decimal(1)),)
    assert (read_decimal("0.000000001234", "price"), read_decimal("1E+15", "quantity")) == (
        Decimal("0.000000001234"), Decimal("1E+15")
    )
    # The widest a real market goes still reads, and rounds without overflowing.
    wide = parse_symbol_info(
        {**SYMBOL, "quotePrecision": "20", "baseSizePrecision": "1E-20", "maxQuoteAmount": "1E+30"}
    )
    assert wide.round_price(Decimal("123456789012345678901234567890.123456789")) > 0


async def test_exchange_info_with_a_huge_precision_fails_the_call_at_once() -> None:
    """Through the REST client, as the worker reads it before a snipe (the fake answers on this
    loop while the child process reads)."""
    symbol = new_symbol(price_scale="1E+1000000", precisions_as_strings=True)
    async with FakeMexcServer(symbols=[symbol]) as server:
        [(kind, message)] = await asyncio.to_thread(outcomes, [lambda: _exchange_info_in_child(server.base_url)])
    assert kind == "UnexpectedReply" and "quotePrecision" in message, (kind, message)


def _exchange_info_in_child(base_url: str) -> None:
    async def read() -> None:
        client = MexcRestClient("test-key", "test-secret", base_url)
        try:
            await client.exchange_info()
        finally:
            await client.aclose()

    asyncio.run(read())
