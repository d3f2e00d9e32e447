"""Every reply is classified: 10007 NotYetOpen; refusals fail fast with MEXC's code and
message; 5xx/timeouts/drops are retried for reads and ambiguous for orders; a connection
never made is NotSent (never ambiguous); malformed JSON never escapes as a raw exception."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from adapters.mexc.errors import REFUSED_CODES, NotSent, UnexpectedReply, classify
from adapters.mexc.exchange import MexcExchange
from adapters.mexc.rest import MexcRestClient
from application.errors import (
    AmbiguousOutcome,
    ClockSkew,
    ExchangeError,
    NotYetOpen,
    OrderAlreadyExists,
    OrderRefused,
    RateLimited,
)
from application.ports import OrderStatus
from domain.values import Symbol
from tests.fakes.mexc_http import DEPTH, ORDER, QUERY_ORDER, TICKER_PRICE, FakeMexcServer, Fault, FaultKind
from tests.mexc.support import NEW, client_for, coid, new_symbol


async def test_10007_before_the_pair_opens_then_a_fill(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.open_in("NEWUSDT", 60)
    exchange = MexcExchange(client)
    with pytest.raises(NotYetOpen) as info:
        await exchange.place_market_buy(NEW, Decimal("3"), coid())
    assert info.value.code == "10007" and "symbol not support api" in str(info.value)
    assert await exchange.query_order(NEW, coid()) is None  # nothing placed
    server.symbols["NEWUSDT"].opens_at_ms = server.now_ms()
    await exchange.place_market_buy(NEW, Decimal("3"), coid())
    assert len(server.accepted_orders()) == 1


async def test_a_pair_missing_from_default_symbols_answers_10007(
    server: FakeMexcServer, client: MexcRestClient,
) -> None:
    server.symbols["NEWUSDT"].api_tradable = False
    with pytest.raises(NotYetOpen):
        await MexcExchange(client).place_market_buy(NEW, Decimal("3"), coid())


async def test_insufficient_balance_fails_fast_with_the_reason(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.balances["USDT"] = Decimal("2")
    with pytest.raises(OrderRefused) as info:
        await MexcExchange(client).place_market_buy(NEW, Decimal("3"), coid())
    assert info.value.code == "10101"
    assert "Insufficient balance" in str(info.value)
    assert server.hits[ORDER] == 1 and server.accepted_orders() == []


async def test_market_orders_disabled_for_api_is_30019(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.symbols["NEWUSDT"].market_orders = False
    with pytest.raises(OrderRefused) as info:
        await MexcExchange(client).place_market_buy(NEW, Decimal("3"), coid())
    assert info.value.code == "30019"
    assert "market order is disabled" in str(info.value)
    assert server.hits[ORDER] == 1


async def test_an_invalid_symbol_is_refused(server: FakeMexcServer, client: MexcRestClient) -> None:
    with pytest.raises(OrderRefused) as info:
        await MexcExchange(client).place_market_buy(Symbol("NOPE", "USDT"), Decimal("3"), coid())
    assert info.value.code == "30014"
    assert server.hits[ORDER] == 1


@pytest.mark.parametrize("code", sorted(set(REFUSED_CODES) - {700003}))
async def test_every_refusal_code_is_order_refused_and_never_retried(
    server: FakeMexcServer, client: MexcRestClient, code: int
) -> None:
    server.inject(Fault(FaultKind.ERROR_CODE, ORDER, code=code, message=f"reason {code}"))
    with pytest.raises(OrderRefused) as info:
        await MexcExchange(client).place_market_buy(NEW, Decimal("3"), coid())
    assert info.value.code == str(code)
    assert f"reason {code}" in str(info.value)
    assert server.hits[ORDER] == 1


def test_classification_table() -> None:
    assert type(classify(10007, "x", 400)) is NotYetOpen
    assert type(classify("700003", "x", 400)) is ClockSkew
    assert type(classify(30021, "", 400)) is OrderRefused and "invalid symbol" in str(classify(30021, "", 400))
    unknown = classify(12345, "something new", 400)
    assert type(unknown) is OrderRefused and unknown.code == "12345"  # a 4xx is a refusal: final
    assert classify(None, "HTTP 403", 403).code == "http-403"  # type: ignore[attr-defined]
    assert type(classify(-2010, "Duplicate order sent.", 400)) is OrderAlreadyExists
    assert type(classify(99999, "clientOrderId already exists", 400)) is OrderAlreadyExists
    assert type(classify(-2013, "Order does not exist.", 400)) is OrderRefused  # not a duplicate


async def test_a_reused_client_order_id_is_order_already_exists(server: FakeMexcServer, client: MexcRestClient) -> None:
    exchange = MexcExchange(client)
    await exchange.place_market_buy(NEW, Decimal("3"), coid())
    with pytest.raises(OrderAlreadyExists) as info:
        await exchange.place_market_buy(NEW, Decimal("3"), coid())
    assert isinstance(info.value, OrderRefused)  # the application's kind: resolve by query, never a failure
    assert len(server.accepted_orders()) == 1


async def test_5xx_on_a_read_is_retried_with_backoff(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.inject(Fault(FaultKind.SERVER_ERROR, DEPTH, times=2, status=502))
    depth = await client.depth("NEWUSDT")
    assert depth.asks
    assert server.statuses(DEPTH) == [502, 502, 200]


async def test_a_read_gives_up_after_its_attempts(server: FakeMexcServer) -> None:
    server.inject(Fault(FaultKind.SERVER_ERROR, DEPTH, times=10, status=503))
    async with client_for(server, read_attempts=3) as c:
        with pytest.raises(AmbiguousOutcome):
            await c.depth("NEWUSDT")
    assert server.hits[DEPTH] == 3


async def test_backoff_is_exponential_with_full_jitter(server: FakeMexcServer) -> None:
    class Recording(random.Random):
        def __init__(self) -> None:
            super().__init__(1)
            self.bounds: list[tuple[float, float]] = []

        def uniform(self, a: float, b: float) -> float:
            self.bounds.append((a, b))
            return 0.0

    rng = Recording()
    server.inject(Fault(FaultKind.SERVER_ERROR, DEPTH, times=10))
    async with client_for(server, read_attempts=5, backoff_base=0.01, backoff_cap=0.05, rng=rng) as c:
        with pytest.raises(AmbiguousOutcome):
            await c.depth("NEWUSDT")
    # Full jitter: uniform(0, min(cap, base * 2^attempt)) before each retry.
    assert rng.bounds == [(0.0, 0.02), (0.0, 0.04), (0.0, 0.05), (0.0, 0.05)]


async def test_5xx_on_an_order_is_ambiguous_and_never_resent(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.inject(Fault(FaultKind.SERVER_ERROR, ORDER, status=502, accept=True))
    exchange = MexcExchange(client)
    with pytest.raises(AmbiguousOutcome):
        await exchange.place_market_buy(NEW, Decimal("3"), coid())
    assert server.hits[ORDER] == 1
    found = await exchange.query_order(NEW, coid())  # the gateway failed after the order went in
    assert found is not None and found.status is OrderStatus.FILLED


async def test_a_timeout_on_a_read_is_retried(server: FakeMexcServer) -> None:
    server.inject(Fault(FaultKind.TIMEOUT_BEFORE_ACCEPT, TICKER_PRICE, delay=1.0))
    async with client_for(server, timeout=0.15) as c:
        assert await c.ticker_price("NEWUSDT") == Decimal("0.3")
    assert server.hits[TICKER_PRICE] == 2


async def test_a_dropped_connection_after_accept_is_ambiguous_for_an_order(
    server: FakeMexcServer, client: MexcRestClient,
) -> None:
    server.inject(Fault(FaultKind.DROP_AFTER_ACCEPT, ORDER))
    exchange = MexcExchange(client)
    with pytest.raises(AmbiguousOutcome) as info:
        await exchange.place_market_buy(NEW, Decimal("3"), coid())
    assert not isinstance(info.value, NotSent)
    assert len(server.accepted_orders()) == 1
    assert (await exchange.query_order(NEW, coid())) is not None


async def test_a_connection_never_made_is_not_sent_never_ambiguous() -> None:
    async with FakeMexcServer(symbols=[new_symbol()]) as server:
        base_url = server.base_url
    # The server is gone: the port refuses connections.
    async with MexcRestClient("k", "s", base_url, backoff_base=0.001, backoff_cap=0.002) as c:
        with pytest.raises(NotSent) as info:
            await MexcExchange(c).place_market_buy(NEW, Decimal("3"), coid())
        assert not isinstance(info.value, AmbiguousOutcome)
        assert isinstance(info.value, RateLimited)  # the snipe loop waits and sends again
        with pytest.raises(NotSent):
            await c.ping()  # reads retried, then NotSent


async def test_malformed_json_on_a_read_is_retried_then_classified(
    server: FakeMexcServer, client: MexcRestClient,
) -> None:
    server.inject(Fault(FaultKind.MALFORMED_JSON, TICKER_PRICE))
    assert await client.ticker_price("NEWUSDT") == Decimal("0.3")
    server.inject(Fault(FaultKind.MALFORMED_JSON, TICKER_PRICE, times=10))
    with pytest.raises(UnexpectedReply):
        await client.ticker_price("NEWUSDT")


async def test_malformed_json_on_an_order_is_ambiguous(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.inject(Fault(FaultKind.MALFORMED_JSON, ORDER, accept=True))
    exchange = MexcExchange(client)
    with pytest.raises(AmbiguousOutcome):
        await exchange.place_market_buy(NEW, Decimal("3"), coid())
    assert server.hits[ORDER] == 1
    assert await exchange.query_order(NEW, coid()) is not None


async def test_a_corrupt_encoded_body_is_classified_not_raw(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.inject(Fault(FaultKind.CORRUPT_BODY, TICKER_PRICE))
    assert await client.ticker_price("NEWUSDT") == Decimal("0.3")  # a read: retried
    server.inject(Fault(FaultKind.CORRUPT_BODY, ORDER, accept=True))
    with pytest.raises(AmbiguousOutcome):
        await MexcExchange(client).place_market_buy(NEW, Decimal("3"), coid())
    assert server.hits[ORDER] == 1 and len(server.accepted_orders()) == 1


async def test_an_error_status_with_an_unreadable_body_is_a_classified_refusal(
    server: FakeMexcServer, client: MexcRestClient,
) -> None:
    server.inject(Fault(FaultKind.SERVER_ERROR, QUERY_ORDER, status=403))  # a firewall page, not JSON
    with pytest.raises(OrderRefused) as info:
        await client.query_order("NEWUSDT", "x-1")
    assert info.value.code == "http-403"
    assert server.hits[QUERY_ORDER] == 1


async def test_a_reply_of_the_wrong_shape_is_classified(server: FakeMexcServer, client: MexcRestClient) -> None:
    # A 200 whose body is an error object: classified by its code.
    server.inject(Fault(FaultKind.ERROR_CODE, ORDER, status=200, code=30016, message="trading disabled"))
    with pytest.raises(OrderRefused) as info:
        await client.new_order("NEWUSDT", "BUY", "MARKET", quote_order_qty=Decimal("3"), client_order_id="shape-1")
    assert info.value.code == "30016"


async def test_no_raw_exception_escapes_from_any_fault(server: FakeMexcServer) -> None:
    """Every fault on every call of the snipe path ends as an ExchangeError kind."""
    kinds = [FaultKind.RATE_LIMITED, FaultKind.BANNED, FaultKind.SERVER_ERROR, FaultKind.ERROR_CODE,
             FaultKind.MALFORMED_JSON, FaultKind.CORRUPT_BODY, FaultKind.DROP_AFTER_ACCEPT,
             FaultKind.TIMEOUT_AFTER_ACCEPT, FaultKind.TIMEOUT_BEFORE_ACCEPT]
    for n, kind in enumerate(kinds):
        for endpoint in (ORDER, QUERY_ORDER):
            async with client_for(server, timeout=0.1, order_timeout=0.1, read_attempts=1) as c:
                exchange = MexcExchange(c)
                server.inject(Fault(kind, endpoint, delay=0.3, retry_after="0"))
                try:
                    if endpoint == ORDER:
                        await exchange.place_market_buy(NEW, Decimal("1"), coid(100 + n))
                    else:
                        await exchange.query_order(NEW, coid(5))
                except ExchangeError:
                    pass
            server.clear_faults()
