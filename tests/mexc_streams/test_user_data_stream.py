"""MexcUserDataStream against FakeMexcWebSocketServer: listenKey lifecycle and private pushes."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest

from adapters.mexc.protobuf import PrivateAccountV3Api, PrivateDealsV3Api, PrivateOrdersV3Api, read_decimal
from adapters.mexc.streams import PRIVATE_CHANNELS, MexcUserDataStream, UserDataUpdate
from application.errors import ConfigurationError
from tests.fakes.mexc_ws import FakeMexcWebSocketServer
from tests.mexc_streams.support import eventually, fast_settings, next_item

T0 = 1_748_779_200_000
T0_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class ListenKeys:
    """The three REST calls, recorded; keys are key-1, key-2, ..."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self.created: list[str] = []
        self.kept_alive: list[tuple[str, float]] = []
        self.closed: list[str] = []
        self.fail_keepalive = 0

    async def create(self) -> str:
        key = f"key-{next(self._numbers)}"
        self.created.append(key)
        return key

    async def keepalive(self, key: str) -> None:
        self.kept_alive.append((key, asyncio.get_running_loop().time()))
        if self.fail_keepalive:
            self.fail_keepalive -= 1
            raise RuntimeError("listenKey does not exist")

    async def close(self, key: str) -> None:
        self.closed.append(key)


def user_stream(server: FakeMexcWebSocketServer, keys: ListenKeys, **kwargs: object) -> MexcUserDataStream:
    return MexcUserDataStream(
        keys.create, keys.keepalive, keys.close, server.url, settings=kwargs.pop("settings", fast_settings()), **kwargs  # type: ignore[arg-type]
    )


async def wait_private(server: FakeMexcWebSocketServer, key: str) -> None:
    await server.wait_until(
        lambda: any(c.listen_key == key and set(PRIVATE_CHANNELS) <= c.subscriptions for c in server.open_connections)
    )


