"""MEXC spot WebSocket clients: public prices for held symbols, and the private user stream.

Protocol (see /work/shared/mexc/FACTS.md, "WebSocket"): control messages are JSON text
(`{"method":"SUBSCRIPTION"|"UNSUBSCRIPTION","params":[...]}`, `{"method":"PING"}`; replies
`{"id":0,"code":0,"msg":...}`), data pushes are binary protobuf (`PushDataV3ApiWrapper`).
A subscription MEXC refuses is answered `msg: "Not Subscribed successfully! [...]. Reason..."`.

Both clients share one connection engine (`_Connection`) that:
- pings with `{"method":"PING"}` every `ping_interval` and closes a connection that has
  sent nothing (not even a PONG) for `stale_after`;
- reconnects after a drop with exponential backoff and jitter, and subscribes again to
  everything wanted;
- rotates before MEXC's 24 h cut (`max_lifetime`): it opens and subscribes the
  replacement first, then closes the old connection (make-before-break: no gap, a few
  duplicate pushes are possible during the overlap);
- never dies on a bad frame: malformed frames are counted (`stats.malformed_frames`),
  logged and skipped.

Delivery: each client owns an `asyncio.Queue` (`ticks` / `updates`) and is also an async
iterator over it (`async for tick in stream`). The queue is bounded; when the consumer
falls behind, the OLDEST item is discarded (`stats.overflowed`): for prices the newest
value is what matters. Run the consumer as its own task.

Lifecycle: `await stream.start()` / `await stream.stop()`, or `async with stream:`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from adapters.mexc.protobuf import ProtobufDecodeError, decode_push, read_decimal
from application.errors import ConfigurationError
from application.ports import PriceTick
from domain.values import Symbol

log = logging.getLogger(__name__)

DEFAULT_WS_URL = "wss://wbs-api.mexc.com/ws"
MAX_STREAMS_PER_CONNECTION = 30

PRIVATE_ORDERS_CHANNEL = "spot@private.orders.v3.api.pb"
PRIVATE_DEALS_CHANNEL = "spot@private.deals.v3.api.pb"
PRIVATE_ACCOUNT_CHANNEL = "spot@private.account.v3.api.pb"
PRIVATE_CHANNELS = (PRIVATE_ORDERS_CHANNEL, PRIVATE_DEALS_CHANNEL, PRIVATE_ACCOUNT_CHANNEL)

_PING = json.dumps({"method": "PING"})
_NOT_SUBSCRIBED = "Not Subscribed"
_BRACKETS = re.compile(r"\[([^\]]*)\]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EARLIEST_MS = 1_420_070_400_000  # 2015-01-01


class MarketChannel(Enum):
    DEALS = "spot@public.aggre.deals.v3.api.pb"
    BOOK_TICKER = "spot@public.aggre.bookTicker.v3.api.pb"

    def name_for(self, symbol: Symbol, interval: str = "100ms") -> str:
        return f"{self.value}@{interval}@{symbol.code}"


def deals_channel(symbol: Symbol, interval: str = "100ms") -> str:
    return MarketChannel.DEALS.name_for(symbol, interval)


def book_ticker_channel(symbol: Symbol, interval: str = "100ms") -> str:
    return MarketChannel.BOOK_TICKER.name_for(symbol, interval)


class BookPrice(Enum):
    """Which side of a book ticker becomes the tick price. BID (default) is what a market
    sell would get, so exits (take-profit, stop-loss) are judged on an executable price."""

    BID = "bid"
    ASK = "ask"
    MID = "mid"


@dataclass(frozen=True, slots=True)
class StreamSettings:
    ping_interval: timedelta = timedelta(seconds=20)
    # No frame at all (push, ack or PONG) for this long: the connection is dead, reopen it.
    stale_after: timedelta = timedelta(seconds=50)
    # MEXC cuts a connection after 24 h; rotate comfortably before that.
    max_lifetime: timedelta = timedelta(hours=23, minutes=30)
    max_streams_per_connection: int = MAX_STREAMS_PER_CONNECTION
    backoff_initial: timedelta = timedelta(milliseconds=500)
    backoff_max: timedelta = timedelta(seconds=30)
    # A connection that lived this long resets the backoff after it drops.
    stable_after: timedelta = timedelta(seconds=30)
    open_timeout: timedelta = timedelta(seconds=10)
    close_timeout: timedelta = timedelta(seconds=2)
    max_frame_bytes: int = 1 << 20
    # websockets' proxy setting: True = from the environment, None = direct, or a URL.
    proxy: str | bool | None = True

    def __post_init__(self) -> None:
        if not 1 <= self.max_streams_per_connection <= MAX_STREAMS_PER_CONNECTION:
            raise ConfigurationError(f"max_streams_per_connection must be 1..{MAX_STREAMS_PER_CONNECTION}")
        for name in ("ping_interval", "stale_after", "max_lifetime", "backoff_initial", "backoff_max", "open_timeout"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigurationError(f"stream setting {name} must be positive")


@dataclass(slots=True)
class StreamStats:
    """Counters for tests and monitoring (shared by all connections of one client)."""

    connects: int = 0  # connections opened (first, reconnect or rotation)
    connect_failures: int = 0
    reconnects: int = 0  # connections opened after an unplanned drop
    drops: int = 0  # connections that ended without us asking
    rotations: int = 0  # planned replacements before max_lifetime
    stale_closes: int = 0
    malformed_frames: int = 0
    ignored_frames: int = 0  # well-formed, but not for anything we follow
    pings_sent: int = 0
    pongs: int = 0
    acks: int = 0
    subscription_errors: int = 0
    delivered: int = 0
    overflowed: int = 0
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=50))


def backoff_delay(attempt: int, initial: timedelta, maximum: timedelta, rng: random.Random) -> float:
    """Seconds to wait before attempt `attempt` (1-based): the cap doubles per attempt up to
    `maximum`; the delay is uniform in [cap/2, cap] ("equal jitter")."""
    doublings = min(max(attempt - 1, 0), 62)  # past this the cap is long reached; keeps the float finite
    cap = min(maximum.total_seconds(), initial.total_seconds() * (2**doublings))
    return cap / 2 + rng.uniform(0, cap / 2)


def _ms_to_datetime(ms: int | None, now: datetime) -> datetime:
    """An exchange epoch-ms time, or `now` when absent or implausible."""
    if ms is None or ms < _EARLIEST_MS:
        return now
    at = _EPOCH + timedelta(milliseconds=ms)
    return now if at > now + timedelta(days=1) else at


def _system_now() -> datetime:
    return datetime.now(UTC)


# --- one managed connection -------------------------------------------------------------------


class _Connection:
    """One WebSocket kept open and subscribed to `desired`, until stopped."""

    def __init__(
        self,
        name: str,
        url_provider: Callable[[], Awaitable[str]],
        on_binary: Callable[[bytes], None],
        settings: StreamSettings,
        stats: StreamStats,
        rng: random.Random,
        on_connect_failure: Callable[[Exception], None] | None = None,
    ) -> None:
        self.name = name
        self._url_provider = url_provider
        self._on_binary = on_binary
        self._settings = settings
        self._stats = stats
        self._rng = rng
        self._on_connect_failure = on_connect_failure
        self.desired: set[str] = set()
        self.rejected: set[str] = set()
        self._subscribed: set[str] = set()
        self._ws: ClientConnection | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_frame_at = 0.0

    @property
    def is_open(self) -> bool:
        return self._ws is not None

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"mexc-ws-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def update(self, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        self.desired.update(add)
        self.desired.difference_update(remove)
        self.rejected.difference_update(remove)
        await self._sync()

    async def kick(self, reason: str) -> None:
        """Close the current connection; the run loop opens a new one."""
        ws = self._ws
        if ws is not None:
            log.info("MEXC ws %s: closing connection (%s)", self.name, reason)
            with contextlib.suppress(Exception):
                await ws.close(1000, reason[:100])

    # --- run loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        had_connection = False
        while not self._stopping:
            if attempt:
                await asyncio.sleep(
                    backoff_delay(attempt, self._settings.backoff_initial, self._settings.backoff_max, self._rng)
                )
            try:
                ws = await self._open()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
                attempt += 1
                self._connect_failed(exc)
                continue
            if had_connection:
                self._stats.reconnects += 1
            had_connection = True
            opened_at = loop.time()
            await self._serve(ws)
            if self._stopping:
                break
            self._stats.drops += 1
            lived = loop.time() - opened_at
            attempt = 1 if lived >= self._settings.stable_after.total_seconds() else attempt + 1
            log.warning("MEXC ws %s: connection lost after %.1f s; reconnecting", self.name, lived)

    def _connect_failed(self, exc: Exception) -> None:
        self._stats.connect_failures += 1
        self._stats.errors.append(f"connect: {type(exc).__name__}: {exc}")
        log.warning("MEXC ws %s: connect failed: %s: %s", self.name, type(exc).__name__, exc)
        if self._on_connect_failure is not None:
            self._on_connect_failure(exc)

    async def _open(self) -> ClientConnection:
        url = await self._url_provider()
        s = self._settings
        ws = await connect(
            url,
            ping_interval=None,  # MEXC's keep-alive is the JSON PING below
            open_timeout=s.open_timeout.total_seconds(),
            close_timeout=s.close_timeout.total_seconds(),
            max_size=s.max_frame_bytes,
            proxy=s.proxy,  # type: ignore[arg-type]
        )
        self._stats.connects += 1
        self._last_frame_at = asyncio.get_running_loop().time()
        return ws

    async def _attach(self, ws: ClientConnection) -> None:
        """Make `ws` the current connection and subscribe it to everything wanted."""
        async with self._lock:
            self._ws = ws
            self._subscribed = set()
            self.rejected.clear()  # a new connection tries refused channels once more
        await self._sync()

    async def _sync(self) -> None:
        async with self._lock:
            ws = self._ws
            if ws is None:
                return
            wanted = self.desired - self.rejected
            to_remove = sorted(self._subscribed - self.desired)
            to_add = sorted(wanted - self._subscribed)
            try:
                if to_remove:
                    await ws.send(json.dumps({"method": "UNSUBSCRIPTION", "params": to_remove}))
                    self._subscribed.difference_update(to_remove)
                if to_add:
                    await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": to_add}))
                    self._subscribed.update(to_add)
            except ConnectionClosed:
                pass  # the run loop reconnects and subscribes again

    async def _serve(self, ws: ClientConnection) -> None:
        """Serve `ws` (and its rotated successors) until the current one ends."""
        loop = asyncio.get_running_loop()
        try:
            await self._attach(ws)
        except BaseException:
            with contextlib.suppress(Exception):
                await ws.close()
            raise
        lifetime = self._settings.max_lifetime.total_seconds()
        rotate_at = loop.time() + lifetime
        reader = asyncio.create_task(self._read(ws))
        pinger = asyncio.create_task(self._keepalive(ws))
        failures = 0
        try:
            while True:
                done, _ = await asyncio.wait(
                    {reader, pinger}, timeout=max(0.0, rotate_at - loop.time()), return_when=asyncio.FIRST_COMPLETED
                )
                if done or self._stopping:
                    return
                try:
                    new_ws = await self._open()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - keep the old one and try again later
                    failures += 1
                    self._connect_failed(exc)
                    rotate_at = loop.time() + backoff_delay(
                        failures, self._settings.backoff_initial, self._settings.backoff_max, self._rng
                    )
                    continue
                await self._attach(new_ws)
                self._stats.rotations += 1
                log.info("MEXC ws %s: rotated the connection before its lifetime ran out", self.name)
                old_ws, old_reader, old_pinger = ws, reader, pinger
                ws = new_ws
                reader = asyncio.create_task(self._read(ws))
                pinger = asyncio.create_task(self._keepalive(ws))
                rotate_at = loop.time() + lifetime
                failures = 0
                old_pinger.cancel()
                with contextlib.suppress(Exception):
                    await old_ws.close(1000, "rotation")
                await asyncio.gather(old_reader, old_pinger, return_exceptions=True)
        finally:
            for task in (reader, pinger):
                task.cancel()
            await asyncio.gather(reader, pinger, return_exceptions=True)
            if self._ws is ws:
                self._ws = None
            with contextlib.suppress(Exception):
                await ws.close()

    async def _read(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for message in ws:
                self._last_frame_at = loop.time()
                try:
                    if isinstance(message, bytes):
                        self._on_binary(message)
                    else:
                        self._on_text(message)
                except ProtobufDecodeError as exc:
                    self._malformed(f"binary frame: {exc}")
                except Exception as exc:  # noqa: BLE001 - a bad frame never kills the stream
                    log.exception("MEXC ws %s: frame handler failed", self.name)
                    self._malformed(f"handler: {type(exc).__name__}: {exc}")
        except ConnectionClosed as exc:
            if not self._stopping:
                log.info("MEXC ws %s: closed: %s", self.name, exc)

    async def _keepalive(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        interval = self._settings.ping_interval.total_seconds()
        stale = self._settings.stale_after.total_seconds()
        next_ping = loop.time() + interval
        while True:
            now = loop.time()
            silent_until = self._last_frame_at + stale
            if now >= silent_until:
                self._stats.stale_closes += 1
                log.warning("MEXC ws %s: nothing received for %.1f s; closing", self.name, now - self._last_frame_at)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(1000, "stale"), self._settings.close_timeout.total_seconds())
                return
            if now >= next_ping:
                try:
                    await ws.send(_PING)
                except ConnectionClosed:
                    return
                self._stats.pings_sent += 1
                next_ping = now + interval
            await asyncio.sleep(max(0.0, min(next_ping, silent_until) - loop.time()))

    # --- control frames -------------------------------------------------------------------

    def _on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            self._malformed(f"text frame is not JSON: {text[:80]!r}")
            return
        if not isinstance(message, dict):
            self._malformed(f"text frame is not an object: {text[:80]!r}")
            return
        msg = message.get("msg")
        code = message.get("code")
        if msg == "PONG":
            self._stats.pongs += 1
        elif isinstance(msg, str) and (msg.startswith(_NOT_SUBSCRIBED) or (code is not None and code != 0)):
            self._stats.subscription_errors += 1
            self._stats.errors.append(f"subscription: {msg[:200]}")
            refused = self._refused_channels(msg)
            self._subscribed.difference_update(refused)
            self.rejected.update(refused & self.desired)
            log.warning("MEXC ws %s: subscription refused: %s", self.name, msg[:300])
        elif code == 0 and isinstance(msg, str):
            self._stats.acks += 1
        else:
            self._stats.ignored_frames += 1

    @staticmethod
    def _refused_channels(msg: str) -> set[str]:
        found = _BRACKETS.search(msg)
        if found is None:
            return set()
        return {part.strip() for part in found.group(1).split(",") if part.strip()}

    def _malformed(self, reason: str) -> None:
        self._stats.malformed_frames += 1
        self._stats.errors.append(f"malformed: {reason[:200]}")
        log.warning("MEXC ws %s: dropped a malformed frame: %s", self.name, reason)


# --- a bounded queue that keeps the newest items ---------------------------------------------


def _offer(queue: asyncio.Queue[Any], item: object, stats: StreamStats) -> None:
    while True:
        try:
            queue.put_nowait(item)
            stats.delivered += 1
            return
        except asyncio.QueueFull:
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
                stats.overflowed += 1


# --- public market data ------------------------------------------------------------------------


class MexcMarketStream:
    """PriceTicks for the symbols that hold positions.

    `add_symbol` / `remove_symbol` may be called before or after `start()`. Each symbol
    takes one stream per channel (deals and book ticker by default: two); a connection
    carries at most `max_streams_per_connection` (30) streams and more connections are
    opened as needed. A connection left with no stream is closed (MEXC would close it).

    Ticks: every aggregated deal gives a tick at the deal's price and time; every book
    ticker gives a tick at the `book_price` side (bid by default) stamped with the push's
    send time. Consume `stream.ticks` (an asyncio.Queue) or `async for tick in stream`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: StreamSettings | None = None,
        channels: Iterable[MarketChannel] = (MarketChannel.DEALS, MarketChannel.BOOK_TICKER),
        interval: str = "100ms",
        book_price: BookPrice = BookPrice.BID,
        queue_size: int = 10_000,
        now: Callable[[], datetime] = _system_now,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url or DEFAULT_WS_URL  # entrypoints pass MEXC_WS_URL
        self.settings = settings or StreamSettings()
        self.channels = tuple(dict.fromkeys(channels))
        if not self.channels:
            raise ConfigurationError("the market stream needs at least one channel")
        if len(self.channels) > self.settings.max_streams_per_connection:
            raise ConfigurationError("one symbol's channels do not fit on one connection")
        if interval not in ("100ms", "10ms"):
            raise ConfigurationError(f"interval must be 100ms or 10ms, not {interval!r}")
        self.interval = interval
        self.book_price = book_price
        self.ticks: asyncio.Queue[PriceTick] = asyncio.Queue(maxsize=queue_size)
        self.stats = StreamStats()
        self._now = now
        self._rng = rng or random.Random()
        self._symbols: dict[str, Symbol] = {}
        self._shards: list[_Connection] = []
        self._shard_of: dict[str, _Connection] = {}
        self._running = False
        self._serial = 0
        self._changes = asyncio.Lock()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._running = True
        for shard in self._shards:
            shard.start()

    async def stop(self) -> None:
        """Close every connection. The symbols are kept: `start()` again resumes them."""
        self._running = False
        await asyncio.gather(*(shard.stop() for shard in self._shards), return_exceptions=True)

    async def __aenter__(self) -> MexcMarketStream:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __aiter__(self) -> MexcMarketStream:
        return self

    async def __anext__(self) -> PriceTick:
        return await self.ticks.get()

    # --- what to follow ---------------------------------------------------------------------

    @property
    def symbols(self) -> frozenset[Symbol]:
        return frozenset(self._symbols.values())

    @property
    def connection_count(self) -> int:
        """Connections wanted (one per group of up to 30 streams)."""
        return len(self._shards)

    def channels_for(self, symbol: Symbol) -> list[str]:
        return [channel.name_for(symbol, self.interval) for channel in self.channels]

    async def add_symbol(self, symbol: Symbol) -> None:
        async with self._changes:
            if symbol.code in self._symbols:
                return
            wanted = self.channels_for(symbol)
            limit = self.settings.max_streams_per_connection
            shard = next((s for s in self._shards if len(s.desired) + len(wanted) <= limit), None)
            if shard is None:
                self._serial += 1
                shard = _Connection(
                    f"market-{self._serial}", self._url, self._on_push, self.settings, self.stats, self._rng
                )
                self._shards.append(shard)
                if self._running:
                    shard.start()
            self._symbols[symbol.code] = symbol
            self._shard_of[symbol.code] = shard
            await shard.update(add=wanted)

    async def remove_symbol(self, symbol: Symbol) -> None:
        async with self._changes:
            shard = self._shard_of.pop(symbol.code, None)
            self._symbols.pop(symbol.code, None)
            if shard is None:
                return
            await shard.update(remove=self.channels_for(symbol))
            if not shard.desired:
                self._shards.remove(shard)
                await shard.stop()

    # --- pushes --------------------------------------------------------------------------------

    async def _url(self) -> str:
        return self.url

    def _on_push(self, data: bytes) -> None:
        push = decode_push(data)
        code = push.symbol or push.channel.rsplit("@", 1)[-1]
        symbol = self._symbols.get(code)
        if symbol is None:
            self.stats.ignored_frames += 1
            return
        now = self._now()
        kind = push.WhichOneof("body")
        if kind == "publicAggreDeals":
            good = []
            for deal in push.publicAggreDeals.deals:
                price = read_decimal(deal.price, "deal price")
                if price is None or price <= 0:
                    raise ProtobufDecodeError(f"deal for {code} without a positive price: {price}")
                good.append((deal.time, price))
            good.sort(key=lambda d: d[0])
            for time_ms, price in good:
                _offer(self.ticks, PriceTick(symbol, price, _ms_to_datetime(time_ms, now)), self.stats)
        elif kind == "publicAggreBookTicker":
            price = self._book_price(push.publicAggreBookTicker)
            if price is None:
                raise ProtobufDecodeError(f"book ticker for {code} without a usable {self.book_price.value} price")
            at = _ms_to_datetime(push.sendTime or push.createTime, now)
            _offer(self.ticks, PriceTick(symbol, price, at), self.stats)
        else:
            self.stats.ignored_frames += 1

    def _book_price(self, body: Any) -> Decimal | None:
        """`body`: a PublicAggreBookTickerV3Api."""
        bid, ask = read_decimal(body.bidPrice, "bid price"), read_decimal(body.askPrice, "ask price")
        if self.book_price is BookPrice.BID:
            return bid if bid is not None and bid > 0 else None
        if self.book_price is BookPrice.ASK:
            return ask if ask is not None and ask > 0 else None
        if bid is None or ask is None or bid <= 0 or ask <= 0:
            return None
        return (bid + ask) / 2


