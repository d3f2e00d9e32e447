"""MexcRestClient: MEXC spot v3 REST on one pooled keep-alive httpx.AsyncClient.

Every call goes: circuit breaker (fail fast, not sent) -> rate limiters, the key's (UID) then the
IP's (wait within budget, or RateLimited, not sent) -> timestamp + signature -> HTTP -> classification:

- 2xx: JSON decoded with floats as Decimal; `{"code":200,"data":...}` unwrapped; an error
  body hidden in a 2xx (`{"code": N, "msg": ...}`) is classified like a 4xx.
- 429/418: RateLimited(retry_after from Retry-After); the endpoint group (418: every group)
  is blocked for that long and its budget cut, in the client's own (UID) budgets and in the IP's,
  which every client of the process shares (and every process, through Redis: see limits.py).
- 5xx, timeouts, connection drops after the request may have left, unreadable 2xx bodies:
  AmbiguousOutcome. Idempotent reads are retried first (exponential backoff, full jitter,
  bounded attempts); order POSTs and cancels never are.
- connection never made: NotSent (a RateLimited: safe to send again).
- 4xx with a MEXC code: adapters.mexc.errors.classify (10007 NotYetOpen, refusals...).
- 700003: the clock is re-synced from /api/v3/time and the call retried once; a second
  700003 is ClockSkew.

HTTP is httpx, except on the snipe's critical path: POST order and GET time go through
`OrderLane` (adapters.mexc.lane), a lean keep-alive HTTP/1.1 client that puts the request on
the wire in tens of microseconds instead of ~300 (the clock sync in `prepare` uses it too, so
its connection is warm at launch). Same timeouts, same classification. A client built with a
custom httpx `transport` (e.g. a test's mock) sends everything through httpx.

Signed timestamps are local wall time + the offset kept by `sync_clock` (several samples of
/api/v3/time, each bounding the offset to a little over a millisecond; their intersection,
aimed at millisecond boundaries, narrows it to about a round trip: see `sync_clock`).
An order's query can be built ahead (`prepare_order`): sending it then only appends
recvWindow, timestamp and the signature.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from adapters.mexc import errors
from adapters.mexc.errors import (
    INVALID_SYMBOL_CODES,
    CircuitOpen,
    NotSent,
    UnexpectedReply,
    UnknownOrder,
    Unreachable,
    why_unreachable,
)
from adapters.mexc.lane import LaneNoReply, LaneNotSent, LaneReply, OrderLane
from adapters.mexc.limits import (
    API,
    IP_LIMITS,
    CircuitBreaker,
    CircuitBreakers,
    EndpointBudget,
    RateLimiter,
    group_of,
    weight_of,
)
from adapters.mexc.models import (
    KLINE_INTERVALS,
    Balance,
    BookTicker,
    ClockSync,
    Depth,
    Kline,
    MexcOrder,
    MexcTrade,
    SymbolInfo,
    decimal_of,
    epoch_ms_of,
    parse_balances,
    parse_book_ticker,
    parse_depth,
    parse_exchange_info,
    parse_klines,
    parse_order,
    parse_trades,
    plain,
    require_dict,
    require_list,
)
from adapters.mexc.signing import Signer
from application.errors import AmbiguousOutcome, ClockSkew, ConfigurationError, RateLimited

DEFAULT_BASE_URL = "https://api.mexc.com"
MAX_RECV_WINDOW_MS = 60_000
_OK_CODES = frozenset({0, 200, "0", "200"})
# Nothing was written to the wire: the request cannot have reached the exchange.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
# Local refusals to send: after a call that could not reach MEXC, these say nothing about MEXC.
_LOCAL_REFUSALS = ("local-budget", CircuitOpen.code)
_decoder = msgspec.json.Decoder(float_hook=Decimal)


class CallKind(Enum):
    READ = "read"  # idempotent: retried on transient failures
    ORDER = "order"  # may place an order: never resent by this client
    CANCEL = "cancel"  # not resent either: a second cancel answers -2011


@dataclass(slots=True)
class Endpoint:
    method: str
    path: str
    signed: bool
    kind: CallKind
    weight: int
    budget: EndpointBudget
    breaker: CircuitBreaker
    lane: bool = False  # sent through the OrderLane (when the client has one)
    # Post-fill work (fee lookups): waits for budget, yields to urgent calls (see limits.py).
    background: bool = False
    ip_budget: EndpointBudget | None = None  # the IP's budget for this group, bound at the first call

    @property
    def group(self) -> str:
        return self.budget.group


@dataclass(frozen=True, slots=True)
class PreparedOrder:
    """An order's query built ahead of time; only timestamp and signature are added at send."""

    symbol: str
    side: str
    type: str
    client_order_id: str | None
    signed_prefix: str  # "...&recvWindow=N&timestamp="
    test: bool = False


