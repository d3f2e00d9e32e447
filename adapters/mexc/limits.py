"""Staying inside MEXC's request limits, and failing fast when an endpoint is sick.

MEXC counts each endpoint separately: 500 weight units per 10 s, per IP and per UID
(FACTS.md), with per-endpoint weights. `RateLimiter` keeps an exact sliding window per
endpoint group ("METHOD /path"), each request counted for the window plus a margin (0.5 s:
network jitter can bunch requests up on the exchange's side), and makes a caller wait
rather than exceed it. A 429 or 418
from the exchange blocks that group for Retry-After, halves its budget, and lets the budget
grow back linearly over `recovery` (slowly, so a storm does not restart at full speed).

`CircuitBreaker` (one per group): closed -> open after `failure_threshold` consecutive
failures (5xx, timeouts, connection errors, 429/418) -> after `cool_down`, half-open: exactly
one probe goes out -> closed on its success, open again (with a longer cool-down) on its
failure. While open, calls fail at once with CircuitOpen: they were never sent.

The snipe path calls `RateLimiter.acquire` and `CircuitBreaker.before_call` once per order:
under budget that is a deque append and a few comparisons (a couple of microseconds).

Per UID and per IP (issue 14: many traders, one launch). Each MexcRestClient holds its key's
budgets (its `limiter`: the UID's), and every call also draws from the IP's: one RateLimiter per
exchange shared by every client of the process (`IP_LIMITS.for_url`, kept per event loop), and,
when `IP_LIMITS.share` was given a `SharedWindows` (Redis, when REDIS_URL is set), counted there
too, across worker processes. What goes through the shared windows: every call but those of the
order lane (POST order, GET time), which stay off Redis (the send path makes no Redis round trip):
the traders' order sends are held inside the IP's order budget by the send plan, which counts them
on the launch roster (SendPlanner.plan), itself on Redis. A 429 or 418 blocks the group (or,
418, every group) for Retry-After for every client of the process and, through the shared
windows, of every process: no other trader knocks again into a 429 (which is how a 418 ban
comes).

Priorities. A call is urgent (orders, cancels, order queries, the clock) or background: the fee
lookups after a fill (myTrades). An urgent call waits at most `max_wait` (0.5 s) for budget, else
it is refused here (RateLimited "local-budget", not sent) and the caller decides. A background
call waits for budget up to `background_wait` (a window and its margin: one window always frees
what it needs), and yields: while an urgent call of this process waits for the same budget, it
does not take any. A wait longer than that (a ban's Retry-After) refuses it at once, not sent.
A caller may bound one call's wait itself (`acquire(max_wait=0)`: budget free now or nothing): a
buy's fee looked up on the way to recording its fill does not hold the fill back (exchange.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from enum import Enum
from typing import Any, Protocol
from urllib.parse import urlsplit

from adapters.mexc.errors import CircuitOpen
from application.errors import RateLimited
from application.telemetry import NO_TELEMETRY, RATE_LIMIT_WAIT_MS, Telemetry

_log = logging.getLogger(__name__)

API = "/api/v3"
WINDOW_SECONDS = 10.0
ENDPOINT_BUDGET = 500
# How long a background call (a fee lookup after a fill) may wait for budget: one window and the
# margin free whatever the window holds, and a little more for the shared windows' clock.
BACKGROUND_WAIT = 12.0
# A background call finding an urgent one waiting for the same budget looks again this much later.
_YIELD_SECONDS = 0.005
# How long a call waits for the shared windows (Redis) before going by this process's count alone.
SHARED_TIMEOUT = 0.25
# After the shared windows failed, calls count in this process alone for this long before asking again.
_SHARED_RETRY = 2.0

# Request weights from FACTS.md, by "METHOD /path". Unlisted endpoints weigh 1.
ENDPOINT_WEIGHTS: dict[str, int] = {
    f"GET {API}/ping": 1,
    f"GET {API}/time": 1,
    f"GET {API}/exchangeInfo": 10,
    f"GET {API}/defaultSymbols": 1,
    f"GET {API}/depth": 1,
    f"GET {API}/trades": 5,
    f"GET {API}/klines": 1,
    f"GET {API}/ticker/24hr": 1,
    f"GET {API}/ticker/price": 1,
    f"GET {API}/ticker/bookTicker": 1,
    f"GET {API}/account": 10,
    f"POST {API}/order": 1,
    f"POST {API}/order/test": 1,
    f"GET {API}/order": 2,
    f"DELETE {API}/order": 1,
    f"GET {API}/openOrders": 3,
    f"DELETE {API}/openOrders": 1,
    f"GET {API}/allOrders": 10,
    f"GET {API}/myTrades": 10,
    f"POST {API}/batchOrders": 1,
}
# Without a symbol these cost more.
ALL_SYMBOLS_WEIGHTS: dict[str, int] = {
    f"GET {API}/ticker/24hr": 40,
    f"GET {API}/ticker/price": 2,
}
# Extra windows on top of the per-endpoint one, counting requests: (requests, seconds).
EXTRA_WINDOWS: dict[str, tuple[tuple[int, float], ...]] = {
    f"GET {API}/account": ((2, 1.0),),
}


def group_of(method: str, path: str) -> str:
    return f"{method} {path}"


def weight_of(method: str, path: str, all_symbols: bool = False) -> int:
    group = group_of(method, path)
    if all_symbols and group in ALL_SYMBOLS_WEIGHTS:
        return ALL_SYMBOLS_WEIGHTS[group]
    return ENDPOINT_WEIGHTS.get(group, 1)


class SlidingWindow:
    """At most `budget` weight in any `seconds`-long span (exact: a log of what was taken)."""

    __slots__ = ("budget", "seconds", "_log", "_used")

    def __init__(self, budget: int, seconds: float) -> None:
        self.budget = budget
        self.seconds = seconds
        self._log: deque[tuple[float, int]] = deque()
        self._used = 0

    @property
    def used(self) -> int:
        return self._used

    def wait_for(self, weight: int, now: float, limit: int) -> float:
        """0.0 when `weight` fits under `limit` now, else seconds until it will."""
        log = self._log
        horizon = now - self.seconds
        while log and log[0][0] <= horizon:
            self._used -= log.popleft()[1]
        if self._used + weight <= limit:
            return 0.0
        need = self._used + weight - limit
        freed = 0
        for at, w in log:
            freed += w
            if freed >= need:
                return max(at + self.seconds - now, 1e-6)
        return self.seconds  # heavier than the whole (reduced) budget: try after a window

    def take(self, weight: int, now: float) -> None:
        self._log.append((now, weight))
        self._used += weight


class EndpointBudget:
    """One endpoint group's windows, its Retry-After block and its adaptive budget."""

    __slots__ = (
        "group", "base", "window", "extra", "floor", "decrease", "recovery_per_second",
        "blocked_until", "penalties", "urgent_waiting", "_reduced", "_reduced_at",
    )

    def __init__(
        self,
        group: str,
        budget: int = ENDPOINT_BUDGET,
        seconds: float = WINDOW_SECONDS,
        extra: Iterable[tuple[int, float]] = (),
        recovery: float = 60.0,
        decrease: float = 0.5,
        floor: int = 1,
        margin: float = 0.0,
    ) -> None:
        self.group = group
        self.base = budget
        # Requests reach the exchange with varying delay: ours may look closer together
        # there than here. Counting each a little longer than the window keeps clear of that.
        self.window = SlidingWindow(budget, seconds + margin)
        self.extra = tuple(SlidingWindow(b, s + margin) for b, s in extra)
        self.floor = max(1, min(floor, budget))
        self.decrease = decrease
        self.recovery_per_second = budget / recovery if recovery > 0 else float(budget)
        self.blocked_until = 0.0
        self.penalties = 0
        self.urgent_waiting = 0  # urgent calls of this process waiting for this budget (background ones yield)
        self._reduced: float | None = None
        self._reduced_at = 0.0

    def limit(self, now: float) -> int:
        """The budget in force: the base, or a reduced one growing back to it."""
        if self._reduced is None:
            return self.base
        grown = self._reduced + max(0.0, now - self._reduced_at) * self.recovery_per_second
        if grown >= self.base:
            self._reduced = None
            return self.base
        return int(grown)

    def wait(self, weight: int, now: float) -> float:
        """0.0 when `weight` may be taken now, else how long until it may (nothing is taken)."""
        if now < self.blocked_until:
            return self.blocked_until - now
        wait = self.window.wait_for(weight, now, self.base if self._reduced is None else self.limit(now))
        for extra in self.extra:  # extra windows count requests, not weight
            wait = max(wait, extra.wait_for(1, now, extra.budget))
        return wait

    def take(self, weight: int, now: float) -> None:
        self.window.take(weight, now)
        for extra in self.extra:
            extra.take(1, now)

    def try_take(self, weight: int, now: float) -> float:
        """Take `weight` and return 0.0, or take nothing and return how long to wait."""
        wait = self.wait(weight, now)
        if wait:
            return wait
        self.take(weight, now)
        return 0.0

    def penalize(self, retry_after: float, now: float) -> None:
        """The exchange said 429/418: block for Retry-After, cut the budget, recover slowly."""
        self.penalties += 1
        self.blocked_until = max(self.blocked_until, now + retry_after)
        current = self.limit(now)
        self._reduced = float(max(self.floor, int(current * self.decrease)))
        self._reduced_at = self.blocked_until  # growth starts once the block is over


