"""MexcMarketStream against FakeMexcWebSocketServer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.mexc.protobuf import PublicAggreDealsV3Api, PublicAggreDealsV3ApiItem, encode_push
from adapters.mexc.streams import (
    BookPrice,
    MarketChannel,
    MexcMarketStream,
    backoff_delay,
    book_ticker_channel,
    deals_channel,
)
from application.errors import ConfigurationError
from application.ports import PriceTick
from domain.values import Symbol
from tests.fakes.mexc_ws import FakeMexcWebSocketServer
from tests.mexc_streams.support import eventually, fast_settings, next_item

NEW = Symbol("NEW", "USDT")
OLD = Symbol("OLD", "USDT")
T0 = 1_748_779_200_000  # 2025-06-01 12:00:00 UTC, in ms
T0_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def stream(server: FakeMexcWebSocketServer) -> AsyncIterator[MexcMarketStream]:
    async with MexcMarketStream(server.url, settings=fast_settings(), rng=random.Random(1)) as s:
        yield s


async def follow(stream: MexcMarketStream, server: FakeMexcWebSocketServer, *symbols: Symbol) -> None:
    for symbol in symbols:
        await stream.add_symbol(symbol)
    for symbol in symbols:
        for channel in stream.channels_for(symbol):
            await server.wait_subscribed(channel)


class TestTicks:
    async def test_a_deal_arrives_as_a_price_tick_with_exact_decimal_and_deal_time(
        self, server: FakeMexcWebSocketServer, stream: MexcMarketStream
    ) -> None:
        await follow(stream, server, NEW)
        assert await server.publish_deal(NEW, "0.000012345678", "1000", time_ms=T0 + 7) == 1
        tick = await next_item(stream.ticks)
        assert tick == PriceTick(NEW, Decimal("0.000012345678"), T0_AT + timedelta(milliseconds=7))
        assert str(tick.price) == "0.000012345678"
        assert tick.at.tzinfo is not None

    async def test_several_deals_in_one_push_come_in_time_order(
        self, server: FakeMexcWebSocketServer, stream: MexcMarketStream,
    ) -> None:
        await follow(stream, server, NEW)
        await server.publish_deals(
            NEW,
            [
                PublicAggreDealsV3ApiItem(price="1.02", quantity="1", tradeType=1, time=T0 + 20),
                PublicAggreDealsV3ApiItem(price="1.01", quantity="1", tradeType=2, time=T0 + 10),
            ],
        )
        first, second = await next_item(stream.ticks), await next_item(stream.ticks)
        assert [first.price, second.price] == [Decimal("1.01"), Decimal("1.02")]

    async def test_book_ticker_gives_the_bid_stamped_with_the_send_time(
        self, server: FakeMexcWebSocketServer, stream: MexcMarketStream,
    ) -> None:
        await follow(stream, server, NEW)
        await server.publish_book_ticker(NEW, "0.998", "10", "1.002", "20", send_time_ms=T0)
        assert await next_item(stream.ticks) == PriceTick(NEW, Decimal("0.998"), T0_AT)

    async def test_book_ticker_mid_price_when_asked(self, server: FakeMexcWebSocketServer) -> None:
        async with MexcMarketStream(
            server.url, settings=fast_settings(), channels=[MarketChannel.BOOK_TICKER], book_price=BookPrice.MID
        ) as stream:
            await follow(stream, server, NEW)
            await server.publish_book_ticker(NEW, "0.998", "10", "1.002", "20", send_time_ms=T0)
            assert (await next_item(stream.ticks)).price == Decimal("1.000")

    async def test_subscribes_book_ticker_and_deals_in_one_request(
        self, server: FakeMexcWebSocketServer, stream: MexcMarketStream,
    ) -> None:
        await follow(stream, server, NEW)
        [conn] = server.connections
        assert conn.subscribe_requests == [
            sorted(
                [
                    "spot@public.aggre.bookTicker.v3.api.pb@100ms@NEWUSDT",
                    "spot@public.aggre.deals.v3.api.pb@100ms@NEWUSDT",
                ]
            )
        ]
        await eventually(lambda: stream.stats.acks >= 1)

    async def test_async_iteration(self, server: FakeMexcWebSocketServer, stream: MexcMarketStream) -> None:
        await follow(stream, server, NEW)
        await server.publish_deal(NEW, "2", "1", time_ms=T0)

        async def first() -> PriceTick:
            async for tick in stream:
                return tick
            raise AssertionError("the stream ended")

        assert (await asyncio.wait_for(first(), 3)).price == Decimal("2")

    async def test_symbols_added_before_start_are_subscribed_on_start(self, server: FakeMexcWebSocketServer) -> None:
        stream = MexcMarketStream(server.url, settings=fast_settings())
        await stream.add_symbol(NEW)
        assert server.connections == []
        async with stream:
            await server.wait_subscribed(deals_channel(NEW))
            await server.publish_deal(NEW, "3", "1", time_ms=T0)
            assert (await next_item(stream.ticks)).price == Decimal("3")

    async def test_removing_a_symbol_unsubscribes_and_closes_the_idle_connection(
        self, server: FakeMexcWebSocketServer, stream: MexcMarketStream
    ) -> None:
        await follow(stream, server, NEW, OLD)
        await stream.remove_symbol(OLD)
        await server.wait_until(lambda: deals_channel(OLD) not in server.connections[0].subscriptions)
        assert server.connections[0].unsubscribe_requests == [sorted(stream.channels_for(OLD))]
        assert await server.publish_deal(OLD, "1", "1") == 0
        await stream.remove_symbol(NEW)
        await server.wait_until(lambda: server.open_connections == [])
        assert stream.connection_count == 0
        assert stream.symbols == frozenset()

    async def test_adding_twice_is_a_no_op(self, server: FakeMexcWebSocketServer, stream: MexcMarketStream) -> None:
        await follow(stream, server, NEW)
        await stream.add_symbol(NEW)
        await asyncio.sleep(0.05)
        assert len(server.connections[0].subscribe_requests) == 1

    async def test_queue_overflow_keeps_the_newest_ticks(self, server: FakeMexcWebSocketServer) -> None:
        async with MexcMarketStream(server.url, settings=fast_settings(), queue_size=2) as stream:
            await follow(stream, server, NEW)
            deals = [PublicAggreDealsV3ApiItem(price=p, quantity="1", tradeType=1, time=T0 + i)
                     for i, p in enumerate("123")]
            await server.publish_deals(NEW, deals)
            await eventually(lambda: stream.stats.overflowed == 1)
            assert [stream.ticks.get_nowait().price, stream.ticks.get_nowait().price] == [Decimal(2), Decimal(3)]


class TestResilience:
    async def test_a_dropped_connection_reconnects_resubscribes_and_resumes(
        self, server: FakeMexcWebSocketServer, stream: MexcMarketStream
    ) -> None:
        await follow(stream, server, NEW, OLD)
        await server.publish_deal(NEW, "1.5", "1", time_ms=T0)
        assert (await next_item(stream.ticks)).price == Decimal("1.5")

        assert await server.drop_all() == 1
        await server.wait_until(
            lambda: len(server.connections) == 2
            and server.connections[0].closed
            and server.connections[1].subscriptions
            >= {deals_channel(NEW), deals_channel(OLD), book_ticker_channel(NEW)}
        )
        await server.publish_deal(NEW, "1.6", "1", time_ms=T0 + 1)
        await server.publish_deal(OLD, "0.7", "1", time_ms=T0 + 2)
        assert [(await next_item(stream.ticks)).price for _ in range(2)] == [Decimal("1.6"), Decimal("0.7")]
        assert stream.stats.drops == 1
        assert stream.stats.reconnects == 1
        assert server.connections[0].dropped_by_server

    async def test_repeated_drops_keep_coming_back(
        self, server: FakeMexcWebSocketServer, stream: MexcMarketStream,
    ) -> None:
        await follow(stream, server, NEW)
        for round_ in range(1, 4):
            await server.wait_until(
                lambda: len(server.open_connections) == 1 and bool(server.open_connections[0].subscriptions)
            )
            await server.drop_all()
            await server.wait_until(lambda round_=round_: len(server.connections) == round_ + 1)
        await server.wait_subscribed(deals_channel(NEW))
        await server.publish_deal(NEW, "9", "1", time_ms=T0)
        assert (await next_item(stream.ticks)).price == Decimal("9")
        assert stream.stats.reconnects == 3

    async def test_refused_handshakes_are_retried_with_backoff(self, server: FakeMexcWebSocketServer) -> None:
        server.reject_handshakes(3)
        async with MexcMarketStream(server.url, settings=fast_settings()) as stream:
            await follow(stream, server, NEW)
            assert server.rejected_handshakes == 3
            assert stream.stats.connect_failures == 3
            await server.publish_deal(NEW, "4", "1", time_ms=T0)
            assert (await next_item(stream.ticks)).price == Decimal("4")

    async def test_connection_is_rotated_before_its_lifetime_and_ticks_continue(
        self, server: FakeMexcWebSocketServer,
    ) -> None:
        settings = fast_settings(max_lifetime=timedelta(milliseconds=250))
        async with MexcMarketStream(server.url, settings=settings) as stream:
            await follow(stream, server, NEW)
            await server.wait_until(lambda: len(server.connections) >= 3, timeout=5)
            await eventually(lambda: stream.stats.rotations >= 2)
            # Planned: closed by us, normally, and never counted as a drop.
            retired = server.connections[:2]
            await server.wait_until(lambda: all(c.closed for c in retired))
            assert all(c.close_code == 1000 and not c.dropped_by_server for c in retired)
            assert stream.stats.drops == 0 and stream.stats.reconnects == 0
            # Make-before-break: each replacement was subscribed before its predecessor closed.
            for old, new in zip(retired, server.connections[1:3], strict=True):
                assert new.first_subscribed_at is not None and old.closed_at is not None
                assert new.first_subscribed_at <= old.closed_at
            await server.wait_until(lambda: any(deals_channel(NEW) in c.subscriptions for c in server.open_connections))
            await server.publish_deal(NEW, "5", "1", time_ms=T0)
            assert (await next_item(stream.ticks)).price == Decimal("5")

    async def test_malformed_frames_are_counted_and_the_stream_continues(
        self, server: FakeMexcWebSocketServer, stream: MexcMarketStream,
    ) -> None:
        await follow(stream, server, NEW)
        deals = "spot@public.aggre.deals.v3.api.pb@100ms@NEWUSDT"
        bad_price = encode_push(deals, _deals_body("abc"), "NEWUSDT")
        zero_price = encode_push(deals, _deals_body("0"), "NEWUSDT")
        for frame in [
            b"\x0a\x64spot@truncated", b"\xff\xff\xff", bad_price, zero_price, "not json", "[1, 2]",
            "{\"id\": 0, \"code\""
        ]:
            await server.send_malformed(frame)
        await server.publish_deal(NEW, "6", "1", time_ms=T0)
        assert (await next_item(stream.ticks)).price == Decimal("6")
        assert stream.stats.malformed_frames == 7
        assert len(server.connections) == 1  # never reconnected for a bad frame
        assert stream.stats.drops == 0

    async def test_pushes_for_symbols_we_do_not_follow_are_ignored(
        self, server: FakeMexcWebSocketServer, stream: MexcMarketStream,
    ) -> None:
        await follow(stream, server, NEW)
        await server.send_malformed(
            encode_push("spot@public.aggre.deals.v3.api.pb@100ms@OLDUSDT", _deals_body("1"), "OLDUSDT")
        )
        await server.publish_deal(NEW, "7", "1", time_ms=T0)
        assert (await next_item(stream.ticks)).symbol == NEW
        assert stream.stats.ignored_frames == 1
        assert stream.stats.malformed_frames == 0

    async def test_ping_every_interval_and_pongs_counted(
        self, server: FakeMexcWebSocketServer, stream: MexcMarketStream,
    ) -> None:
        await follow(stream, server, NEW)
        await server.wait_until(lambda: server.connections[0].pings >= 3, timeout=3)
        assert json.loads(next(m for m in server.connections[0].received if "PING" in m)) == {"method": "PING"}
        await eventually(lambda: stream.stats.pongs >= 3)
        assert stream.stats.pings_sent >= 3

    async def test_a_silent_connection_is_closed_and_reopened(self) -> None:
        async with FakeMexcWebSocketServer(answer_pings=False) as server:
            settings = fast_settings(stale_after=timedelta(milliseconds=200))
            async with MexcMarketStream(server.url, settings=settings) as stream:
                await follow(stream, server, NEW)
                await server.wait_until(lambda: len(server.connections) >= 2, timeout=3)
                assert stream.stats.stale_closes >= 1
                await server.wait_subscribed(deals_channel(NEW))

    async def test_a_refused_subscription_is_counted_not_fatal(self) -> None:
        async with (
            FakeMexcWebSocketServer(max_streams=1) as server,
            MexcMarketStream(server.url, settings=fast_settings()) as stream,
        ):  # stricter than MEXC
            await stream.add_symbol(NEW)
            await eventually(lambda: stream.stats.subscription_errors == 1)
            assert book_ticker_channel(NEW) in server.connections[0].subscriptions
            assert server.connections[0].refused == [deals_channel(NEW)]
            assert "Not Subscribed" in stream.stats.errors[-1]
            await server.publish_book_ticker(NEW, "1", "1", "2", "1", send_time_ms=T0)
            assert (await next_item(stream.ticks)).price == Decimal("1")


class TestConnectionLimit:
    async def test_more_than_30_streams_open_a_second_connection(self, server: FakeMexcWebSocketServer) -> None:
        symbols = [Symbol(f"C{i:02d}", "USDT") for i in range(31)]
        async with MexcMarketStream(server.url, settings=fast_settings(), channels=[MarketChannel.DEALS]) as stream:
            await follow(stream, server, *symbols)
            assert stream.connection_count == 2
            assert len(server.open_connections) == 2
            assert sorted(len(c.subscriptions) for c in server.open_connections) == [1, 30]
            assert all(c.refused == [] for c in server.connections)
            for symbol in (symbols[0], symbols[30]):
                await server.publish_deal(symbol, "1.25", "1", time_ms=T0)
                assert (await next_item(stream.ticks)).symbol == symbol

    async def test_both_channels_per_symbol_16_symbols_need_two_connections(
        self, server: FakeMexcWebSocketServer,
    ) -> None:
        symbols = [Symbol(f"D{i:02d}", "USDT") for i in range(16)]
        async with MexcMarketStream(server.url, settings=fast_settings()) as stream:
            await follow(stream, server, *symbols)
            assert sorted(len(c.subscriptions) for c in server.open_connections) == [2, 30]
            # A symbol's channels stay together on one connection.
            for conn in server.open_connections:
                codes = {ch.rsplit("@", 1)[-1] for ch in conn.subscriptions}
                assert len(conn.subscriptions) == 2 * len(codes)

    async def test_freed_room_is_reused(self, server: FakeMexcWebSocketServer) -> None:
        symbols = [Symbol(f"E{i:02d}", "USDT") for i in range(30)]
        async with MexcMarketStream(server.url, settings=fast_settings(), channels=[MarketChannel.DEALS]) as stream:
            await follow(stream, server, *symbols)
            await stream.remove_symbol(symbols[3])
            await stream.add_symbol(NEW)
            await server.wait_subscribed(deals_channel(NEW))
            assert stream.connection_count == 1
            assert len(server.connections) == 1

    async def test_the_server_enforces_the_limit(self, server: FakeMexcWebSocketServer) -> None:
        """A naive client that ignores the limit gets MEXC's refusal for stream 31 on."""
        from websockets.asyncio.client import connect

        async with connect(server.url, proxy=None) as ws:
            channels = [deals_channel(Symbol(f"F{i:02d}", "USDT")) for i in range(32)]
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": channels}))
            ack = json.loads(await ws.recv())
            refusal = json.loads(await ws.recv())
        assert ack == {"id": 0, "code": 0, "msg": ",".join(channels[:30])}
        assert refusal["msg"].startswith("Not Subscribed successfully! [" + ",".join(channels[30:]) + "]")