class TestUserDataStream:
    async def test_connects_with_the_listen_key_and_subscribes_the_private_channels(
        self, server: FakeMexcWebSocketServer,
    ) -> None:
        keys = ListenKeys()
        async with user_stream(server, keys) as stream:
            await wait_private(server, "key-1")
            [conn] = server.connections
            assert parse_qs(urlsplit(conn.path).query) == {"listenKey": ["key-1"]}
            assert conn.subscribe_requests == [sorted(PRIVATE_CHANNELS)]
            assert stream.listen_key == "key-1"
            await eventually(lambda: stream.stats.acks == 1)

    async def test_order_deal_and_account_updates_are_decoded(self, server: FakeMexcWebSocketServer) -> None:
        keys = ListenKeys()
        order = PrivateOrdersV3Api(
            id="C02__1", clientId="snipe-1", amount="10", avgPrice="0.0123", orderType=5,
            tradeType=1, cumulativeQuantity="812.19", cumulativeAmount="9.99", status=2,
            createTime=T0,
        )
        deal = PrivateDealsV3Api(
            price="0.0123", quantity="812.19", amount="9.99", tradeType=1, tradeId="t-1", clientOrderId="snipe-1",
            orderId="C02__1", feeAmount="0.004995", feeCurrency="USDT", time=T0 + 5,
        )
        account = PrivateAccountV3Api(
            vcoinName="USDT", coinId="c", balanceAmount="90.01", balanceAmountChange="-9.99", frozenAmount="0",
            frozenAmountChange="0", type="ENTRUST", time=T0 + 6,
        )
        async with user_stream(server, keys) as stream:
            await wait_private(server, "key-1")
            assert await server.publish_private_order(order, "NEWUSDT") == 1
            assert await server.publish_private_deal(deal, "NEWUSDT", listen_key="key-1") == 1
            assert await server.publish_private_account(account) == 1
            updates = [await next_item(stream.updates) for _ in range(3)]
        assert updates[0] == UserDataUpdate("spot@private.orders.v3.api.pb", "NEWUSDT", T0_AT, order)
        assert updates[1] == UserDataUpdate(
            "spot@private.deals.v3.api.pb", "NEWUSDT", T0_AT + timedelta(milliseconds=5), deal
        )
        assert updates[2].payload == account and updates[2].symbol is None
        assert read_decimal(updates[1].payload.feeAmount, "fee") == Decimal("0.004995")

    async def test_listen_key_is_kept_alive_on_schedule(self, server: FakeMexcWebSocketServer) -> None:
        keys = ListenKeys()
        interval = 0.1
        async with user_stream(server, keys, keepalive_interval=timedelta(seconds=interval)) as stream:
            await wait_private(server, "key-1")
            await eventually(lambda: len(keys.kept_alive) >= 4, timeout=3)
            assert stream.keepalives >= 4
        assert keys.created == ["key-1"]  # extended, never replaced
        assert {key for key, _ in keys.kept_alive} == {"key-1"}
        gaps = [b - a for (_, a), (_, b) in itertools.pairwise(keys.kept_alive)]
        assert all(interval * 0.9 <= gap <= interval * 3 for gap in gaps), gaps
        assert keys.closed == ["key-1"]  # stop closes the key

    async def test_default_keepalive_is_every_30_minutes(self) -> None:
        keys = ListenKeys()
        stream = MexcUserDataStream(keys.create, keys.keepalive, url="ws://127.0.0.1:1/ws")
        assert stream.keepalive_interval == timedelta(minutes=30)

    async def test_a_failed_keepalive_renews_the_key_and_reconnects(self, server: FakeMexcWebSocketServer) -> None:
        keys = ListenKeys()
        keys.fail_keepalive = 1
        async with user_stream(server, keys, keepalive_interval=timedelta(milliseconds=100)) as stream:
            await wait_private(server, "key-1")
            await wait_private(server, "key-2")
            assert server.connections[0].closed and server.connections[0].listen_key == "key-1"
            assert stream.keepalive_failures == 1
            assert keys.created == ["key-1", "key-2"]
            await server.publish_private_order(PrivateOrdersV3Api(id="x", createTime=T0), "NEWUSDT", listen_key="key-2")
            assert (await next_item(stream.updates)).payload.id == "x"

    async def test_a_dropped_connection_reconnects_with_the_same_key(self, server: FakeMexcWebSocketServer) -> None:
        keys = ListenKeys()
        async with user_stream(server, keys) as stream:
            await wait_private(server, "key-1")
            await server.drop_all()
            await server.wait_until(lambda: len(server.connections) == 2)
            await wait_private(server, "key-1")
            assert keys.created == ["key-1"]
            await server.publish_private_order(PrivateOrdersV3Api(id="after-drop", createTime=T0), "NEWUSDT")
            assert (await next_item(stream.updates)).payload.id == "after-drop"
            assert stream.stats.reconnects == 1

    async def test_a_refused_listen_key_is_replaced(self) -> None:
        async with FakeMexcWebSocketServer(listen_keys={"key-2"}) as server:
            keys = ListenKeys()
            async with user_stream(server, keys) as stream:
                await wait_private(server, "key-2")
                assert server.rejected_handshakes == 1
                assert stream.stats.connect_failures == 1
                assert keys.created == ["key-1", "key-2"]

    async def test_key_creation_failure_is_retried(self, server: FakeMexcWebSocketServer) -> None:
        keys = ListenKeys()
        failures = [RuntimeError("503"), ""]

        async def flaky_create() -> str:
            if failures:
                problem = failures.pop(0)
                if isinstance(problem, Exception):
                    raise problem
                return problem  # an empty key is refused too
            return await keys.create()

        async with MexcUserDataStream(
            flaky_create, keys.keepalive, keys.close, server.url, settings=fast_settings()
        ) as stream:
            await wait_private(server, "key-1")
            assert stream.stats.connect_failures == 2

    async def test_rotation_keeps_the_key(self, server: FakeMexcWebSocketServer) -> None:
        keys = ListenKeys()
        settings = fast_settings(max_lifetime=timedelta(milliseconds=200))
        async with user_stream(server, keys, settings=settings) as stream:
            await server.wait_until(lambda: len(server.connections) >= 2)
            await wait_private(server, "key-1")
            await eventually(lambda: stream.stats.rotations >= 1)
            assert keys.created == ["key-1"]

    async def test_public_or_malformed_pushes_are_not_updates(self, server: FakeMexcWebSocketServer) -> None:
        keys = ListenKeys()
        async with user_stream(server, keys) as stream:
            await wait_private(server, "key-1")
            await server.send_malformed()
            await server.send_malformed(json.dumps({"unexpected": True}))
            await server.publish_private_order(PrivateOrdersV3Api(id="ok", createTime=T0), "NEWUSDT")
            assert (await next_item(stream.updates)).payload.id == "ok"
            assert stream.stats.malformed_frames == 1
            assert stream.stats.ignored_frames == 1

    async def test_without_a_listen_key_private_channels_are_refused_by_the_server(
        self, server: FakeMexcWebSocketServer,
    ) -> None:
        from websockets.asyncio.client import connect

        async with connect(server.url, proxy=None) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": ["spot@private.orders.v3.api.pb"]}))
            reply = json.loads(await ws.recv())
        assert reply["msg"].startswith("Not Subscribed successfully! [spot@private.orders.v3.api.pb]")

    def test_a_non_positive_keepalive_interval_is_refused(self) -> None:
        keys = ListenKeys()
        with pytest.raises(ConfigurationError):
            MexcUserDataStream(keys.create, keys.keepalive, url="ws://127.0.0.1:1/ws", keepalive_interval=timedelta(0))


class TestFakeServerProtocol:
    async def test_ping_pong_and_ack_shapes(self, server: FakeMexcWebSocketServer) -> None:
        from websockets.asyncio.client import connect

        async with connect(server.url, proxy=None) as ws:
            await ws.send(json.dumps({"method": "PING"}))
            assert json.loads(await ws.recv()) == {"id": 0, "code": 0, "msg": "PONG"}
            channel = "spot@public.aggre.deals.v3.api.pb@100ms@NEWUSDT"
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": [channel]}))
            assert json.loads(await ws.recv()) == {"id": 0, "code": 0, "msg": channel}
            await server.publish_deal("NEWUSDT", "1.5", "2", time_ms=T0)
            frame = await ws.recv()
            assert isinstance(frame, bytes)
            await ws.send(json.dumps({"method": "UNSUBSCRIPTION", "params": [channel]}))
            assert json.loads(await ws.recv()) == {"id": 0, "code": 0, "msg": channel}

    async def test_a_rejected_handshake_is_an_http_error(self, server: FakeMexcWebSocketServer) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        server.reject_handshakes(1, HTTPStatus.TOO_MANY_REQUESTS)
        with pytest.raises(InvalidStatus) as raised:
            async with connect(server.url, proxy=None):
                pass
        assert raised.value.response.status_code == 429
