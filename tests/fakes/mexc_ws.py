"""FakeMexcWebSocketServer: MEXC's spot WebSocket protocol on 127.0.0.1, for tests.

It speaks what the real server speaks (FACTS.md, "WebSocket"):
- JSON control: SUBSCRIPTION / UNSUBSCRIPTION acknowledged `{"id":0,"code":0,"msg":"<channels>"}`,
  PING answered `{"id":0,"code":0,"msg":"PONG"}`;
- at most `max_streams` (30) streams per connection: the streams past the limit are refused
  with `{"id":0,"code":0,"msg":"Not Subscribed successfully! [<channels>].  Reason: ..."}`
  (MEXC's refusal text; MEXC sends code 0 with it);
- binary protobuf pushes (`PushDataV3ApiWrapper`) for subscribed channels, when a test calls
  `publish_deal`, `publish_book_ticker`, `publish_private_order`... ;
- private channels only on a connection opened with `?listenKey=` (a key the server knows,
  when `listen_keys` is given).

Test controls: `drop_all()` (abort every TCP connection, no close frame), `close_all()`,
`send_malformed()`, `reject_handshakes(n)`, `answer_pings = False`, and `wait_until(...)`.

    async with FakeMexcWebSocketServer() as server:
        stream = MexcMarketStream(server.url, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from google.protobuf.message import Message
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from adapters.mexc.protobuf import (
    PublicAggreBookTickerV3Api,
    PublicAggreDealsV3Api,
    PublicAggreDealsV3ApiItem,
    encode_push,
)

DEALS_PREFIX = "spot@public.aggre.deals.v3.api.pb@"
BOOK_TICKER_PREFIX = "spot@public.aggre.bookTicker.v3.api.pb@"
PRIVATE_ORDERS = "spot@private.orders.v3.api.pb"
PRIVATE_DEALS = "spot@private.deals.v3.api.pb"
PRIVATE_ACCOUNT = "spot@private.account.v3.api.pb"
PRIVATE = frozenset({PRIVATE_ORDERS, PRIVATE_DEALS, PRIVATE_ACCOUNT})
MALFORMED_BINARY = b"\x0a\x64spot@truncated"  # field 1 claims 100 bytes, 14 follow


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _text(value: str | Decimal) -> str:
    """A number as MEXC writes it in a frame: a plain decimal string."""
    return value if isinstance(value, str) else format(value, "f")


@dataclass(eq=False)
class FakeConnection:
    """What the server saw of one client connection."""

    id: int
    path: str
    listen_key: str | None
    ws: ServerConnection
    subscriptions: set[str] = field(default_factory=set)
    subscribe_requests: list[list[str]] = field(default_factory=list)
    unsubscribe_requests: list[list[str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    pings: int = 0
    received: list[str] = field(default_factory=list)
    closed: bool = False
    close_code: int | None = None
    dropped_by_server: bool = False
    # Event-loop times, to check ordering (e.g. make-before-break rotation).
    opened_at: float = 0.0
    first_subscribed_at: float | None = None
    closed_at: float | None = None

    async def send(self, message: bytes | str) -> bool:
        if self.closed:
            return False
        try:
            await self.ws.send(message)
        except ConnectionClosed:
            return False
        return True


class FakeMexcWebSocketServer:
    def __init__(
        self,
        *,
        max_streams: int = 30,
        listen_keys: set[str] | None = None,
        answer_pings: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.max_streams = max_streams
        self.listen_keys = listen_keys  # None: any non-empty listenKey is accepted
        self.answer_pings = answer_pings
        self.host = host
        self.port = 0
        self.connections: list[FakeConnection] = []
        self.rejected_handshakes = 0
        self._reject_next = 0
        self._reject_status = HTTPStatus.SERVICE_UNAVAILABLE
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._changed = asyncio.Condition()

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeMexcWebSocketServer:
        self._server = await serve(
            self._handle, self.host, 0, ping_interval=None, process_request=self._process_request, compression=None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def open_connections(self) -> list[FakeConnection]:
        return [c for c in self.connections if not c.closed]

    # --- test controls --------------------------------------------------------------------------

    def reject_handshakes(self, count: int, status: HTTPStatus = HTTPStatus.SERVICE_UNAVAILABLE) -> None:
        """Refuse the next `count` WebSocket handshakes with an HTTP error."""
        self._reject_next = count
        self._reject_status = status

    async def drop_all(self) -> int:
        """Abort every open connection at the TCP level (no close frame): a network drop."""
        dropped = 0
        for conn in self.open_connections:
            conn.dropped_by_server = True
            transport = conn.ws.transport
            if transport is not None:
                transport.abort()
                dropped += 1
        return dropped

    async def close_all(self, code: int = 1000, reason: str = "") -> None:
        for conn in self.open_connections:
            with contextlib.suppress(Exception):
                await conn.ws.close(code, reason)

    async def send_malformed(self, payload: bytes | str = MALFORMED_BINARY) -> int:
        """Send a bad frame (truncated protobuf by default, or any text) to every open connection."""
        return sum([await conn.send(payload) for conn in self.open_connections])

    # A test helper's deadline in seconds, as every wait helper of the tests takes it.
    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Until `predicate()` holds (checked on every server event and every 20 ms, so it
        may also look at client state); TimeoutError after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.02)

    async def wait_subscribed(self, channel: str, connections: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Until `connections` open connections hold `channel`."""
        await self.wait_until(
            lambda: sum(channel in c.subscriptions for c in self.open_connections) >= connections, timeout
        )

    def subscribers(self, channel: str) -> list[FakeConnection]:
        return [c for c in self.open_connections if channel in c.subscriptions]

    # --- publishing -----------------------------------------------------------------------------

    async def publish_deal(
        self,
        symbol: object,
        price: str | Decimal,
        quantity: str | Decimal,
        trade_type: int = 1,
        time_ms: int | None = None,
    ) -> int:
        """Push one aggregated deal to every connection subscribed to the symbol's deals
        (any interval). Returns how many connections it went to."""
        code = str(symbol)
        deal = PublicAggreDealsV3ApiItem(
            price=_text(price), quantity=_text(quantity), tradeType=trade_type, time=time_ms or _now_ms()
        )
        body = PublicAggreDealsV3Api(deals=[deal], eventType=DEALS_PREFIX.rstrip("@"))
        return await self._publish_public(DEALS_PREFIX, code, body)

    async def publish_deals(self, symbol: object, deals: list[Message]) -> int:
        """Push these deals (PublicAggreDealsV3ApiItem messages) in one frame."""
        body = PublicAggreDealsV3Api(deals=deals, eventType=DEALS_PREFIX.rstrip("@"))
        return await self._publish_public(DEALS_PREFIX, str(symbol), body)

    async def publish_book_ticker(
        self,
        symbol: object,
        bid: str | Decimal,
        bid_quantity: str | Decimal,
        ask: str | Decimal,
        ask_quantity: str | Decimal,
        send_time_ms: int | None = None,
    ) -> int:
        body = PublicAggreBookTickerV3Api(
            bidPrice=_text(bid), bidQuantity=_text(bid_quantity), askPrice=_text(ask), askQuantity=_text(ask_quantity)
        )
        return await self._publish_public(BOOK_TICKER_PREFIX, str(symbol), body, send_time_ms)

    async def publish_private_order(self, order: Message, symbol: str, listen_key: str | None = None) -> int:
        """Push a PrivateOrdersV3Api message."""
        return await self._publish_private(PRIVATE_ORDERS, order, symbol, listen_key)

    async def publish_private_deal(self, deal: Message, symbol: str, listen_key: str | None = None) -> int:
        """Push a PrivateDealsV3Api message."""
        return await self._publish_private(PRIVATE_DEALS, deal, symbol, listen_key)

    async def publish_private_account(self, account: Message, listen_key: str | None = None) -> int:
        """Push a PrivateAccountV3Api message."""
        return await self._publish_private(PRIVATE_ACCOUNT, account, None, listen_key)

    async def _publish_public(self, prefix: str, code: str, body: Message, send_time_ms: int | None = None) -> int:
        sent = 0
        for conn in self.open_connections:
            for channel in sorted(conn.subscriptions):
                if channel.startswith(prefix) and channel.endswith("@" + code):
                    ms = send_time_ms or _now_ms()
                    sent += await conn.send(encode_push(channel, body, code, ms, ms))
                    break
        return sent

    async def _publish_private(self, channel: str, body: Message, symbol: str | None, listen_key: str | None) -> int:
        sent = 0
        for conn in self.open_connections:
            if channel in conn.subscriptions and (listen_key is None or conn.listen_key == listen_key):
                ms = _now_ms()
                sent += await conn.send(encode_push(channel, body, symbol, ms, ms))
        return sent

    # --- the protocol ---------------------------------------------------------------------------

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if self._reject_next > 0:
            self._reject_next -= 1
            self.rejected_handshakes += 1
            return _response(self._reject_status, "try again later")
        parts = urlsplit(request.path)
        if parts.path.rstrip("/") != "/ws":
            return _response(HTTPStatus.NOT_FOUND, "no such path")
        key = parse_qs(parts.query).get("listenKey", [None])[0]
        if key is not None and self.listen_keys is not None and key not in self.listen_keys:
            self.rejected_handshakes += 1
            return _response(HTTPStatus.UNAUTHORIZED, "invalid listenKey")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/ws"
        key = parse_qs(urlsplit(path).query).get("listenKey", [None])[0]
        loop = asyncio.get_running_loop()
        conn = FakeConnection(next(self._ids), path, key, ws, opened_at=loop.time())
        self.connections.append(conn)
        await self._notify()
        try:
            async for message in ws:
                if isinstance(message, str):
                    conn.received.append(message)
                    await self._on_text(conn, message)
                    await self._notify()
        except ConnectionClosed:
            pass
        finally:
            conn.closed = True
            conn.closed_at = loop.time()
            conn.close_code = ws.close_code
            await self._notify()

    async def _on_text(self, conn: FakeConnection, text: str) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            await conn.send(_reply(1, "invalid json"))
            return
        method = request.get("method") if isinstance(request, dict) else None
        params = request.get("params") if isinstance(request, dict) else None
        if method == "PING":
            conn.pings += 1
            if self.answer_pings:
                await conn.send(_reply(0, "PONG"))
        elif method == "SUBSCRIPTION" and isinstance(params, list):
            channels = [str(p) for p in params]
            conn.subscribe_requests.append(channels)
            if conn.first_subscribed_at is None:
                conn.first_subscribed_at = asyncio.get_running_loop().time()
            accepted, refused = [], []
            for channel in channels:
                if channel in conn.subscriptions:
                    accepted.append(channel)
                elif channel in PRIVATE and conn.listen_key is None or len(conn.subscriptions) >= self.max_streams:
                    refused.append(channel)
                else:
                    conn.subscriptions.add(channel)
                    accepted.append(channel)
            if accepted:
                await conn.send(_reply(0, ",".join(accepted)))
            if refused:
                conn.refused.extend(refused)
                reason = "no listenKey" if all(c in PRIVATE for c in refused) else f"over {self.max_streams} streams"
                await conn.send(_reply(0, f"Not Subscribed successfully! [{','.join(refused)}].  Reason: {reason}"))
        elif method == "UNSUBSCRIPTION" and isinstance(params, list):
            channels = [str(p) for p in params]
            conn.unsubscribe_requests.append(channels)
            conn.subscriptions.difference_update(channels)
            await conn.send(_reply(0, ",".join(channels)))
        else:
            await conn.send(_reply(1, f"unknown method {method!r}"))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def _reply(code: int, msg: str) -> str:
    return json.dumps({"id": 0, "code": code, "msg": msg})


def _response(status: HTTPStatus, text: str) -> Response:
    body = text.encode()
    headers = Headers([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)