class TestConfiguration:
    def test_backoff_grows_is_jittered_and_bounded(self) -> None:
        rng = random.Random(3)
        initial, maximum = timedelta(milliseconds=100), timedelta(seconds=2)
        for attempt in range(1, 12):
            cap = min(2.0, 0.1 * 2 ** (attempt - 1))
            delays = [backoff_delay(attempt, initial, maximum, rng) for _ in range(50)]
            assert all(cap / 2 <= d <= cap for d in delays)
            assert len(set(delays)) > 1  # jittered
        # Hours of failures later the delay is still the bounded maximum (no float overflow).
        assert 1.0 <= backoff_delay(10_000, initial, maximum, rng) <= 2.0

    def test_url_passed_in_or_the_default_never_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MEXC_WS_URL", "ws://ignored.test/ws")
        assert MexcMarketStream("ws://127.0.0.1:1/ws").url == "ws://127.0.0.1:1/ws"
        assert MexcMarketStream().url == "wss://wbs-api.mexc.com/ws"

    def test_bad_settings_are_refused(self) -> None:
        with pytest.raises(ConfigurationError):
            fast_settings(max_streams_per_connection=31)
        with pytest.raises(ConfigurationError):
            fast_settings(ping_interval=timedelta(0))
        with pytest.raises(ConfigurationError):
            MexcMarketStream("ws://127.0.0.1:1/ws", interval="1s")
        with pytest.raises(ConfigurationError):
            MexcMarketStream("ws://127.0.0.1:1/ws", channels=[])

    def test_channel_names(self) -> None:
        assert deals_channel(NEW) == "spot@public.aggre.deals.v3.api.pb@100ms@NEWUSDT"
        assert book_ticker_channel(NEW, "10ms") == "spot@public.aggre.bookTicker.v3.api.pb@10ms@NEWUSDT"


def _deals_body(price: str) -> PublicAggreDealsV3Api:
    return PublicAggreDealsV3Api(deals=[PublicAggreDealsV3ApiItem(price=price, quantity="1", tradeType=1, time=T0)])