class SharedWindows(Protocol):
    """An IP's per-endpoint windows where every worker process counts (Redis: RedisRateWindows).
    `scope` names the exchange (its host), `group` the endpoint ("METHOD /path")."""

    async def take(self, scope: str, group: str, weight: int, limit: int, seconds: float) -> float:
        """Count `weight` in `group`'s window of `seconds` and return 0.0 when it fits under `limit`
        and no block is in force; else count nothing and return how many seconds to wait."""
        ...

    async def block(self, scope: str, group: str | None, seconds: float) -> None:
        """MEXC said 429 (`group`) or 418 (None: every group): no take for `seconds`."""
        ...


class RateLimiter:
    """Per-endpoint-group budgets. `acquire` waits (up to `max_wait`, a background call up to
    `background_wait`) rather than exceed one; a longer wait raises RateLimited at once, without
    sending, so the caller decides. With `shared` (an IP's windows on Redis, see SharedWindows),
    a call fitting this process's windows is also counted there, and waits when other processes
    spent the budget; when the shared windows cannot be reached in `shared_timeout`, this
    process's own count stands (said in the log)."""

    def __init__(
        self,
        budgets: Mapping[str, tuple[int, float]] | None = None,
        *,
        default_budget: int = ENDPOINT_BUDGET,
        window_seconds: float = WINDOW_SECONDS,
        max_wait: float = 0.5,
        background_wait: float = BACKGROUND_WAIT,
        recovery: float = 60.0,
        margin: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        telemetry: Telemetry = NO_TELEMETRY,
        shared: SharedWindows | None = None,
        scope: str = "",
        shared_timeout: float = SHARED_TIMEOUT,
    ) -> None:
        self._overrides = dict(budgets or {})
        self.telemetry = telemetry
        self.margin = margin
        self.default_budget = default_budget
        self.window_seconds = window_seconds
        self.max_wait = max_wait
        self.background_wait = background_wait
        self.recovery = recovery
        self.clock = clock
        self.shared = shared
        self.scope = scope
        self.shared_timeout = shared_timeout
        self._groups: dict[str, EndpointBudget] = {}
        self._banned_until = 0.0  # a 418: every group, those made later too
        self._shared_failed_at: float | None = None  # when the last failure was logged
        self._shared_down_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    def budget(self, group: str) -> EndpointBudget:
        found = self._groups.get(group)
        if found is None:
            budget, seconds = self._overrides.get(group, (self.default_budget, self.window_seconds))
            found = EndpointBudget(group, budget, seconds, EXTRA_WINDOWS.get(group, ()), self.recovery,
                                   margin=self.margin)
            found.blocked_until = self._banned_until
            self._groups[group] = found
        return found

    async def acquire(
        self, budget: EndpointBudget, weight: int, *, background: bool = False, local: bool = False,
        max_wait: float | None = None,
    ) -> None:
        """Take `weight` from `budget` (and from the shared windows, unless `local`), waiting when
        it does not fit (see the class doc); RateLimited ("local-budget", not sent) when the wait
        would be longer than allowed: `max_wait` when given (0: only budget free now), else the
        limiter's bound for an urgent or a background call."""
        shared = None if local else self.shared
        if shared is None and not background:
            wait = budget.try_take(weight, self.clock())
            if not wait:
                return
        # Only a call that has to wait (or asks the shared windows) gets here: the fast path pays nothing.
        started = self.clock()
        if max_wait is None:
            max_wait = self.background_wait if background else self.max_wait
        deadline = started + max_wait
        waited = registered = False
        try:
            while True:
                now = self.clock()
                wait = budget.wait(weight, now)
                if not wait and background and budget.urgent_waiting:
                    wait = _YIELD_SECONDS  # an urgent call of this process waits for this budget: it goes first
                if not wait:
                    if shared is not None:
                        wait = await self._take_shared(shared, budget, weight)
                    if not wait:
                        budget.take(weight, self.clock())
                        break
                now = self.clock()
                if now + wait > deadline:
                    raise RateLimited(
                        f"{budget.group}: local rate budget spent or Retry-After in force; not sent",
                        timedelta(seconds=wait),
                        "local-budget",
                    )
                if not background and not registered:
                    budget.urgent_waiting += 1
                    registered = True
                waited = True
                await asyncio.sleep(wait)
        finally:
            if registered:
                budget.urgent_waiting -= 1
        if waited:
            self.telemetry.observe(RATE_LIMIT_WAIT_MS, (self.clock() - started) * 1000.0, group=budget.group)

    async def _take_shared(self, shared: SharedWindows, budget: EndpointBudget, weight: int) -> float:
        if self.clock() < self._shared_down_until:
            return 0.0  # they failed a moment ago: no call pays the timeout again until they are asked again
        try:
            return await asyncio.wait_for(
                shared.take(self.scope, budget.group, weight, budget.limit(self.clock()), budget.window.seconds),
                self.shared_timeout,
            )
        except Exception as exc:  # the shared windows' own errors (Redis unreachable), or no answer in time
            self._shared_failed(exc)
            return 0.0

    def _shared_failed(self, exc: BaseException) -> None:
        now = self.clock()
        self._shared_down_until = now + _SHARED_RETRY
        if self._shared_failed_at is None or now - self._shared_failed_at >= 10.0:
            self._shared_failed_at = now
            _log.warning("the IP's shared rate windows (%s) cannot be reached (%s: %s): counting in this process "
                         "alone, asking them again in %g s", self.scope or "?", type(exc).__name__, exc, _SHARED_RETRY)

    def penalize(self, group: str, retry_after: float) -> None:
        self.budget(group).penalize(retry_after, self.clock())
        self._block_shared(group, retry_after)

    def penalize_all(self, retry_after: float) -> None:
        """A 418 is a ban of the caller, not of one endpoint."""
        now = self.clock()
        self._banned_until = max(self._banned_until, now + retry_after)
        for budget in self._groups.values():
            budget.penalize(retry_after, now)
        self._block_shared(None, retry_after)

    def _block_shared(self, group: str | None, retry_after: float) -> None:
        """Tell the other processes (in the background: the caller has its answer already)."""
        shared = self.shared
        if shared is None:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._send_block(shared, group, retry_after))
        except RuntimeError:  # no running loop: nobody to tell from here
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_block(self, shared: SharedWindows, group: str | None, retry_after: float) -> None:
        try:
            await asyncio.wait_for(shared.block(self.scope, group, retry_after), max(self.shared_timeout, 1.0))
        except Exception as exc:  # the shared windows' own errors: this process honours the block anyway
            self._shared_failed(exc)


