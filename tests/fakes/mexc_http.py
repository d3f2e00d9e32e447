"""FakeMexcServer: a real HTTP/1.1 server on 127.0.0.1 that answers like MEXC spot v3 REST.

Built on asyncio.Protocol with a minimal parser (keep-alive, Content-Length bodies; no
chunked uploads, no pipelining needed by httpx): a request is handled synchronously inside
`data_received` unless a fault delays it, so the per-request overhead stays small enough for
the latency benchmark.

What it checks and does (FACTS.md):
- signed endpoints: X-MEXC-APIKEY (700001 missing / 10072 wrong), signature over query +
  body without '&' (700002), recvWindow <= 60000 (700005), timestamp against its own clock,
  which tests can skew (`skew_ms`): accepted when ts < server + 1000 and server - ts <= recvWindow
  (700003 otherwise);
- per-endpoint weights in a sliding window (default 500 per 10 s): 429 + Retry-After, and
  418 (a ban of every endpoint) when a caller keeps going during Retry-After;
- symbols from exchangeInfo (status "1" or "ENABLED", precisions as ints or strings,
  optionally the {"code":200,"data":...} wrapper) and defaultSymbols;
- a symbol opens at `opens_at_ms` (server time): 10007 before, and always when it is not in
  defaultSymbols;
- MARKET orders fill at the symbol's price: quoteOrderQty -> executedQty rounded down to
  the base scale, cummulativeQuoteQty = executedQty x price; LIMIT rests (or fills when it
  crosses); IMMEDIATE_OR_CANCEL fills what crosses (at most the symbol's `ask_quantity` for a buy,
  when set: the rest is PARTIALLY_CANCELED) or is CANCELED; balances move (10101 when short);
- fees: with `charge_fees`, every fill pays the symbol's taker fee in the asset it receives,
  as MEXC does by default (a buy's fee comes out of the bought coin: the account then holds
  less than executedQty); without it fills are free. GET order never shows the fee; GET
  myTrades lists each fill with `commission` and `commissionAsset` (0 and the received asset
  when free);
- orders by client id: GET/DELETE order by origClientOrderId (-2011 unknown), openOrders;
  a reused newClientOrderId is refused (-2010: MEXC documents no code for this);
- POST order/test validates like an order and answers {};
- GET /api/v1/contract/detail (the futures list, which ccxt's load_markets reads) answers
  an empty list.

Faults (`inject`) act before everything else, on the next matching requests: see FaultKind.
Every POST /api/v3/order is recorded in `order_arrivals` with time.perf_counter_ns() taken
when its bytes arrived (and `on_order_arrival` is called), for benchmarks.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from adapters.mexc.limits import weight_of
from adapters.mexc.signing import Signer

API = "/api/v3"
ORDER = f"POST {API}/order"
ORDER_TEST = f"POST {API}/order/test"
QUERY_ORDER = f"GET {API}/order"
CANCEL_ORDER = f"DELETE {API}/order"
OPEN_ORDERS = f"GET {API}/openOrders"
MY_TRADES = f"GET {API}/myTrades"
ACCOUNT = f"GET {API}/account"
TIME = f"GET {API}/time"
PING = f"GET {API}/ping"
EXCHANGE_INFO = f"GET {API}/exchangeInfo"
DEFAULT_SYMBOLS = f"GET {API}/defaultSymbols"
TICKER_PRICE = f"GET {API}/ticker/price"
BOOK_TICKER = f"GET {API}/ticker/bookTicker"
DEPTH = f"GET {API}/depth"
KLINES = f"GET {API}/klines"
# Futures contract list (contract API, not spot v3): ccxt's load_markets asks for it; the fake lists none.
CONTRACT_DETAIL = "GET /api/v1/contract/detail"
# The web endpoints of the new-coin calendar and the symbol states (see adapters/mexc/listings.py).
CALENDAR = "GET /api/operation/new_coin_calendar"
SYMBOLS_V2 = "GET /api/platform/spot/market-v2/web/symbolsV2"

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            418: "I'm a teapot", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}
_MAX_HEAD = 64 * 1024


class FaultKind(Enum):
    RATE_LIMITED = "429"  # 429 with Retry-After; not processed
    BANNED = "418"  # 418 with Retry-After; not processed
    SERVER_ERROR = "5xx"  # `status` (503); processed first when accept=True
    ERROR_CODE = "error-code"  # `status` (400) with {"code": code, "msg": message}; not processed
    MALFORMED_JSON = "malformed-json"  # 200 with a truncated JSON body; processed first when accept=True
    TIMEOUT_AFTER_ACCEPT = "timeout-after-accept"  # processed (order recorded), no reply; dropped after `delay`
    TIMEOUT_BEFORE_ACCEPT = "timeout-before-accept"  # held `delay`, never processed, dropped
    DROP_AFTER_ACCEPT = "drop-after-accept"  # processed, then the connection closes at once without a reply
    DELAY = "delay"  # held `delay`, then processed and answered normally
    CORRUPT_BODY = "corrupt-body"  # 200 claiming gzip with a body that is not; processed when accept=True


@dataclass
class Fault:
    """A misbehaviour for the next `times` requests to `endpoint` ("METHOD /path"; None = any)."""

    kind: FaultKind
    endpoint: str | None = None
    times: int = 1
    status: int = 0
    retry_after: str | None = "1"
    delay: float = 1.0
    accept: bool = False
    code: int = 0
    message: str = ""



@dataclass
class FakeListing:
    """One announced listing: its calendar entry and its symbolsV2 state codes."""

    coin_id: str
    ticker: str
    launch_ms: int  # server time
    full_name: str = ""
    sts: int = 1
    st: int = 1
    tt: int = 1


@dataclass
class FakeSymbol:
    symbol: str
    base: str
    quote: str = "USDT"
    price: Decimal = Decimal("1")  # where MARKET orders fill
    price_scale: int = 4
    quantity_scale: int = 2
    quote_scale: int = 2
    min_quantity: Decimal = Decimal("0.01")
    min_notional: Decimal = Decimal("1")
    min_market_notional: Decimal = Decimal("1")
    max_notional: Decimal = Decimal("2000000")
    max_market_notional: Decimal = Decimal("100000")
    taker_fee: Decimal = Decimal("0.0005")
    maker_fee: Decimal = Decimal("0")
    status: str = "1"
    trade_side_type: int | str = 1
    precisions_as_strings: bool = False
    order_types: tuple[str, ...] = ("LIMIT", "MARKET", "LIMIT_MAKER", "IMMEDIATE_OR_CANCEL")
    listed: bool = True  # shown by exchangeInfo
    api_tradable: bool = True  # in defaultSymbols (10007 otherwise)
    opens_at_ms: int | None = None  # server time; 10007 before
    market_orders: bool = True  # 30019 when False
    trading: bool = True  # 30016 when False
    full_name: str = ""
    # What is offered at `price` to an IMMEDIATE_OR_CANCEL buy that crosses (None: any quantity);
    # each such fill takes from it. A thin book at the open: the order fills in part.
    ask_quantity: Decimal | None = None

    def info(self) -> dict[str, Any]:
        as_precision: Callable[[int], int | str] = str if self.precisions_as_strings else int
        return {
            "symbol": self.symbol, "status": self.status, "baseAsset": self.base,
            "baseAssetPrecision": as_precision(self.quantity_scale), "quoteAsset": self.quote,
            "quotePrecision": as_precision(self.price_scale), "quoteAssetPrecision": as_precision(self.quote_scale),
            "baseCommissionPrecision": as_precision(self.quantity_scale),
            "quoteCommissionPrecision": as_precision(self.quote_scale),
            "orderTypes": list(self.order_types), "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "quoteAmountPrecision": self.min_notional, "baseSizePrecision": self.min_quantity,
            "permissions": ["SPOT"], "filters": [], "maxQuoteAmount": self.max_notional,
            "makerCommission": self.maker_fee, "takerCommission": self.taker_fee,
            "quoteAmountPrecisionMarket": self.min_market_notional, "maxQuoteAmountMarket": self.max_market_notional,
            "fullName": self.full_name or self.base, "tradeSideType": self.trade_side_type,
        }


@dataclass
class FakeOrder:
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    status: str
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    quote_qty: Decimal
    orig_quote_qty: Decimal
    time_ms: int
    created_monotonic: float = field(default_factory=time.monotonic)

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1, "clientOrderId": self.client_order_id,
            "price": self.price, "origQty": self.orig_qty, "executedQty": self.executed_qty,
            "cummulativeQuoteQty": self.quote_qty, "status": self.status, "timeInForce": None, "type": self.type,
            "side": self.side, "stopPrice": None, "icebergQty": None, "time": self.time_ms, "updateTime": self.time_ms,
            "isWorking": True, "origQuoteOrderQty": self.orig_quote_qty,
        }


@dataclass
class FakeTrade:
    """One fill, as GET myTrades lists it."""

    trade_id: int
    order: FakeOrder
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.order.symbol, "id": str(self.trade_id), "orderId": self.order.order_id, "orderListId": -1,
            "price": self.price, "qty": self.qty, "quoteQty": self.quote_qty, "commission": self.commission,
            "commissionAsset": self.commission_asset, "time": self.time_ms, "isBuyer": self.order.side == "BUY",
            "isMaker": False, "isBestMatch": True, "isSelfTrade": False, "clientOrderId": self.order.client_order_id,
        }


@dataclass
class OrderArrival:
    """One POST /api/v3/order as it arrived; `outcome` is "accepted", an error code, or a fault."""

    perf_ns: int
    client_order_id: str | None
    server_ms: int | None = None
    outcome: str = "pending"


@dataclass
class _Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: str
    close: bool
    arrival_ns: int

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


class _Reply(Exception):
    """Internal: answer at once with this status and JSON body."""

    def __init__(self, status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.status, self.body, self.headers = status, body, tuple(headers)


def _error(status: int, code: int, msg: str) -> _Reply:
    return _Reply(status, {"code": code, "msg": msg})


def _response(status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n")
    return head.encode("latin-1") + body


class _Window:
    __slots__ = ("log", "used", "penalty_until", "violations")

    def __init__(self) -> None:
        self.log: deque[tuple[float, int]] = deque()
        self.used = 0
        self.penalty_until = 0.0
        self.violations = 0


class FakeMexcServer:
    def __init__(
        self,
        *,
        api_key: str = "test-key",
        api_secret: str = "test-secret",  # noqa: S107 - the fake exchange's own test key
        symbols: Iterable[FakeSymbol] = (),
        balances: dict[str, Decimal | str | int] | None = None,
        skew_ms: int = 0,
        reply_with_fill: bool = False,
        wrap_exchange_info: bool = False,
        endpoint_budget: int = 500,
        window_seconds: float = 10.0,
        endpoint_budgets: dict[str, int] | None = None,
        ban_after: int = 10,
        ban_seconds: float = 120.0,
        order_visibility_delay: float = 0.0,
        charge_fees: bool = False,
        fills_per_order: int = 1,
        fill_spacing_ms: int = 0,
    ) -> None:
        self.api_key = api_key
        self._signer = Signer(api_secret)
        self.symbols: dict[str, FakeSymbol] = {s.symbol: s for s in symbols}
        self.balances: dict[str, Decimal] = {k: Decimal(str(v)) for k, v in (balances or {"USDT": "1000"}).items()}
        self.locked: dict[str, Decimal] = {}
        self.skew_ms = skew_ms
        self.reply_with_fill = reply_with_fill  # MEXC's POST reply has no fill info; True adds it
        self.wrap_exchange_info = wrap_exchange_info
        self.endpoint_budget = endpoint_budget
        self.window_seconds = window_seconds
        self.endpoint_budgets = dict(endpoint_budgets or {})
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        # FACTS.md: a filled market order may briefly answer "not found". Orders younger
        # than this are unknown to GET order / openOrders (the duplicate check still sees them).
        self.order_visibility_delay = order_visibility_delay
        # MEXC's default: the taker fee out of the asset each fill receives (see the module doc).
        self.charge_fees = charge_fees
        # A market order matched against many makers: its quantity in this many fills (at the
        # step), each listed by myTrades, `fill_spacing_ms` apart (0: all in the order's millisecond).
        self.fills_per_order = fills_per_order
        self.fill_spacing_ms = fill_spacing_ms
        self.trades: list[FakeTrade] = []
        self.faults: list[Fault] = []
        self.orders: dict[str, FakeOrder] = {}  # by client order id
        self.order_arrivals: list[OrderArrival] = []
        self.on_order_arrival: Callable[[OrderArrival], None] | None = None
        self.hits: Counter[str] = Counter()  # requests received, by endpoint
        self.replies: list[tuple[str, int]] = []  # (endpoint, status) of every reply written
        self.banned_until = 0.0
        self._windows: dict[str, _Window] = {}
        self._sequence = 0
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self._routes: dict[str, tuple[Callable[[_Request, dict[str, str]], Any], bool]] = {
            PING: (self._ping, False), TIME: (self._time, False), EXCHANGE_INFO: (self._exchange_info, False),
            DEFAULT_SYMBOLS: (self._default_symbols, False), TICKER_PRICE: (self._ticker_price, False),
            BOOK_TICKER: (self._book_ticker, False), DEPTH: (self._depth, False), KLINES: (self._klines, False),
            ACCOUNT: (self._account, True), ORDER: (self._new_order, True), ORDER_TEST: (self._test_order, True),
            QUERY_ORDER: (self._query_order, True), CANCEL_ORDER: (self._cancel_order, True),
            OPEN_ORDERS: (self._open_orders, True), MY_TRADES: (self._my_trades, True),
            CONTRACT_DETAIL: (self._contract_detail, False),
            CALENDAR: (self._calendar, False), SYMBOLS_V2: (self._symbols_v2, False),
        }
        # Announced listings (the calendar and symbolsV2), by coin id.
        self.listings: dict[str, FakeListing] = {}

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> FakeMexcServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- test controls -------------------------------------------------------------------

    def now_ms(self) -> int:
        """The fake exchange's clock: wall time + skew_ms."""
        return time.time_ns() // 1_000_000 + self.skew_ms

    def add_symbol(self, symbol: FakeSymbol) -> FakeSymbol:
        self.symbols[symbol.symbol] = symbol
        return symbol

    def open_in(self, symbol: str, seconds: float) -> int:
        """Open `symbol` that many seconds from now (server time); returns the open time in ms."""
        at = self.now_ms() + int(seconds * 1000)
        self.symbols[symbol].opens_at_ms = at
        return at

    def inject(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def clear_faults(self) -> None:
        self.faults.clear()

    def accepted_orders(self, symbol: str | None = None) -> list[FakeOrder]:
        return [o for o in self.orders.values() if symbol is None or o.symbol == symbol]

    def statuses(self, endpoint: str) -> list[int]:
        return [status for ep, status in self.replies if ep == endpoint]

    # --- request handling ----------------------------------------------------------------

    def _take_fault(self, endpoint: str) -> Fault | None:
        for fault in self.faults:
            if fault.endpoint is None or fault.endpoint == endpoint:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def handle(self, req: _Request, conn: _Connection) -> Callable[[], Awaitable[None]] | None:
        """Answer now (write and return None) or return a delayed action for the connection."""
        endpoint = req.endpoint
        self.hits[endpoint] += 1
        arrival = None
        if endpoint == ORDER:
            arrival = OrderArrival(req.arrival_ns, _param_of(req, "newClientOrderId"))
            self.order_arrivals.append(arrival)
            if self.on_order_arrival is not None:
                self.on_order_arrival(arrival)
        fault = self._take_fault(endpoint) if self.faults else None
        if fault is None:
            conn.write(self._answer(req, arrival), endpoint, req.close)
            return None
        if arrival is not None:
            arrival.outcome = f"fault:{fault.kind.value}"
        kind = fault.kind
        if kind is FaultKind.RATE_LIMITED or kind is FaultKind.BANNED:
            status = 429 if kind is FaultKind.RATE_LIMITED else 418
            headers = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
            conn.write(_response(status, msgspec.json.encode({"code": status, "msg": "Too Many Requests"}), headers),
                       endpoint, req.close, status)
        elif kind is FaultKind.SERVER_ERROR:
            if fault.accept:
                self._answer(req, arrival)
            status = fault.status or 503
            page = b"<html><body>" + str(status).encode() + b" Service Unavailable</body></html>"
            conn.write(_response(status, page), endpoint, req.close, status)
        elif kind is FaultKind.ERROR_CODE:
            status = fault.status or 400
            conn.write(_response(status, msgspec.json.encode({"code": fault.code, "msg": fault.message})),
                       endpoint, req.close, status)
        elif kind is FaultKind.MALFORMED_JSON:
            if fault.accept:
                self._answer(req, arrival)
            conn.write(_response(200, b'{"symbol":"NEWUSDT","orderId":"C02__1","price":"0.1'), endpoint, req.close, 200)
        elif kind is FaultKind.CORRUPT_BODY:
            if fault.accept:
                self._answer(req, arrival)
            conn.write(_response(200, b"\x1f\x8b not really gzip", [("Content-Encoding", "gzip")]),
                       endpoint, req.close, 200)
        elif kind is FaultKind.DROP_AFTER_ACCEPT:
            self._answer(req, arrival)
            conn.abort()
        elif kind is FaultKind.TIMEOUT_AFTER_ACCEPT:
            self._answer(req, arrival)
            delay = fault.delay

            async def drop_later() -> None:
                await asyncio.sleep(delay)
                conn.abort()

            return drop_later
        elif kind is FaultKind.TIMEOUT_BEFORE_ACCEPT:
            delay = fault.delay

            async def drop_unprocessed() -> None:
                await asyncio.sleep(delay)
                conn.abort()

            return drop_unprocessed
        elif kind is FaultKind.DELAY:
            delay = fault.delay

            async def answer_later() -> None:
                await asyncio.sleep(delay)
                conn.write(self._answer(req, arrival), endpoint, req.close)

            return answer_later
        return None

    def _answer(self, req: _Request, arrival: OrderArrival | None) -> bytes:
        headers: tuple[tuple[str, str], ...]
        try:
            route = self._routes.get(req.endpoint)
            if route is None:
                raise _Reply(404, {"code": 404, "msg": f"no route {req.endpoint}"})
            self._rate_limit(req.endpoint)
            handler, signed = route
            params = dict(parse_qsl(req.query, keep_blank_values=True))
            if req.body:
                params.update(parse_qsl(req.body, keep_blank_values=True))
            if signed:
                self._authenticate(req, params)
            if arrival is not None:
                arrival.server_ms = self.now_ms()
            status, body, headers = 200, handler(req, params), ()
        except _Reply as reply:
            status, body, headers = reply.status, reply.body, reply.headers
        if arrival is not None and arrival.outcome == "pending":
            code = body.get("code") if isinstance(body, dict) else status
            arrival.outcome = "accepted" if status == 200 else str(code)
        return _response(status, msgspec.json.encode(body), headers)

    def _rate_limit(self, endpoint: str) -> None:
        now = time.monotonic()
        if now < self.banned_until:
            retry_after = str(math.ceil(self.banned_until - now))
            raise _Reply(418, {"code": 418, "msg": "IP banned"}, [("Retry-After", retry_after)])
        window = self._windows.get(endpoint)
        if window is None:
            window = self._windows[endpoint] = _Window()
        if now < window.penalty_until:
            window.violations += 1
            if window.violations >= self.ban_after:
                self.banned_until = now + self.ban_seconds
                retry_after = str(math.ceil(self.ban_seconds))
                raise _Reply(418, {"code": 418, "msg": "IP banned"}, [("Retry-After", retry_after)])
            raise _Reply(429, {"code": 429, "msg": "Too Many Requests"},
                         [("Retry-After", str(max(1, math.ceil(window.penalty_until - now))))])
        horizon = now - self.window_seconds
        while window.log and window.log[0][0] <= horizon:
            window.used -= window.log.popleft()[1]
        method, _, path = endpoint.partition(" ")
        weight = weight_of(method, path)
        budget = self.endpoint_budgets.get(endpoint, self.endpoint_budget)
        if window.used + weight > budget:
            need, freed, until = window.used + weight - budget, 0, now + self.window_seconds
            for at, w in window.log:
                freed += w
                if freed >= need:
                    until = at + self.window_seconds
                    break
            window.penalty_until = until
            window.violations = 0
            raise _Reply(429, {"code": 429, "msg": "Too Many Requests"},
                         [("Retry-After", str(max(1, math.ceil(until - now))))])
        window.log.append((now, weight))
        window.used += weight

    def _authenticate(self, req: _Request, params: dict[str, str]) -> None:
        key = req.headers.get("x-mexc-apikey")
        if not key:
            raise _error(400, 700001, "API-key format invalid.")
        if key != self.api_key:
            raise _error(400, 10072, "Api key info invalid")
        payload, signature = payload_without_signature(req.query, req.body)
        if not signature or signature != self._signer.sign(payload):
            raise _error(400, 700002, "Signature for this request is not valid.")
        try:
            stamp = int(params.get("timestamp", ""))
            window = int(params.get("recvWindow", "5000"))
        except ValueError:
            raise _error(400, 700003, "Timestamp for this request is outside of the recvWindow.") from None
        if window > 60_000:
            raise _error(400, 700005, "recvWindow must less than 60000")
        server = self.now_ms()
        if not (stamp < server + 1000 and server - stamp <= window):
            raise _error(400, 700003, "Timestamp for this request is outside of the recvWindow.")

    # --- public endpoints ----------------------------------------------------------------

    def _ping(self, req: _Request, params: dict[str, str]) -> Any:
        return {}

    def _time(self, req: _Request, params: dict[str, str]) -> Any:
        return {"serverTime": self.now_ms()}

    def _exchange_info(self, req: _Request, params: dict[str, str]) -> Any:
        wanted: set[str] | None = None
        if params.get("symbol"):
            wanted = {params["symbol"]}
        elif params.get("symbols"):
            wanted = set(params["symbols"].split(","))
        listed = [s for s in self.symbols.values() if s.listed and (wanted is None or s.symbol in wanted)]
        if wanted is not None and not listed:
            raise _error(400, 30014, "Invalid symbol.")
        body = {"timezone": "CST", "serverTime": self.now_ms(), "rateLimits": [], "exchangeFilters": [],
                "symbols": [s.info() for s in listed]}
        return {"code": 200, "data": body} if self.wrap_exchange_info else body

    def announce(self, listing: FakeListing) -> FakeListing:
        """Put a listing on the calendar (and its state in symbolsV2); again to change its state."""
        self.listings[listing.coin_id] = listing
        return listing

    def _calendar(self, req: _Request, params: dict[str, str]) -> Any:
        coins = [{"vcoinId": item.coin_id, "vcoinName": item.ticker, "vcoinNameFull": item.full_name or item.ticker,
                  "firstOpenTime": item.launch_ms} for item in self.listings.values()]
        return {"code": 0, "msg": "success", "data": {"newCoins": coins}}

    def _symbols_v2(self, req: _Request, params: dict[str, str]) -> Any:
        rows = [{"cd": item.coin_id, "vn": item.ticker, "sts": item.sts, "st": item.st, "tt": item.tt,
                 "ot": item.launch_ms} for item in self.listings.values()]
        return {"code": 0, "msg": "success", "data": {"symbols": {"USDT": rows}}}

    def _contract_detail(self, req: _Request, params: dict[str, str]) -> Any:
        return {"success": True, "code": 0, "data": []}

    def _default_symbols(self, req: _Request, params: dict[str, str]) -> Any:
        return {"code": 200, "data": [s.symbol for s in self.symbols.values() if s.api_tradable], "msg": None}

    def _symbol(self, params: dict[str, str]) -> FakeSymbol:
        name = params.get("symbol", "")
        sym = self.symbols.get(name)
        if sym is None or not sym.listed:
            raise _error(400, 30014, "Invalid symbol.")
        return sym

    def _ticker_price(self, req: _Request, params: dict[str, str]) -> Any:
        sym = self._symbol(params)
        return {"symbol": sym.symbol, "price": sym.price}

    def _book_ticker(self, req: _Request, params: dict[str, str]) -> Any:
        sym = self._symbol(params)
        step = Decimal(1).scaleb(-sym.price_scale)
        return {"symbol": sym.symbol, "bidPrice": sym.price - step, "bidQty": Decimal("100"),
                "askPrice": sym.price, "askQty": Decimal("100")}

    def _depth(self, req: _Request, params: dict[str, str]) -> Any:
        sym = self._symbol(params)
        step = Decimal(1).scaleb(-sym.price_scale)
        return {"lastUpdateId": self._sequence, "bids": [[sym.price - step, Decimal("100")]],
                "asks": [[sym.price, Decimal("100")]]}

    def _klines(self, req: _Request, params: dict[str, str]) -> Any:
        sym = self._symbol(params)
        start = self.now_ms() // 60_000 * 60_000
        p = sym.price
        return [[start, p, p, p, p, Decimal("0"), start + 59_999, Decimal("0")]]

    # --- signed endpoints ----------------------------------------------------------------

    def _account(self, req: _Request, params: dict[str, str]) -> Any:
        assets = sorted(set(self.balances) | set(self.locked))
        return {"makerCommission": None, "takerCommission": None, "canTrade": True, "canWithdraw": True,
                "canDeposit": True, "updateTime": None, "accountType": "SPOT", "permissions": ["SPOT"],
                "balances": [{"asset": a, "free": self.balances.get(a, Decimal(0)),
                              "locked": self.locked.get(a, Decimal(0))}
                             for a in assets]}

    def _tradable(self, params: dict[str, str]) -> FakeSymbol:
        sym = self._symbol(params)
        if not sym.api_tradable or (sym.opens_at_ms is not None and self.now_ms() < sym.opens_at_ms):
            raise _error(400, 10007, "symbol not support api")
        if not sym.trading:
            raise _error(400, 30016, "trading disabled")
        return sym

    def _validate_order(self, params: dict[str, str]) -> tuple[FakeSymbol, str, str, Decimal, Decimal, Decimal | None]:
        """(symbol, side, type, quantity, quote spent, limit price) as the order would execute."""
        sym = self._tradable(params)
        side, kind = params.get("side", ""), params.get("type", "")
        if side not in ("BUY", "SELL") or not kind:
            raise _error(400, 700004, "Mandatory parameter side/type missing or invalid")
        if kind not in sym.order_types:
            raise _error(400, 30041, "order type not allowed")
        if kind == "MARKET" and not sym.market_orders:
            raise _error(400, 30019, "api market order is disabled")
        quantity = _decimal_param(params, "quantity")
        quote = _decimal_param(params, "quoteOrderQty")
        price = _decimal_param(params, "price")
        step = Decimal(1).scaleb(-sym.quantity_scale)
        if kind == "MARKET":
            if (quantity is None) == (quote is None):
                raise _error(400, 700004, "MARKET needs quantity or quoteOrderQty")
            if quote is not None:
                qty = (quote / sym.price).quantize(step, rounding=ROUND_DOWN)
            elif quantity is not None:
                qty = quantity.quantize(step, rounding=ROUND_DOWN)
            else:  # not reached: exactly one of them is given (checked above)
                raise _error(400, 700004, "MARKET needs quantity or quoteOrderQty")
            spent = qty * sym.price
            notional = quote if quote is not None else spent
            if notional < sym.min_market_notional or qty <= 0:
                raise _error(400, 30002,
                             f"minimum transaction volume cannot be less than:{sym.min_market_notional}{sym.quote}")
            if notional > sym.max_market_notional:
                raise _error(400, 30003,
                             f"maximum transaction volume cannot be more than:{sym.max_market_notional}{sym.quote}")
            return sym, side, kind, qty, spent, None
        if quantity is None or price is None:
            raise _error(400, 700004, f"{kind} needs quantity and price")
        if quantity * price < sym.min_notional:
            raise _error(400, 30002, f"minimum transaction volume cannot be less than:{sym.min_notional}{sym.quote}")
        return sym, side, kind, quantity, quantity * price, price

    def _funds_check(self, sym: FakeSymbol, side: str, qty: Decimal, spent: Decimal) -> None:
        if side == "BUY" and self.balances.get(sym.quote, Decimal(0)) < spent:
            raise _error(400, 10101, "Insufficient balance")
        if side == "SELL" and self.balances.get(sym.base, Decimal(0)) < qty:
            raise _error(400, 10101, "Insufficient balance")

    def _test_order(self, req: _Request, params: dict[str, str]) -> Any:
        sym, side, _, qty, spent, _ = self._validate_order(params)
        self._funds_check(sym, side, qty, spent)
        return {}

    def _new_order(self, req: _Request, params: dict[str, str]) -> Any:
        coid = params.get("newClientOrderId")
        if coid and coid in self.orders:
            raise _error(400, -2010, "Duplicate order sent.")
        sym, side, kind, qty, spent, limit_price = self._validate_order(params)
        self._funds_check(sym, side, qty, spent)
        self._sequence += 1
        order_id = f"C02__{self._sequence:012d}"
        coid = coid or f"auto-{self._sequence}"
        crosses = limit_price is not None and (limit_price >= sym.price if side == "BUY" else limit_price <= sym.price)
        if kind == "IMMEDIATE_OR_CANCEL" and crosses and side == "BUY" and sym.ask_quantity is not None:
            executed = min(qty, sym.ask_quantity)
            sym.ask_quantity -= executed
            status = "FILLED" if executed == qty else "PARTIALLY_CANCELED" if executed > 0 else "CANCELED"
            quote = executed * sym.price
        elif kind == "MARKET" or crosses:
            status, executed, quote = "FILLED", qty, qty * sym.price
        elif kind in ("IMMEDIATE_OR_CANCEL", "FILL_OR_KILL"):
            status, executed, quote = "CANCELED", Decimal(0), Decimal(0)
        else:
            status, executed, quote = "NEW", Decimal(0), Decimal(0)
            self._lock(sym.quote if side == "BUY" else sym.base, spent if side == "BUY" else qty)
        order = FakeOrder(
            order_id=order_id, client_order_id=coid, symbol=sym.symbol, side=side, type=kind, status=status,
            price=limit_price if limit_price is not None else Decimal(0),
            orig_qty=qty if kind != "MARKET" or "quantity" in params else Decimal(0),
            executed_qty=executed, quote_qty=quote,
            orig_quote_qty=_decimal_param(params, "quoteOrderQty") or Decimal(0), time_ms=self.now_ms(),
        )
        self.orders[coid] = order
        if executed > 0:
            self._fill(sym, order, sym.price, executed, quote)
        reply = {"symbol": sym.symbol, "orderId": order_id, "orderListId": -1, "price": order.price,
                 "origQty": order.orig_qty, "type": kind, "side": side, "transactTime": order.time_ms}
        if self.reply_with_fill:
            reply.update(clientOrderId=coid, executedQty=executed, cummulativeQuoteQty=quote, status=status)
        return reply

    def _fill(self, sym: FakeSymbol, order: FakeOrder, price: Decimal, qty: Decimal, quote: Decimal) -> None:
        """Move the funds of the order's fills (`fills_per_order`), each less its fee in the
        received asset, and list each for myTrades."""
        step = Decimal(1).scaleb(-sym.quantity_scale)
        parts = max(1, min(self.fills_per_order, int(qty / step)))
        each = (qty / parts).quantize(step, rounding=ROUND_DOWN)
        for n in range(parts):
            last = n == parts - 1
            part = qty - each * (parts - 1) if last else each
            part_quote = quote - each * price * (parts - 1) if last else each * price
            received, amount = (sym.base, part) if order.side == "BUY" else (sym.quote, part_quote)
            fee = amount * sym.taker_fee if self.charge_fees else Decimal(0)
            self._move_funds(sym, order.side, part, part_quote)
            self.balances[received] -= fee
            self.trades.append(FakeTrade(len(self.trades) + 1, order, price, part, part_quote, fee, received,
                                         order.time_ms + n * self.fill_spacing_ms))

    def _move_funds(self, sym: FakeSymbol, side: str, qty: Decimal, quote: Decimal) -> None:
        sign = 1 if side == "BUY" else -1
        self.balances[sym.quote] = self.balances.get(sym.quote, Decimal(0)) - sign * quote
        self.balances[sym.base] = self.balances.get(sym.base, Decimal(0)) + sign * qty

    def _lock(self, asset: str, amount: Decimal) -> None:
        self.balances[asset] = self.balances.get(asset, Decimal(0)) - amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + amount

    def _find(self, params: dict[str, str]) -> FakeOrder:
        sym = self._symbol(params)
        coid, oid = params.get("origClientOrderId"), params.get("orderId")
        if not coid and not oid:
            raise _error(400, 700004, "Param 'origClientOrderId' or 'orderId' must be sent")
        order = self.orders.get(coid) if coid else next((o for o in self.orders.values() if o.order_id == oid), None)
        if order is None or order.symbol != sym.symbol or not self._visible(order):
            raise _error(400, -2011, "Unknown order sent.")
        return order

    def _visible(self, order: FakeOrder) -> bool:
        return time.monotonic() - order.created_monotonic >= self.order_visibility_delay

    def _query_order(self, req: _Request, params: dict[str, str]) -> Any:
        return self._find(params).to_json()

    def _cancel_order(self, req: _Request, params: dict[str, str]) -> Any:
        order = self._find(params)
        if order.status not in ("NEW", "PARTIALLY_FILLED"):
            raise _error(400, -2011, "Unknown order sent.")
        sym = self.symbols[order.symbol]
        if order.side == "BUY":
            amount = order.orig_qty * order.price
            self.locked[sym.quote] -= amount
            self.balances[sym.quote] += amount
        else:
            self.locked[sym.base] -= order.orig_qty
            self.balances[sym.base] += order.orig_qty
        order.status = "CANCELED"
        return {**order.to_json(), "origClientOrderId": order.client_order_id}

    def _my_trades(self, req: _Request, params: dict[str, str]) -> Any:
        """The newest `limit` fills (default and max 100, as MEXC), oldest first; `startTime` and
        `endTime` (ms, inclusive) narrow them. No `fromId`: MEXC documents none."""
        sym = self._symbol(params)
        order_id = params.get("orderId")
        limit = min(int(params.get("limit") or 100), 100)
        start, end = params.get("startTime"), params.get("endTime")
        found = [t.to_json() for t in self.trades
                 if t.order.symbol == sym.symbol and (not order_id or t.order.order_id == order_id)
                 and self._visible(t.order)
                 and (not start or t.time_ms >= int(start)) and (not end or t.time_ms <= int(end))]
        return found[-limit:]

    def _open_orders(self, req: _Request, params: dict[str, str]) -> Any:
        sym = self._symbol(params)
        return [o.to_json() for o in self.orders.values()
                if o.symbol == sym.symbol and o.status in ("NEW", "PARTIALLY_FILLED") and self._visible(o)]


def _param_of(req: _Request, name: str) -> str | None:
    prefix = name + "="
    for source in (req.query, req.body):
        for piece in source.split("&") if source else ():
            if piece.startswith(prefix):
                return piece[len(prefix):]
    return None


def payload_without_signature(query: str, body: str = "") -> tuple[str, str | None]:
    """What was signed, and the signature sent: `signature=` removed from query or body.

    What the fake checks a signature against, as MEXC does.
    """
    signature = None
    parts = []
    for piece in query.split("&") if query else []:
        if piece.startswith("signature="):
            signature = piece[len("signature="):]
        else:
            parts.append(piece)
    body_parts = []
    for piece in body.split("&") if body else []:
        if piece.startswith("signature="):
            signature = piece[len("signature="):]
        else:
            body_parts.append(piece)
    return "&".join(parts) + "&".join(body_parts), signature


def _decimal_param(params: dict[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise _error(400, 700004, f"{name} is not a number") from None
    if not value.is_finite() or value < 0:
        raise _error(400, 700004, f"{name} is not a positive number")
    return value


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests are answered in order, one at a time."""

    def __init__(self, server: FakeMexcServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server._connections.discard(self)

    def data_received(self, data: bytes) -> None:
        arrival = time.perf_counter_ns()
        self.buffer += data
        if not self.busy:
            self._drain(arrival)

    def write(self, payload: bytes, endpoint: str, close: bool, status: int | None = None) -> None:
        if self.closed or self.transport is None:
            return
        if status is None:
            status = int(payload[9:12])
        self.server.replies.append((endpoint, status))
        self.transport.write(payload)
        if close:
            self.transport.close()
            self.closed = True

    def abort(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.abort()
        self.closed = True

    def _drain(self, arrival: int) -> None:
        while not self.busy and not self.closed:
            request = self._parse(arrival)
            if request is None:
                return
            later = self.server.handle(request, self)
            if later is not None:
                self.busy = True
                task = asyncio.get_running_loop().create_task(self._run_later(later))
                self.server._tasks.add(task)
                task.add_done_callback(self.server._tasks.discard)

    async def _run_later(self, action: Callable[[], Awaitable[None]]) -> None:
        try:
            await action()
        finally:
            self.busy = False
        if not self.closed and self.buffer:
            self._drain(time.perf_counter_ns())

    def _parse(self, arrival: int) -> _Request | None:
        buf = self.buffer
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > _MAX_HEAD:
                self.abort()
            return None
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self.abort()
            return None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        total = end + 4 + length
        if len(buf) < total:
            return None
        body = bytes(buf[end + 4:total]).decode("utf-8", "replace")
        del buf[:total]
        path, _, query = target.partition("?")
        close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        return _Request(method, path, query, headers, body, close, arrival)