# --- private user data ----------------------------------------------------------------------------

# The envelope's oneof members of the private channels.
_PRIVATE_BODIES = frozenset({"privateOrders", "privateDeals", "privateAccount"})


@dataclass(frozen=True, slots=True)
class UserDataUpdate:
    """One private push: an order update, one of our fills, or a balance change.

    `payload` is the decoded message (adapters.mexc.protobuf: PrivateOrdersV3Api,
    PrivateDealsV3Api or PrivateAccountV3Api, fields as in MEXC's schema; amounts are strings,
    read them with read_decimal)."""

    channel: str
    symbol: str | None
    at: datetime
    payload: Any


class MexcUserDataStream:
    """Order, fill and balance updates over a listenKey connection.

    The listenKey comes from injected async callables (so this does not depend on the REST
    client): `create_listen_key()` -> key, `keepalive_listen_key(key)`, and optionally
    `close_listen_key(key)` on stop. The key is extended every `keepalive_interval`
    (default 30 min; it is valid 60 min). If an extension fails, or the server refuses the
    key at the handshake, the key is forgotten: the next connection asks for a new one.

    Consume `stream.updates` (an asyncio.Queue of UserDataUpdate) or `async for`.
    Consumers must be idempotent: a rotation overlap or a resubscription can repeat a push.
    """

    def __init__(
        self,
        create_listen_key: Callable[[], Awaitable[str]],
        keepalive_listen_key: Callable[[str], Awaitable[object]],
        close_listen_key: Callable[[str], Awaitable[object]] | None = None,
        url: str | None = None,
        *,
        settings: StreamSettings | None = None,
        keepalive_interval: timedelta = timedelta(minutes=30),
        channels: Iterable[str] = PRIVATE_CHANNELS,
        queue_size: int = 10_000,
        now: Callable[[], datetime] = _system_now,
        rng: random.Random | None = None,
    ) -> None:
        if keepalive_interval <= timedelta(0):
            raise ConfigurationError("keepalive_interval must be positive")
        self.url = url or DEFAULT_WS_URL  # entrypoints pass MEXC_WS_URL
        self.settings = settings or StreamSettings()
        self.keepalive_interval = keepalive_interval
        self.channels = tuple(dict.fromkeys(channels))
        self.updates: asyncio.Queue[UserDataUpdate] = asyncio.Queue(maxsize=queue_size)
        self.stats = StreamStats()
        self.listen_key: str | None = None
        self.keys_created = 0
        self.keepalives = 0
        self.keepalive_failures = 0
        self._create = create_listen_key
        self._keepalive = keepalive_listen_key
        self._close = close_listen_key
        self._now = now
        self._connection = _Connection(
            "user-data", self._url, self._on_push, self.settings, self.stats, rng or random.Random(),
            self._connect_failed,
        )
        self._connection.desired.update(self.channels)
        self._keepalive_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._connection.start()
        if self._keepalive_task is None:
            self._keepalive_task = asyncio.create_task(self._keep_key_alive(), name="mexc-listen-key-keepalive")

    async def stop(self) -> None:
        task, self._keepalive_task = self._keepalive_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._connection.stop()
        key, self.listen_key = self.listen_key, None
        if key is not None and self._close is not None:
            try:
                await self._close(key)
            except Exception as exc:  # noqa: BLE001 - best effort; the key expires anyway
                log.warning("MEXC user data: closing the listen key failed: %s", exc)

    async def __aenter__(self) -> MexcUserDataStream:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __aiter__(self) -> MexcUserDataStream:
        return self

    async def __anext__(self) -> UserDataUpdate:
        return await self.updates.get()

    # --- the listen key ------------------------------------------------------------------------

    async def _url(self) -> str:
        if self.listen_key is None:
            key = await self._create()
            if not isinstance(key, str) or not key.strip():
                raise ValueError(f"create_listen_key returned no key: {key!r}")
            self.listen_key = key.strip()
            self.keys_created += 1
        return _with_query(self.url, listenKey=self.listen_key)

    def _connect_failed(self, exc: Exception) -> None:
        if isinstance(exc, InvalidStatus) and exc.response.status_code in (400, 401, 403, 404, 410):
            log.warning("MEXC user data: the server refused the listen key; a new one will be created")
            self.listen_key = None

    async def _keep_key_alive(self) -> None:
        interval = self.keepalive_interval.total_seconds()
        while True:
            await asyncio.sleep(interval)
            key = self.listen_key
            if key is None:
                continue
            try:
                await self._keepalive(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - renew the key instead
                self.keepalive_failures += 1
                self.stats.errors.append(f"keepalive: {type(exc).__name__}: {exc}")
                log.warning("MEXC user data: listen key keep-alive failed (%s); renewing the key", exc)
                if self.listen_key == key:
                    self.listen_key = None
                await self._connection.kick("listen key renewal")
            else:
                self.keepalives += 1

    # --- pushes --------------------------------------------------------------------------------

    def _on_push(self, data: bytes) -> None:
        push = decode_push(data)
        kind = push.WhichOneof("body")
        if kind in _PRIVATE_BODIES:
            body = getattr(push, kind)
            at_ms = body.createTime if kind == "privateOrders" else body.time
            at = _ms_to_datetime(at_ms or push.sendTime or push.createTime, self._now())
            symbol = push.symbol if push.HasField("symbol") else None
            _offer(self.updates, UserDataUpdate(push.channel, symbol, at, body), self.stats)
        else:
            self.stats.ignored_frames += 1


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