@dataclass(frozen=True, slots=True)
class PresignedQuery:
    """An order's whole request target (path, query, timestamp and signature), made ahead of its send."""

    timestamp_ms: int
    target: str


# A presigned request goes out as made only while its timestamp is at most this far ahead of MEXC's
# clock (MEXC refuses more than 1 s) and this far inside recvWindow (room for its time in flight).
_PRESIGN_AHEAD_MS = 500
_PRESIGN_IN_FLIGHT_MS = 1000


class _Transient(Exception):
    """Internal: a failure a READ may retry; `error` is what the caller sees otherwise."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _mask(key: str) -> str:
    return f"{key[:4]}…({len(key)} chars)" if key else "<none>"


def _retry_after_seconds(value: str | None, status: int) -> float:
    default = 120.0 if status == 418 else 1.0
    if not value:
        return default
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return default
    return min(max(seconds, 0.0), 3 * 86_400.0)


@functools.cache
def shared_ssl_context(trust_env: bool) -> ssl.SSLContext:
    """httpx's default verifying context, made once per process: each one loads the CA bundle
    (~10 ms, ~70 ms on a loaded host), and a worker makes a client per trader when a launch comes
    (50 traders: seconds, past the launch). One context is safe to share between connections."""
    return httpx.create_ssl_context(trust_env=trust_env)


def encode_params(pairs: Sequence[tuple[str, object]]) -> str:
    """`k=v&...` in the given order, None values left out, Decimals without exponent."""
    out = []
    for key, value in pairs:
        if value is None:
            continue
        text = plain(value) if isinstance(value, Decimal) else str(value)
        out.append(f"{key}={quote(text, safe='-_.~')}")
    return "&".join(out)


class MexcRestClient:
    def __init__(
        self,
        api_key: str = "",
        api_secret: str = "",
        base_url: str = DEFAULT_BASE_URL,
        *,
        recv_window_ms: int = 5000,
        timeout: float = 5.0,
        order_timeout: float = 3.0,
        connect_timeout: float = 2.0,
        read_attempts: int = 4,
        backoff_base: float = 0.05,
        backoff_cap: float = 2.0,
        limiter: RateLimiter | None = None,
        ip_limiter: RateLimiter | None = None,
        breakers: CircuitBreakers | None = None,
        max_connections: int = 10,
        keepalive_expiry: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        trust_env: bool = False,
        order_lane: bool = True,
        wall_clock_ns: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
    ) -> None:
        if (isinstance(recv_window_ms, bool) or not isinstance(recv_window_ms, int)
                or not 0 < recv_window_ms <= MAX_RECV_WINDOW_MS):
            raise ConfigurationError(f"MEXC recvWindow must be 1..{MAX_RECV_WINDOW_MS} ms, got {recv_window_ms!r}")
        if read_attempts < 1:
            raise ConfigurationError("read_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.recv_window_ms = recv_window_ms
        self.read_attempts = read_attempts
        self.backoff_base = backoff_base
        self._connect_timeout = connect_timeout
        self.backoff_cap = backoff_cap
        # The key's own budgets (MEXC counts per UID), and the IP's, shared by every client of this
        # exchange in the process (limits.IP_LIMITS, bound at the first call) unless given.
        self.limiter = limiter or RateLimiter()
        self._ip_limiter = ip_limiter
        self.breakers = breakers or CircuitBreakers()
        self._api_key = api_key
        self._signer = Signer(api_secret) if api_secret else None
        self._wall_ns = wall_clock_ns
        self._rng = rng or random.Random()
        self._offset_ms = 0
        self.clock_sync: ClockSync | None = None
        self.clock_synced_at: float | None = None  # time.monotonic() when `clock_sync` was measured or taken
        self._signed_suffix = f"recvWindow={recv_window_ms}&timestamp="
        self._timeouts = {
            CallKind.READ: httpx.Timeout(timeout, connect=connect_timeout),
            CallKind.ORDER: httpx.Timeout(order_timeout, connect=connect_timeout),
            CallKind.CANCEL: httpx.Timeout(timeout, connect=connect_timeout),
        }
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["X-MEXC-APIKEY"] = api_key
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=self._timeouts[CallKind.READ],
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                                keepalive_expiry=keepalive_expiry),
            transport=transport,
            trust_env=trust_env,
            follow_redirects=False,
            verify=shared_ssl_context(trust_env),
        )
        # Absolute URLs made from the parsed base skip httpx's relative-URL parse and merge.
        self._base = httpx.URL(self.base_url)
        self._path_prefix = self._base.raw_path.rstrip(b"/").decode("ascii")
        self._lane: OrderLane | None = None
        if order_lane and transport is None and self._base.scheme in ("http", "https"):
            lane_headers = [("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"),
                            ("User-Agent", self._http.headers.get("user-agent", "python-httpx")), *headers.items()]
            self._lane = OrderLane(self._base, lane_headers, connect_timeout=connect_timeout, max_idle=max_connections,
                                   ssl_context=shared_ssl_context(trust_env))
        self._lane_timeouts = {CallKind.READ: timeout, CallKind.ORDER: order_timeout, CallKind.CANCEL: timeout}
        self._endpoints: dict[str, Endpoint] = {}
        ep = self._endpoint
        self._ping = ep("GET", "/ping", False, CallKind.READ)
        self._time = ep("GET", "/time", False, CallKind.READ, lane=True)
        self._exchange_info = ep("GET", "/exchangeInfo", False, CallKind.READ)
        self._default_symbols = ep("GET", "/defaultSymbols", False, CallKind.READ)
        self._ticker_price = ep("GET", "/ticker/price", False, CallKind.READ)
        self._book_ticker = ep("GET", "/ticker/bookTicker", False, CallKind.READ)
        self._depth = ep("GET", "/depth", False, CallKind.READ)
        self._klines = ep("GET", "/klines", False, CallKind.READ)
        self._account = ep("GET", "/account", True, CallKind.READ)
        self._order = ep("POST", "/order", True, CallKind.ORDER, lane=True)
        self._order_test = ep("POST", "/order/test", True, CallKind.READ)  # never matches: safe to retry
        self._get_order = ep("GET", "/order", True, CallKind.READ)
        self._cancel = ep("DELETE", "/order", True, CallKind.CANCEL)
        self._open_orders = ep("GET", "/openOrders", True, CallKind.READ)
        self._my_trades = ep("GET", "/myTrades", True, CallKind.READ, background=True)  # fee lookups only
        self._listen_key_new = ep("POST", "/userDataStream", True, CallKind.READ)
        self._listen_key_keep = ep("PUT", "/userDataStream", True, CallKind.READ)
        self._listen_key_close = ep("DELETE", "/userDataStream", True, CallKind.READ)

    def _endpoint(
        self, method: str, path: str, signed: bool, kind: CallKind, lane: bool = False, background: bool = False,
    ) -> Endpoint:
        full = API + path
        group = group_of(method, full)
        endpoint = Endpoint(method, full, signed, kind, weight_of(method, full), self.limiter.budget(group),
                            self.breakers.breaker(group), lane, background)
        self._endpoints[group] = endpoint
        return endpoint

    @property
    def ip_limiter(self) -> RateLimiter:
        """The IP's budgets this client draws from (the process's for its exchange unless given)."""
        if self._ip_limiter is None:
            self._ip_limiter = IP_LIMITS.for_url(self.base_url)
        return self._ip_limiter

    def endpoint(self, method: str, path: str) -> Endpoint:
        """The endpoint record for "METHOD", "/api/v3/..." (its budget and breaker), for tests and telemetry."""
        return self._endpoints[group_of(method, path)]

    def __repr__(self) -> str:
        return (f"MexcRestClient(base_url={self.base_url!r}, api_key={_mask(self._api_key)}, "
                f"secret={'<hidden>' if self._signer else '<none>'}, recv_window_ms={self.recv_window_ms})")

    async def __aenter__(self) -> MexcRestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._lane is not None:
            self._lane.close()
        await self._http.aclose()

    # --- the call path -------------------------------------------------------------------

    @property
    def clock_offset_ms(self) -> int:
        return self._offset_ms

    def now_ms(self) -> int:
        """Exchange time as we estimate it."""
        return self._wall_ns() // 1_000_000 + self._offset_ms

    def _signed_prefix(self, params: str) -> str:
        if self._signer is None:
            raise ConfigurationError("MEXC API key and secret are needed for signed calls")
        return f"{params}&{self._signed_suffix}" if params else self._signed_suffix

    async def _call(
        self, ep: Endpoint, params: str = "", signed_prefix: str | None = None, presigned: PresignedQuery | None = None,
        *, patient: bool = True,
    ) -> Any:
        """`patient` False: sent only if the budgets have room now (no wait for them), and once (a
        transient failure is not retried): for work that can be done later instead."""
        if ep.signed and signed_prefix is None:
            signed_prefix = self._signed_prefix(params)
        resynced = False
        attempt = 0
        earlier: Exception | None = None  # the last attempt's failure, when MEXC was not reached
        while True:
            try:
                # A request signed ahead (`presign`) goes out as made, on the first attempt only
                # and while its timestamp is one MEXC takes; any later attempt is signed afresh.
                ready, presigned = presigned, None
                return await self._once(ep, params, signed_prefix, ready, None if patient else 0.0)
            except ClockSkew:
                if resynced:
                    raise
                resynced = True
                await self.sync_clock()
            except RateLimited as exc:
                # A retry held back here (the budget the attempts spent, the breaker they opened):
                # the reason to tell is why MEXC could not be reached, not our own bookkeeping.
                if earlier is not None and exc.code in _LOCAL_REFUSALS:
                    raise earlier from exc
                raise
            except _Transient as failure:
                attempt += 1
                if ep.kind is not CallKind.READ or attempt >= self.read_attempts or not patient:
                    raise failure.error from failure.__cause__
                earlier = failure.error if isinstance(failure.error, (Unreachable, AmbiguousOutcome)) else None
                ceiling = min(self.backoff_cap, self.backoff_base * (2 ** attempt))
                await asyncio.sleep(self._rng.uniform(0.0, ceiling))

    async def _once(
        self, ep: Endpoint, params: str, signed_prefix: str | None, presigned: PresignedQuery | None = None,
        max_wait: float | None = None,
    ) -> Any:
        breaker = ep.breaker
        probe = breaker.before_call()
        settled = False
        try:
            await self.limiter.acquire(ep.budget, ep.weight, background=ep.background, local=True, max_wait=max_wait)
            ip = self._ip_limiter or self.ip_limiter
            ip_budget = ep.ip_budget
            if ip_budget is None:
                ip_budget = ep.ip_budget = ip.budget(ep.group)
            # The order lane's calls (the send path) count in this process only: no Redis round trip there.
            await ip.acquire(ip_budget, ep.weight, background=ep.background, local=ep.lane, max_wait=max_wait)
            if presigned is not None and self._takes(presigned.timestamp_ms):
                target = presigned.target
            elif signed_prefix is not None:
                query = signed_prefix + str(self._wall_ns() // 1_000_000 + self._offset_ms)
                target = f"{self._path_prefix}{ep.path}?{query}&signature={self._signer.sign(query)}"  # type: ignore[union-attr]
            else:
                target = f"{self._path_prefix}{ep.path}?{params}" if params else self._path_prefix + ep.path
            response: httpx.Response | LaneReply
            lane = self._lane
            if ep.lane and lane is not None:
                try:
                    response = await lane.request(ep.method, target, self._lane_timeouts[ep.kind])
                except LaneNotSent as exc:
                    settled = True
                    raise _Transient(self._unreachable(ep, exc)) from exc
                except LaneNoReply as exc:
                    settled = True
                    breaker.on_failure(f"no reply from MEXC at {self.base_url} ({exc})")
                    raise _Transient(AmbiguousOutcome(
                        f"{ep.group}: no reply from MEXC at {self.base_url} ({exc}); "
                        "the request may have been processed"
                    )) from exc
                settled = True
                return self._read(ep, response)
            url = self._base.copy_with(raw_path=target.encode("ascii"))
            try:
                response = await self._http.request(ep.method, url, timeout=self._timeouts[ep.kind])
            except _NOT_SENT as exc:
                settled = True
                if isinstance(exc, httpx.UnsupportedProtocol):
                    breaker.on_failure()
                    raise ConfigurationError(f"MEXC base URL {self.base_url!r} is not usable: {exc}") from exc
                if isinstance(exc, httpx.PoolTimeout):  # our own connections were all busy
                    breaker.on_failure()
                    raise _Transient(NotSent(f"{ep.group}: no free connection to MEXC in time; not sent",
                                             timedelta(seconds=self.backoff_base))) from exc
                raise _Transient(self._unreachable(ep, exc)) from exc
            except httpx.RequestError as exc:  # timeouts, drops, protocol and decoding errors
                settled = True
                if isinstance(exc, httpx.TimeoutException):
                    why = f"no reply from MEXC at {self.base_url} within {self._lane_timeouts[ep.kind]:g} s (timeout)"
                else:
                    why = f"no reply from MEXC at {self.base_url} ({type(exc).__name__}: {exc or 'connection dropped'})"
                breaker.on_failure(why)
                raise _Transient(AmbiguousOutcome(f"{ep.group}: {why}; the request may have been processed")) from exc
            settled = True
            return self._read(ep, response)
        finally:
            if probe and not settled:
                breaker.on_abandon()

    def _unreachable(self, ep: Endpoint, exc: Exception) -> Unreachable:
        """No connection was made: say where to and why (DNS, refused, timeout, TLS)."""
        why = f"MEXC cannot be reached at {self.base_url}: {why_unreachable(exc, self._connect_timeout)}"
        ep.breaker.on_failure(why)
        return Unreachable(f"{ep.group}: {why}; not sent", timedelta(seconds=self.backoff_base))

    def _read(self, ep: Endpoint, response: httpx.Response | LaneReply) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            try:
                data = _decoder.decode(response.content)
            except msgspec.DecodeError as exc:
                ep.breaker.on_failure()
                raise _Transient(UnexpectedReply(f"{ep.group}: malformed JSON in an HTTP {status} reply")) from exc
            ep.breaker.on_success()
            if type(data) is dict and "code" in data:
                code = data["code"]
                if isinstance(code, (int, str)) and code in _OK_CODES:
                    return data.get("data", data)
                if "msg" in data:
                    raise errors.classify(code, str(data.get("msg") or ""), status)
            return data
        if status == 429 or status == 418:
            seconds = _retry_after_seconds(response.headers.get("retry-after"), status)
            ep.breaker.on_failure()
            # Which of the key's and the IP's limits was crossed, MEXC does not say: both are held back.
            if status == 418:
                self.limiter.penalize_all(seconds)
                self.ip_limiter.penalize_all(seconds)
            else:
                ep.budget.penalize(seconds, self.limiter.clock())
                self.ip_limiter.penalize(ep.group, seconds)
            raise errors.rate_limited(status, timedelta(seconds=seconds))
        if status >= 500:
            ep.breaker.on_failure()
            raise _Transient(AmbiguousOutcome(f"{ep.group}: MEXC answered HTTP {status}"))
        # A 4xx (or an unexpected 1xx/3xx): the exchange answered and refused.
        ep.breaker.on_success()
        try:
            data = _decoder.decode(response.content)
        except msgspec.DecodeError:
            data = None
        if isinstance(data, dict) and ("code" in data or "msg" in data):
            raise errors.classify(data.get("code"), str(data.get("msg") or ""), status)
        raise errors.classify(None, f"HTTP {status} without a MEXC error body", status)

    # --- clock ---------------------------------------------------------------------------

    async def sync_clock(self, samples: int = 5) -> ClockSync:
        """Measure the server-time offset from `samples` readings of /api/v3/time.

        MEXC's serverTime is whole milliseconds, read somewhere between our send and its reply:
        a sample with server time S, sent at local `before` and answered at `after`, allows an
        offset in (S - after, S + 1 ms - before), a little over a millisecond wide. The
        samples' intervals are intersected; every sample after the first is sent when the server
        would read its clock on a millisecond boundary if the offset were the middle of what is
        known so far, so each one halves the interval, down to about a round trip. The
        offset kept is the middle; `spread_ns` is half the width. Samples that disagree (a
        stepped clock) fall back to the lowest-round-trip sample, with a spread of 1 ms and
        half its round trip."""
        count = max(1, samples)
        best: tuple[int, int] | None = None  # (rtt, offset ms) of the fastest sample
        low = high = None  # what the samples allow, ns
        for i in range(count):
            if i and best is not None and low is not None and high is not None and low < high:
                await self._aim_at_boundary((low + high) // 2, best[0] // 2)
            wall_before = self._wall_ns()
            started = time.perf_counter_ns()
            data = await self._call(self._time)
            rtt = time.perf_counter_ns() - started
            server_ms = epoch_ms_of(require_dict(data, "time").get("serverTime"), "serverTime")
            offset = server_ms - (wall_before + rtt // 2) // 1_000_000
            if best is None or rtt < best[0]:
                best = (rtt, offset)
            server_ns = server_ms * 1_000_000
            sample_low, sample_high = server_ns - (wall_before + rtt), server_ns + 1_000_000 - wall_before
            low = sample_low if low is None else max(low, sample_low)
            high = sample_high if high is None else min(high, sample_high)
        if best is None or low is None or high is None:  # count >= 1: every path above sets them
            raise RuntimeError("sync_clock took no sample")
        if low <= high:
            middle, spread = (low + high) // 2, (high - low + 1) // 2
            self._offset_ms = round(middle / 1_000_000)
        else:
            middle, spread = best[1] * 1_000_000, 1_000_000 + best[0] // 2
            self._offset_ms = best[1]
        self.clock_sync = ClockSync(self._offset_ms, best[0], count, middle, spread)
        self.clock_synced_at = time.monotonic()
        return self.clock_sync

    def adopt_clock(self, sync: ClockSync, synced_at: float) -> None:
        """Take a clock sync another client of the same MEXC measured in this process (at
        `synced_at`, time.monotonic()) when it is newer than this client's own: its offset then
        stamps this client's signed calls."""
        if self.clock_synced_at is None or self.clock_synced_at < synced_at:
            self._offset_ms, self.clock_sync, self.clock_synced_at = sync.offset_ms, sync, synced_at

    async def _aim_at_boundary(self, offset_ns: int, one_way_ns: int) -> None:
        """Wait (yielding to the loop) until a request sent now would be handled when the server's
        clock crosses a millisecond, were the offset `offset_ns`: at most a millisecond."""
        now = self._wall_ns()
        wait = -(now + one_way_ns + offset_ns) % 1_000_000
        until, give_up = now + wait, time.perf_counter_ns() + wait + 200_000
        # A spin of at most a millisecond, yielding each turn: no event could say when the clock crosses.
        while self._wall_ns() < until and time.perf_counter_ns() < give_up:  # noqa: ASYNC110
            await asyncio.sleep(0)

    # --- market data ---------------------------------------------------------------------

    async def ping(self) -> None:
        await self._call(self._ping)

    async def server_time(self) -> int:
        return epoch_ms_of(require_dict(await self._call(self._time), "time").get("serverTime"), "serverTime")

    async def exchange_info(self, symbols: Sequence[str] = ()) -> dict[str, SymbolInfo]:
        if len(symbols) == 1:
            params = encode_params([("symbol", symbols[0])])
        elif symbols:
            params = encode_params([("symbols", ",".join(symbols))])
        else:
            params = ""
        return parse_exchange_info(await self._call(self._exchange_info, params))

    async def default_symbols(self) -> frozenset[str]:
        """The symbols tradable by API (others answer 10007)."""
        data = await self._call(self._default_symbols)
        if isinstance(data, dict):  # {"code":200,"data":[...]} is unwrapped; accept {"symbols": [...]} too
            data = data.get("data", data.get("symbols"))
        return frozenset(str(s) for s in require_list(data, "defaultSymbols"))

    async def ticker_price(self, symbol: str) -> Decimal:
        data = require_dict(await self._call(self._ticker_price, encode_params([("symbol", symbol)])), "ticker/price")
        return decimal_of(data.get("price"), "price")

    async def book_ticker(self, symbol: str) -> BookTicker:
        return parse_book_ticker(await self._call(self._book_ticker, encode_params([("symbol", symbol)])))

    async def depth(self, symbol: str, limit: int = 100) -> Depth:
        return parse_depth(await self._call(self._depth, encode_params([("symbol", symbol), ("limit", limit)])))

    async def klines(
        self, symbol: str, interval: str = "1m", limit: int | None = None, start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Kline]:
        if interval not in KLINE_INTERVALS:
            raise ValueError(f"MEXC kline interval must be one of {sorted(KLINE_INTERVALS)}, got {interval!r}")
        params = encode_params([("symbol", symbol), ("interval", interval), ("startTime", start_ms),
                                ("endTime", end_ms), ("limit", limit)])
        return parse_klines(await self._call(self._klines, params))

    # --- account and orders --------------------------------------------------------------

    async def balances(self) -> dict[str, Balance]:
        return parse_balances(await self._call(self._account))

    def prepare_order(
        self,
        symbol: str,
        side: str,
        order_type: str,
        *,
        quantity: Decimal | None = None,
        quote_order_qty: Decimal | None = None,
        price: Decimal | None = None,
        client_order_id: str | None = None,
        test: bool = False,
    ) -> PreparedOrder:
        """Build an order's query now; `send_order` adds only timestamp and signature.

        Amounts must already be rounded to the symbol's scales (SymbolInfo does that).
        MARKET takes exactly one of quantity / quote_order_qty; LIMIT and
        IMMEDIATE_OR_CANCEL take price and quantity.
        """
        side, order_type = side.upper(), order_type.upper()
        if side not in ("BUY", "SELL"):
            raise ValueError(f"order side must be BUY or SELL, got {side!r}")
        if order_type == "MARKET":
            if (quantity is None) == (quote_order_qty is None):
                raise ValueError("a MARKET order takes exactly one of quantity and quote_order_qty")
            if price is not None:
                raise ValueError("a MARKET order takes no price")
        elif order_type in ("LIMIT", "IMMEDIATE_OR_CANCEL", "FILL_OR_KILL", "LIMIT_MAKER"):
            if quantity is None or price is None or quote_order_qty is not None:
                raise ValueError(f"a {order_type} order takes price and quantity")
        else:
            raise ValueError(f"unknown MEXC order type {order_type!r}")
        params = encode_params([
            ("symbol", symbol), ("side", side), ("type", order_type), ("quantity", quantity),
            ("quoteOrderQty", quote_order_qty), ("price", price), ("newClientOrderId", client_order_id),
        ])
        return PreparedOrder(symbol, side, order_type, client_order_id, self._signed_prefix(params), test)

    def presign(self, order: PreparedOrder, timestamp_ms: int) -> PresignedQuery:
        """The order's request, stamped `timestamp_ms` (MEXC's clock, as `now_ms` estimates it, at
        the planned send) and signed now: `send_order(order, presigned)` then writes it as made when
        it leaves while MEXC takes that timestamp (see `_takes`), and signs afresh otherwise."""
        query = order.signed_prefix + str(timestamp_ms)
        target = f"{self._path_prefix}{self._order.path}?{query}&signature={self._signer.sign(query)}"  # type: ignore[union-attr]
        return PresignedQuery(timestamp_ms, target)

    def _takes(self, timestamp_ms: int) -> bool:
        """Whether MEXC takes a request stamped `timestamp_ms` if it leaves now: not more than
        `_PRESIGN_AHEAD_MS` ahead of its clock (it refuses more than 1 s), and at least
        `_PRESIGN_IN_FLIGHT_MS` inside recvWindow (room for the time in flight)."""
        now = self._wall_ns() // 1_000_000 + self._offset_ms
        return timestamp_ms - _PRESIGN_AHEAD_MS <= now <= timestamp_ms + self.recv_window_ms - _PRESIGN_IN_FLIGHT_MS

    async def send_order(self, order: PreparedOrder, presigned: PresignedQuery | None = None) -> MexcOrder:
        """Place a prepared order (a test order is sent by send_test_order); `presigned`: its request
        made ahead by `presign`, sent as made when its timestamp is still good."""
        if order.test:
            raise ValueError("a test order is sent by send_test_order: MEXC answers it with no order")
        return parse_order(await self._call(self._order, signed_prefix=order.signed_prefix, presigned=presigned))

    async def send_test_order(self, order: PreparedOrder) -> None:
        """Validate a prepared test order: MEXC answers {} without placing it."""
        if not order.test:
            raise ValueError("send_test_order sends test orders only (prepare_order(..., test=True))")
        await self._call(self._order_test, signed_prefix=order.signed_prefix)

    async def new_order(self, symbol: str, side: str, order_type: str, **kwargs: Any) -> MexcOrder:
        return await self.send_order(self.prepare_order(symbol, side, order_type, **kwargs))

    async def test_order(self, symbol: str, side: str, order_type: str, **kwargs: Any) -> None:
        """POST order/test: MEXC validates the order and answers {} without placing it."""
        await self.send_test_order(self.prepare_order(symbol, side, order_type, test=True, **kwargs))

    async def query_order(
        self, symbol: str, client_order_id: str | None = None, order_id: str | None = None,
    ) -> MexcOrder | None:
        """The order, or None when MEXC knows none by that id (-2011)."""
        params = encode_params([("symbol", symbol), ("origClientOrderId", client_order_id), ("orderId", order_id)])
        try:
            return parse_order(await self._call(self._get_order, params))
        except UnknownOrder:
            return None

    async def cancel_order(
        self, symbol: str, client_order_id: str | None = None, order_id: str | None = None,
    ) -> MexcOrder | None:
        """The cancelled order, or None when there is no such open order (-2011)."""
        params = encode_params([("symbol", symbol), ("origClientOrderId", client_order_id), ("orderId", order_id)])
        try:
            return parse_order(await self._call(self._cancel, params))
        except UnknownOrder:
            return None

    async def open_orders(self, symbol: str) -> list[MexcOrder]:
        """MEXC requires the symbol."""
        data = await self._call(self._open_orders, encode_params([("symbol", symbol)]))
        return [parse_order(item) for item in require_list(data, "openOrders")]

    async def my_trades(
        self, symbol: str, order_id: str | None = None, limit: int | None = None, *,
        start_time_ms: int | None = None, end_time_ms: int | None = None, patient: bool = True,
    ) -> list[MexcTrade]:
        """Our fills on `symbol` (of one order with `order_id`), with their commissions. Weight 10.
        MEXC answers at most 100 per call (default 100) and has no `fromId`: more are paged by
        `startTime`/`endTime` (ms, inclusive). A background call: it waits for budget (limits.py);
        `patient` False: only with budget free now, and once (RateLimited "local-budget" else)."""
        params = encode_params([("symbol", symbol), ("orderId", order_id), ("startTime", start_time_ms),
                                ("endTime", end_time_ms), ("limit", limit)])
        return parse_trades(await self._call(self._my_trades, params, patient=patient))

    # --- user data stream keys (for the WebSocket adapter) -------------------------------

    async def create_listen_key(self) -> str:
        data = require_dict(await self._call(self._listen_key_new), "userDataStream")
        key = data.get("listenKey")
        if not isinstance(key, str) or not key:
            raise UnexpectedReply("userDataStream reply without a listenKey")
        return key

    async def keep_alive_listen_key(self, listen_key: str) -> None:
        await self._call(self._listen_key_keep, encode_params([("listenKey", listen_key)]))

    async def close_listen_key(self, listen_key: str) -> None:
        await self._call(self._listen_key_close, encode_params([("listenKey", listen_key)]))


def is_invalid_symbol(error: Exception) -> bool:
    code = getattr(error, "code", None)
    try:
        return int(code) in INVALID_SYMBOL_CODES  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