def scope_of(base_url: str) -> str:
    """The exchange an IP budget is kept for: the base URL's host (and port)."""
    return urlsplit(base_url).netloc or base_url


class IpLimits:
    """The IP's budgets in this process: one RateLimiter per exchange (base URL), shared by every
    MexcRestClient of it (every trader's), kept per event loop (a process runs one; each test its
    own, so no test sees another's counts). `share` makes the running loop's limiters count through
    shared windows (Redis) too, so that every worker process draws from the one IP budget."""

    def __init__(self, **options: Any) -> None:
        self._options = options  # RateLimiter's keyword options, for every limiter made here
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, RateLimiter]] = \
            weakref.WeakKeyDictionary()
        self._shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[SharedWindows, Telemetry]] = \
            weakref.WeakKeyDictionary()
        self._no_loop: dict[str, RateLimiter] = {}

    def for_url(self, base_url: str) -> RateLimiter:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        limiters = self._no_loop if loop is None else self._loops.setdefault(loop, {})
        scope = scope_of(base_url)
        found = limiters.get(scope)
        if found is None:
            found = RateLimiter(scope=scope, **self._options)
            shared = None if loop is None else self._shared.get(loop)
            if shared is not None:
                found.shared, found.telemetry = shared
            limiters[scope] = found
        return found

    def share(self, shared: SharedWindows | None, telemetry: Telemetry = NO_TELEMETRY) -> None:
        """From now on the running loop's IP limiters (those made already and later) count through
        `shared` as well (None: this process alone again), and report their waits to `telemetry`."""
        loop = asyncio.get_running_loop()
        if shared is None:
            self._shared.pop(loop, None)
        else:
            self._shared[loop] = (shared, telemetry)
        for limiter in self._loops.get(loop, {}).values():
            limiter.shared, limiter.telemetry = shared, telemetry


