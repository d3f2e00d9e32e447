"""MexcPriceStream: follows exactly the symbols asked for and drains the pushed ticks."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from adapters.mexc.price_stream import MexcPriceStream
from adapters.mexc.streams import MarketChannel, MexcMarketStream, deals_channel
from domain.values import Symbol
from tests.fakes.mexc_ws import FakeMexcWebSocketServer
from tests.mexc_streams.support import fast_settings

NEW, OLD = Symbol("NEW", "USDT"), Symbol("OLD", "USDT")


async def test_follow_subscribes_and_unsubscribes_and_drain_returns_the_ticks() -> None:
    async with FakeMexcWebSocketServer() as server:
        market = MexcMarketStream(server.url, settings=fast_settings(), channels=(MarketChannel.DEALS,),
                                  rng=random.Random(3))
        async with market:
            prices = MexcPriceStream(market)
            assert await prices.drain(timedelta(milliseconds=20)) == []  # nothing followed: waits, returns
            await prices.follow([NEW, OLD])
            await server.wait_subscribed(deals_channel(NEW))
            await server.wait_subscribed(deals_channel(OLD))
            await server.publish_deal("NEWUSDT", "0.5", "10")
            await server.publish_deal("NEWUSDT", "0.4", "10")
            ticks = await prices.drain(timedelta(seconds=2))
            while len(ticks) < 2:
                ticks += await prices.drain(timedelta(seconds=2))
            assert [(t.symbol, t.price) for t in ticks] == [(NEW, Decimal("0.5")), (NEW, Decimal("0.4"))]
            await prices.follow([NEW])
            await server.wait_until(lambda: not server.subscribers(deals_channel(OLD)))
            assert market.symbols == frozenset({NEW})
