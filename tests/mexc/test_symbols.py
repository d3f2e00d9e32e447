"""exchangeInfo read defensively: both status forms, precisions as ints or strings (or steps),
tradeSideType as int or string, the {"code":200,"data":...} wrapper; defaultSymbols; rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.mexc.errors import UnexpectedReply
from adapters.mexc.exchange import MexcExchange
from adapters.mexc.models import parse_symbol_info, scale_of
from adapters.mexc.rest import MexcRestClient
from application.errors import NotFound
from domain.values import Symbol
from tests.fakes.mexc_http import FakeMexcServer
from tests.mexc.support import NEW, client_for, new_symbol


async def test_status_1_with_int_precisions() -> None:
    async with FakeMexcServer(symbols=[new_symbol(status="1", trade_side_type=1)]) as server, client_for(server) as c:
        info = (await c.exchange_info(["NEWUSDT"]))["NEWUSDT"]
    assert (info.price_scale, info.quantity_scale, info.quote_scale) == (4, 2, 2)
    assert info.online and info.tradable
    assert info.trade_side == 1
    assert (info.min_notional, info.min_market_notional, info.max_market_notional) == (
        Decimal("1"), Decimal("1"), Decimal("100000")
    )
    assert info.taker_fee == Decimal("0.0005") and isinstance(info.taker_fee, Decimal)
    assert info.min_quantity == Decimal("0.01")


async def test_enabled_with_string_precisions_inside_the_code_200_wrapper() -> None:
    legacy = new_symbol(
        status="ENABLED", precisions_as_strings=True, trade_side_type="2", price_scale=6, quantity_scale=0
    )
    async with FakeMexcServer(symbols=[legacy], wrap_exchange_info=True) as server, client_for(server) as c:
        info = (await c.exchange_info())["NEWUSDT"]
    assert (info.price_scale, info.quantity_scale) == (6, 0)
    assert all(isinstance(v, int) for v in (info.price_scale, info.quantity_scale, info.quote_scale, info.trade_side))
    assert info.online and info.tradable
    assert info.trade_side == 2


async def test_paused_and_offline_symbols_are_not_tradable() -> None:
    symbols = [
        new_symbol(symbol="AAAUSDT", base="AAA", status="2"), new_symbol(symbol="BBBUSDT", base="BBB", status="3")
    ]
    async with FakeMexcServer(symbols=symbols) as server, client_for(server) as c:
        infos = await c.exchange_info(["AAAUSDT", "BBBUSDT"])
    assert set(infos) == {"AAAUSDT", "BBBUSDT"}
    assert not infos["AAAUSDT"].online and not infos["BBBUSDT"].tradable


def test_precision_given_as_a_step_and_amounts_as_json_numbers() -> None:
    info = parse_symbol_info({
        "symbol": "XUSDT", "status": 1, "baseAsset": "X", "quoteAsset": "USDT",
        "quotePrecision": "0.0001", "baseAssetPrecision": Decimal("0.01"), "quoteAssetPrecision": 2,
        "quoteAmountPrecision": Decimal("5"), "baseSizePrecision": "0.01", "tradeSideType": "1",
        "permissions": ["SPOT"], "isSpotTradingAllowed": True,
    })
    assert (info.price_scale, info.quantity_scale, info.quote_scale) == (4, 2, 2)
    assert info.min_market_notional == Decimal("5")  # no market minimum given: the general one
    assert info.online
    assert scale_of("8", "p") == 8 and scale_of(3, "p") == 3 and scale_of("0.1", "p") == 1


def test_unreadable_symbol_fields_are_classified() -> None:
    with pytest.raises(UnexpectedReply):
        parse_symbol_info({"symbol": "XUSDT", "quotePrecision": "lots"})
    with pytest.raises(UnexpectedReply):
        parse_symbol_info({"symbol": "XUSDT", "quotePrecision": 1.5})  # a float never gets in
    with pytest.raises(UnexpectedReply):
        parse_symbol_info(["not", "an", "object"])


async def test_default_symbols_unwraps_the_code_200_reply() -> None:
    symbols = [new_symbol(), new_symbol(symbol="WEBUSDT", base="WEB", api_tradable=False)]
    async with FakeMexcServer(symbols=symbols) as server, client_for(server) as c:
        assert await c.default_symbols() == frozenset({"NEWUSDT"})


async def test_symbol_rules_come_from_exchange_info(client: MexcRestClient) -> None:
    exchange = MexcExchange(client)
    rules = await exchange.symbol_rules(NEW)
    assert (rules.symbol, rules.price_scale, rules.quantity_scale, rules.min_notional, rules.taker_fee) == (
        NEW, 4, 2, Decimal("1"), Decimal("0.0005"),
    )
    with pytest.raises(NotFound):
        await exchange.symbol_rules(Symbol("NOPE", "USDT"))


async def test_last_price_is_none_for_an_unknown_symbol(client: MexcRestClient) -> None:
    exchange = MexcExchange(client)
    assert await exchange.last_price(NEW) == Decimal("0.3")
    assert await exchange.last_price(Symbol("NOPE", "USDT")) is None


async def test_market_data_reads_are_decimal(client: MexcRestClient) -> None:
    book = await client.book_ticker("NEWUSDT")
    depth = await client.depth("NEWUSDT", limit=5)
    [kline] = await client.klines("NEWUSDT", "1m", limit=1)
    assert (book.ask_price, book.bid_price) == (Decimal("0.3"), Decimal("0.2999"))
    assert depth.asks[0] == (Decimal("0.3"), Decimal("100"))
    assert kline.close == Decimal("0.3")
    with pytest.raises(ValueError):
        await client.klines("NEWUSDT", "2m")
    await client.ping()
    assert abs(await client.server_time() - client.now_ms()) < 1000
