"""OrderLane: the lean HTTP/1.1 client on the snipe's critical path. Replies of every framing
are read, connections are reused and replaced, and every failure is either "not sent"
(nothing written) or "no reply" (written: the outcome is unknown), never a raw exception."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import httpx
import pytest

from adapters.mexc.lane import LaneNoReply, LaneNotSent, OrderLane
from tests.fakes.mexc_http import ORDER, TIME, FakeMexcServer
from tests.mexc.support import client_for, new_symbol

Script = Callable[[bytes, int], list[bytes] | None]  # (request head, request number) -> chunks to write; None closes


class ScriptedServer:
    """Answers each request with the bytes a script returns, to exercise the lane's parser."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    @property
    def url(self) -> httpx.URL:
        assert self._server is not None
        return httpx.URL(f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                chunks = self.script(head, len(self.requests))
                if chunks is None:
                    writer.close()
                    return
                for chunk in chunks:
                    writer.write(chunk)
                    await writer.drain()
                    await asyncio.sleep(0.001)  # arrive in pieces
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()


def lane_for(url: httpx.URL, **options: object) -> OrderLane:
    return OrderLane(url, [("X-MEXC-APIKEY", "k")], connect_timeout=1.0, **options)  # type: ignore[arg-type]


def reply(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{extra}\r\n".encode() + body


@pytest.fixture
async def fake() -> AsyncIterator[FakeMexcServer]:
    async with FakeMexcServer(symbols=[new_symbol()]) as server:
        yield server


async def test_a_content_length_reply_arriving_in_pieces_and_the_connection_is_reused() -> None:
    body = b'{"serverTime": 1}'
    whole = reply(body, f"Content-Length: {len(body)}")

    async with ScriptedServer(lambda head, n: [whole[:10], whole[10:30], whole[30:]]) as server:
        netloc = server.url.netloc.decode()
        lane = lane_for(server.url)
        for _ in range(3):
            answer = await lane.request("GET", "/api/v3/time", 1.0)
            assert (answer.status_code, answer.content) == (200, body)
        lane.close()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"GET /api/v3/time HTTP/1.1\r\n")
    assert f"Host: {netloc}".encode() in first and b"X-MEXC-APIKEY: k" in first


async def test_post_says_its_body_is_empty() -> None:
    async with ScriptedServer(lambda head, n: [reply(b"{}", "Content-Length: 2")]) as server:
        lane = lane_for(server.url)
        await lane.request("POST", "/api/v3/order?a=1", 1.0)
        lane.close()
    assert b"POST /api/v3/order?a=1 HTTP/1.1" in server.requests[0] and b"Content-Length: 0" in server.requests[0]


async def test_chunked_gzip_and_interim_replies_are_read() -> None:
    payload = b'{"orderId": "1"}'
    packed = gzip.compress(payload)
    chunked = (f"{len(packed[:7]):x}\r\n".encode() + packed[:7] + b"\r\n"
               + f"{len(packed[7:]):x};ext=1\r\n".encode() + packed[7:] + b"\r\n0\r\nX-Trailer: y\r\n\r\n")
    answers = [
        [b"HTTP/1.1 100 Continue\r\n\r\n", reply(chunked, "Transfer-Encoding: chunked", "Content-Encoding: gzip")],
        [reply(zlib.compress(payload), f"Content-Length: {len(zlib.compress(payload))}", "Content-Encoding: deflate")],
        [reply(b"", "Content-Length: 0", status="204 No Content")],
    ]
    async with ScriptedServer(lambda head, n: answers[n - 1]) as server:
        lane = lane_for(server.url)
        assert (await lane.request("POST", "/x", 1.0)).content == payload
        assert (await lane.request("POST", "/x", 1.0)).content == payload
        assert (await lane.request("POST", "/x", 1.0)).status_code == 204
        lane.close()
    assert server.connections == 1


async def test_a_body_until_close_and_connection_close_mean_a_new_connection_next_time() -> None:
    def script(head: bytes, n: int) -> list[bytes] | None:
        if n == 1:
            return [reply(b'{"a": 1}', "Connection: close", "Content-Length: 8")]
        if n == 2:
            return [b"HTTP/1.1 200 OK\r\n\r\n{\"b\"", b": 2}"]  # no length: the body ends with the connection
        return [reply(b"{}", "Content-Length: 2")]

    async with ScriptedServer(script) as server:
        lane = lane_for(server.url)
        assert (await lane.request("GET", "/1", 1.0)).content == b'{"a": 1}'
        # The server ends the until-close body by closing the connection.
        request = asyncio.ensure_future(lane.request("GET", "/2", 1.0))
        await asyncio.sleep(0.05)
        for writer in server._writers:
            writer.close()
        assert (await request).content == b'{"b": 2}'
        assert (await lane.request("GET", "/3", 1.0)).content == b"{}"
        lane.close()
    assert server.connections == 3


async def test_an_idle_connection_closed_by_the_server_is_replaced() -> None:
    async with ScriptedServer(lambda head, n: [reply(b"{}", "Content-Length: 2")]) as server:
        lane = lane_for(server.url)
        await lane.request("GET", "/a", 1.0)
        for writer in server._writers:
            writer.close()  # the exchange drops an idle keep-alive connection
        await asyncio.sleep(0.05)
        assert (await lane.request("GET", "/b", 1.0)).status_code == 200
        lane.close()
    assert server.connections == 2


@pytest.mark.parametrize("answer", [
    [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"],  # cut short, then the connection closes
    [b"garbage\r\n\r\n"],
    [b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}"],
    [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Encoding: gzip\r\n\r\n{}"],
    [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Encoding: br\r\n\r\n{}"],
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
])
async def test_an_unreadable_or_cut_reply_is_no_reply(answer: list[bytes]) -> None:
    def script(head: bytes, n: int) -> list[bytes] | None:
        return answer if n == 1 else None

    async with ScriptedServer(script) as server:
        lane = lane_for(server.url)
        request = asyncio.ensure_future(lane.request("POST", "/order", 0.5))
        await asyncio.sleep(0.05)
        for writer in server._writers:
            writer.close()
        with pytest.raises(LaneNoReply):
            await request
        lane.close()


async def test_a_reply_that_never_comes_is_no_reply_after_the_timeout() -> None:
    async with ScriptedServer(lambda head, n: []) as server:
        lane = lane_for(server.url)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(LaneNoReply):
            await lane.request("POST", "/order", 0.1)
        assert 0.09 <= loop.time() - started < 0.5
        lane.close()


async def test_a_connection_never_made_is_not_sent() -> None:
    async with ScriptedServer(lambda head, n: []) as server:
        url = server.url
    lane = lane_for(url)
    with pytest.raises(LaneNotSent):
        await lane.request("POST", "/order", 0.5)
    with pytest.raises(ValueError):
        OrderLane(httpx.URL("ftp://example.com"), [], connect_timeout=1.0)


async def test_concurrent_requests_use_separate_connections() -> None:
    async with ScriptedServer(lambda head, n: [reply(b"{}", "Content-Length: 2")]) as server:
        lane = lane_for(server.url)
        answers = await asyncio.gather(*(lane.request("GET", f"/{i}", 1.0) for i in range(3)))
        assert all(a.status_code == 200 for a in answers)
        lane.close()
    assert server.connections == 3


async def test_orders_and_the_clock_sync_share_one_warm_connection(fake: FakeMexcServer) -> None:
    async with client_for(fake) as client:
        await client.sync_clock(3)
        await client.new_order("NEWUSDT", "BUY", "MARKET", quote_order_qty=Decimal("3"), client_order_id="lane-1")
        await client.new_order("NEWUSDT", "BUY", "MARKET", quote_order_qty=Decimal("3"), client_order_id="lane-2")
        assert client._lane is not None and len(client._lane._open) == 1
    assert fake.hits[TIME] == 3 and fake.hits[ORDER] == 2
    assert [a.outcome for a in fake.order_arrivals] == ["accepted", "accepted"]


async def test_a_client_with_its_own_httpx_transport_sends_everything_through_httpx(fake: FakeMexcServer) -> None:
    async with client_for(fake, transport=httpx.AsyncHTTPTransport()) as client:
        assert client._lane is None
        await client.new_order("NEWUSDT", "BUY", "MARKET", quote_order_qty=Decimal("3"), client_order_id="httpx-1")
    assert fake.hits[ORDER] == 1