# The process's IP budgets: every MexcRestClient not given its own `ip_limiter` draws from these.
IP_LIMITS = IpLimits()


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(
        self,
        group: str,
        failure_threshold: int = 5,
        cool_down: float = 1.0,
        max_cool_down: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.group = group
        self.failure_threshold = failure_threshold
        self.base_cool_down = cool_down
        self.max_cool_down = max_cool_down
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.cool_down = cool_down
        self.opened_at = 0.0
        self._probing = False
        # What the last failure was (e.g. MEXC cannot be reached, and why): the open circuit says it.
        self.last_failure: str | None = None
        self.transitions: deque[tuple[BreakerState, BreakerState]] = deque(maxlen=200)

    def before_call(self) -> bool:
        """Raise CircuitOpen, or let the call go; True when it is the half-open probe."""
        if self.state is BreakerState.CLOSED:
            return False
        now = self.clock()
        if self.state is BreakerState.OPEN:
            remaining = self.opened_at + self.cool_down - now
            if remaining > 0:
                why = f"{self.last_failure} (circuit open after {self.failures} failures)" if self.last_failure \
                    else f"circuit open after {self.failures} failures"
                raise CircuitOpen(f"{self.group}: {why}; not sent", timedelta(seconds=remaining))
            self._move(BreakerState.HALF_OPEN)
        if self._probing:
            raise CircuitOpen(f"{self.group}: circuit half-open, a probe is out; not sent",
                              timedelta(seconds=self.cool_down / 4))
        self._probing = True
        return True

    def on_success(self) -> None:
        self._probing = False
        self.failures = 0
        self.last_failure = None
        if self.state is not BreakerState.CLOSED:
            self.cool_down = self.base_cool_down
            self._move(BreakerState.CLOSED)

    def on_failure(self, why: str | None = None) -> None:
        self._probing = False
        self.failures += 1
        self.last_failure = why
        if self.state is BreakerState.HALF_OPEN:
            self.cool_down = min(self.cool_down * 2, self.max_cool_down)
            self._open()
        elif self.state is BreakerState.CLOSED and self.failures >= self.failure_threshold:
            self._open()

    def on_abandon(self) -> None:
        """The probe never reached the exchange (cancelled, or held back by the limiter)."""
        self._probing = False

    def _open(self) -> None:
        self.opened_at = self.clock()
        self._move(BreakerState.OPEN)

    def _move(self, to: BreakerState) -> None:
        self.transitions.append((self.state, to))
        self.state = to


class CircuitBreakers:
    """One breaker per endpoint group, made on first use with shared settings."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cool_down: float = 1.0,
        max_cool_down: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self.max_cool_down = max_cool_down
        self.clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, group: str) -> CircuitBreaker:
        found = self._breakers.get(group)
        if found is None:
            found = CircuitBreaker(group, self.failure_threshold, self.cool_down, self.max_cool_down, self.clock)
            self._breakers[group] = found
        return found
