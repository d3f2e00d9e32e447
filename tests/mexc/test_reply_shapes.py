"""MEXC's replies read through their msgspec shapes (adapters/mexc/models.py): the fallbacks
between fields, "" read as absent, JSON numbers as exact Decimals, and an unreadable reply
named by where it breaks and what it holds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.mexc.errors import UnexpectedReply
from adapters.mexc.models import parse_balances, parse_exchange_info, parse_klines, parse_order, parse_trades
from adapters.mexc.rest import _decoder


def test_an_orders_time_and_client_id_come_from_whichever_field_the_endpoint_sends() -> None:
    posted = parse_order({"orderId": "7", "transactTime": 1_764_000_000_001, "clientOrderId": "c-1"})
    cancelled = parse_order({"orderId": 7, "updateTime": "1764000000002", "origClientOrderId": "c-2"})
    read = parse_order({"orderId": "7", "time": 1_764_000_000_003, "updateTime": 1_764_000_000_004})
    assert (posted.time_ms, posted.client_order_id) == (1_764_000_000_001, "c-1")
    assert (cancelled.order_id, cancelled.time_ms, cancelled.client_order_id) == ("7", 1_764_000_000_002, "c-2")
    assert read.time_ms == 1_764_000_000_003


def test_json_numbers_are_exact_decimals() -> None:
    body = b'{"orderId": "1", "price": 0.1, "origQty": 3, "executedQty": 1e-8, "cummulativeQuoteQty": "0.30"}'
    order = parse_order(_decoder.decode(body))
    assert (order.price, order.orig_qty, order.executed_qty, order.cummulative_quote_qty) == (
        Decimal("0.1"), Decimal(3), Decimal("1E-8"), Decimal("0.30"))
    assert all(type(v) is Decimal for v in (order.price, order.orig_qty, order.executed_qty))


def test_an_empty_string_reads_as_absent() -> None:
    order = parse_order({"orderId": "1", "price": "", "origQty": "2", "time": ""})
    assert (order.price, order.orig_qty, order.time_ms) == (None, Decimal(2), None)
    info = parse_exchange_info({"symbols": [{"symbol": "AUSDT", "quotePrecision": "", "tradeSideType": ""}]})["AUSDT"]
    assert (info.price_scale, info.trade_side) == (8, 1)  # the defaults
    with pytest.raises(UnexpectedReply, match="qty is not a decimal"):
        parse_trades([{"orderId": "1", "qty": ""}])  # a fill without its quantity is not a fill


@pytest.mark.parametrize(("parse", "raw", "message"), [
    (parse_order, {"orderId": "1", "price": True}, "price is not a decimal: True"),
    (parse_order, {"orderId": "1", "price": "lots"}, "price is not a decimal: 'lots'"),
    (parse_order, {"orderId": "1", "time": Decimal("1.5")}, "time is not an integer: Decimal('1.5')"),
    (parse_order, ["not", "an", "object"], "order: expected an object, got list"),
    (parse_order, {"symbol": "AUSDT", "price": "1"}, "order reply without an order id: keys ['price', 'symbol']"),
    (parse_exchange_info, {"symbols": [{"symbol": "AUSDT"}, 5]}, "symbols[1]: expected an object, got int"),
    (parse_exchange_info, {"symbols": [{"symbol": "AUSDT", "quotePrecision": "x"}]},
     "symbols[0].quotePrecision is not a decimal: 'x'"),
    (parse_exchange_info, {"symbols": [{"status": "1"}]}, "exchangeInfo symbol without a name"),
    (parse_trades, {"orderId": "1"}, "myTrades: expected a list, got dict"),
    (parse_trades, [{"qty": "1", "commission": "0.1"}], "myTrades: commission 0.1 in '' is not a fee"),
    (parse_balances, {"balances": [{"asset": "USDT", "free": None}]}, "free is not a decimal: None"),
    (parse_klines, [[1, "1", "1"]], "klines[0]: expected `array` of at least length 7, got 3"),
])
def test_an_unreadable_reply_says_where_and_what(parse, raw, message: str) -> None:  # noqa: ANN001
    with pytest.raises(UnexpectedReply) as caught:
        parse(raw)
    assert str(caught.value) == message


def test_what_a_reply_leaves_out_has_its_default() -> None:
    balances = parse_balances({"balances": [{"asset": "USDT"}, {"asset": "", "free": "1"}]})
    assert balances == {"USDT": balances["USDT"]} and (balances["USDT"].free, balances["USDT"].locked) == (0, 0)
    kline = parse_klines([[1, "1", "2", "0.5", "1.5", "10", 60_000, None, "ignored"]])[0]
    assert (kline.high, kline.quote_volume, kline.close_time_ms) == (Decimal(2), None, 60_000)
