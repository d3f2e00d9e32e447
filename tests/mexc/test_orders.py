"""Orders through MexcExchange: rounding down in Decimal, local refusals before sending,
reports mapped from MEXC's replies, query/cancel by client id, open orders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.mexc.exchange import MexcExchange
from adapters.mexc.rest import MexcRestClient
from application.errors import OrderRefused
from application.ports import OrderSide, OrderStatus
from domain.values import ClientOrderId, Symbol
from tests.fakes.mexc_http import ORDER, ORDER_TEST, FakeMexcServer
from tests.mexc.support import NEW, client_for, coid, new_symbol


async def prepared(client: MexcRestClient) -> MexcExchange:
    exchange = MexcExchange(client, clock_samples=2)
    await exchange.prepare(NEW)
    return exchange


async def test_market_buy_rounds_the_quote_down_and_reports_after_a_query(
    server: FakeMexcServer, client: MexcRestClient,
) -> None:
    exchange = await prepared(client)
    placed = await exchange.place_market_buy(NEW, Decimal("10.129"), coid())
    # MEXC's POST reply carries no fill: NEW with nothing executed, so the caller queries.
    assert (placed.status, placed.executed_quantity, placed.executed_quote) == (OrderStatus.NEW, 0, 0)
    [order] = server.accepted_orders()
    assert order.orig_quote_qty == Decimal("10.12")  # rounded down to the quote scale (2)
    report = await exchange.query_order(NEW, coid())
    assert report is not None
    # 10.12 / 0.3 = 33.7333.. -> 33.73 (base scale 2, rounded down by the exchange)
    assert (report.status, report.side, report.executed_quantity) == (
        OrderStatus.FILLED, OrderSide.BUY, Decimal("33.73")
    )
    assert report.executed_quote == Decimal("10.119")
    assert report.average_price == Decimal("0.3")
    assert (report.fee, report.fee_asset) == (Decimal(0), "USDT")  # a free fill (fees: tests/mexc/test_exit_fees.py)
    assert report.exchange_order_id == placed.exchange_order_id
    assert report.created_at is not None
    assert all(isinstance(v, Decimal) for v in (report.executed_quantity, report.executed_quote, report.average_price))


async def test_a_reply_with_fill_information_is_reported_as_is() -> None:
    async with FakeMexcServer(symbols=[new_symbol()], reply_with_fill=True) as server, client_for(server) as c:
        report = await (await prepared(c)).place_market_buy(NEW, Decimal("3"), coid())
    assert (report.status, report.executed_quantity, report.executed_quote, report.average_price) == (
        OrderStatus.FILLED, Decimal("10"), Decimal("3.0"), Decimal("0.3"),
    )


async def test_below_min_notional_is_refused_before_sending() -> None:
    async with (
        FakeMexcServer(symbols=[new_symbol(min_market_notional=Decimal("5"))]) as server,
        client_for(server) as c,
    ):
        exchange = await prepared(c)
        with pytest.raises(OrderRefused) as info:
            await exchange.place_market_buy(NEW, Decimal("4.999"), coid())  # 4.99 after rounding
        assert info.value.code == "30002"
        assert "before sending" in str(info.value)
        assert server.hits[ORDER] == 0
        # Exactly the minimum goes out.
        await exchange.place_market_buy(NEW, Decimal("5"), coid(2))
        assert server.hits[ORDER] == 1


async def test_above_the_market_maximum_is_refused_before_sending() -> None:
    async with (
        FakeMexcServer(symbols=[new_symbol(max_market_notional=Decimal("50"))]) as server,
        client_for(server) as c,
    ):
        with pytest.raises(OrderRefused) as info:
            await (await prepared(c)).place_market_buy(NEW, Decimal("50.01"), coid())
    assert info.value.code == "30003"
    assert server.hits[ORDER] == 0


async def test_without_known_rules_the_exchange_judges(server: FakeMexcServer, client: MexcRestClient) -> None:
    # No prepare: nothing rounded or refused locally; MEXC's own 30002 comes back.
    exchange = MexcExchange(client)
    with pytest.raises(OrderRefused) as info:
        await exchange.place_market_buy(NEW, Decimal("0.5"), coid())
    assert info.value.code == "30002"
    assert server.hits[ORDER] == 1


async def test_market_sell_rounds_the_quantity_down(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.balances["NEW"] = Decimal("100")
    exchange = await prepared(client)
    await exchange.place_market_sell(NEW, Decimal("12.349"), coid())
    report = await exchange.query_order(NEW, coid())
    assert report is not None
    assert (report.side, report.executed_quantity, report.executed_quote) == (
        OrderSide.SELL, Decimal("12.34"), Decimal("3.702")
    )
    with pytest.raises(OrderRefused) as info:
        await exchange.place_market_sell(NEW, Decimal("0.009"), coid(2))  # rounds to 0.00
    assert info.value.code == "30002"
    assert server.hits[ORDER] == 1


async def test_limit_orders_rest_then_cancel_by_client_id(server: FakeMexcServer, client: MexcRestClient) -> None:
    exchange = await prepared(client)
    info = exchange.cached_info(NEW)
    assert info is not None
    price, quantity = info.limit_order(Decimal("0.212345"), Decimal("20.019"))
    assert (price, quantity) == (Decimal("0.2123"), Decimal("20.01"))
    with pytest.raises(OrderRefused):
        info.limit_order(Decimal("0.1"), Decimal("9.99"))  # 0.999 < 1 USDT
    order = await client.new_order("NEWUSDT", "BUY", "LIMIT", price=price, quantity=quantity, client_order_id="limit-1")
    assert order.order_id
    [open_order] = await exchange.open_orders(NEW)
    assert (open_order.client_order_id, open_order.status) == (ClientOrderId("limit-1"), OrderStatus.NEW)
    assert server.locked["USDT"] == price * quantity
    # With no symbol: every symbol this adapter has seen is asked.
    assert [o.client_order_id for o in await exchange.open_orders()] == [ClientOrderId("limit-1")]
    cancelled = await exchange.cancel_order(NEW, ClientOrderId("limit-1"))
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELED
    assert await exchange.cancel_order(NEW, ClientOrderId("limit-1")) is None  # -2011: nothing left to cancel
    assert await exchange.open_orders(NEW) == []
    assert server.balances["USDT"] == Decimal("1000") and server.locked["USDT"] == 0


async def test_open_orders_without_a_symbol_finds_pairs_from_locked_balances(server: FakeMexcServer) -> None:
    other = server.add_symbol(new_symbol(symbol="OLDUSDT", base="OLD", price=Decimal("2")))
    server.balances["OLD"] = Decimal("10")
    async with client_for(server) as placer:
        await placer.new_order(
            other.symbol, "SELL", "LIMIT", price=Decimal("3"), quantity=Decimal("5"), client_order_id="old-1"
        )
    async with client_for(server) as c:
        found = await MexcExchange(c).open_orders()  # this adapter never saw OLDUSDT
    assert [(o.symbol, o.client_order_id) for o in found] == [(Symbol("OLD", "USDT"), ClientOrderId("old-1"))]


async def test_immediate_or_cancel_that_does_not_cross_is_cancelled(client: MexcRestClient) -> None:
    order = await client.new_order("NEWUSDT", "BUY", "IMMEDIATE_OR_CANCEL", price=Decimal("0.25"),
                                   quantity=Decimal("10"), client_order_id="ioc-1")
    queried = await client.query_order("NEWUSDT", "ioc-1")
    assert order.order_id and queried is not None
    assert (queried.status, queried.executed_qty) == ("CANCELED", Decimal(0))


async def test_order_test_validates_without_placing(server: FakeMexcServer, client: MexcRestClient) -> None:
    assert await client.test_order("NEWUSDT", "BUY", "MARKET", quote_order_qty=Decimal("5")) is None
    assert server.hits[ORDER_TEST] == 1 and server.accepted_orders() == []
    with pytest.raises(OrderRefused) as info:
        await client.test_order("NEWUSDT", "BUY", "MARKET", quote_order_qty=Decimal("5000"))  # balance 1000
    assert info.value.code == "10101"


async def test_unknown_orders_query_and_cancel_as_none(client: MexcRestClient) -> None:
    exchange = MexcExchange(client)
    assert await exchange.query_order(NEW, coid(99)) is None
    assert await exchange.cancel_order(NEW, coid(99)) is None


def test_prepare_order_refuses_impossible_shapes(client: MexcRestClient) -> None:
    with pytest.raises(ValueError):
        client.prepare_order("NEWUSDT", "BUY", "MARKET", quantity=Decimal(1), quote_order_qty=Decimal(1))
    with pytest.raises(ValueError):
        client.prepare_order("NEWUSDT", "BUY", "LIMIT", quantity=Decimal(1))
    with pytest.raises(ValueError):
        client.prepare_order("NEWUSDT", "HOLD", "MARKET", quantity=Decimal(1))
    order = client.prepare_order("NEWUSDT", "BUY", "MARKET", quote_order_qty=Decimal("1E+1"), client_order_id="x-1")
    assert order.signed_prefix == (
        "symbol=NEWUSDT&side=BUY&type=MARKET&quoteOrderQty=10&newClientOrderId=x-1&recvWindow=5000&timestamp="
    )
