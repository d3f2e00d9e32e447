"""Many traders, one launch: `python -m bench many [--traders 50] [--rounds 1] [--lead 8] [--workers 1]`.

- the exchange: the project's fake MEXC in its own process (`python -m bench.many --serve N`), with N
  API keys, one per trader, all on one IP: it enforces 500 weight per 10 s per endpoint (the IP's
  budget, the fake's own limiter) and 500 per 10 s per endpoint per key, and answers 429 beyond;
- the traders: one process, as one worker serves them: N live snipe targets on the same pair, each
  run by ExecuteSnipe with that trader's own keys (its own MexcRestClient and order lane), a
  shared launch roster (Redis when REDIS_URL is set, else in memory), the system clock at its
  default launch priority. Every trader's bracket is shaped by how many share the launch. Every
  REST call of every trader (the fee lookups after the fills too) draws from the IP's budgets, one
  RateLimiter for the process across the rounds (as a worker keeps one), counted on Redis too when
  REDIS_URL is set;
- `--workers W` (needs REDIS_URL): the traders split across W worker processes started for each
  round (`python -m bench.many --worker ...`), sharing the launch roster and the IP's budgets
  through Redis only.

Reported per round: accepted traders, the spread of the first sends (when each trader's first send
started, on the traders' clock, and when each arrived at the exchange), orders per trader, 429s,
refusals as not open, the first accepted buy after the open, and the fees: each fill is recorded at
once, with its fee when the IP's myTrades budget had room for the lookup then, else without it and the
fee learnt right after (counted "learnt after the fill"); "unknown": not learnt when the snipe ended.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from adapters.mexc.limits import RateLimiter, scope_of
from adapters.mexc.signing import Signer
from bench.exchange import CONTROL, BenchExchange, stand_apart
from bench.open import ROOT
from bench.stats import median, percentile
from tests.fakes.mexc_http import _Connection, _Request, _response

WINDOW, BUDGET = 10.0, 500  # MEXC: per endpoint, per IP and per UID (key)


def key_of(n: int) -> tuple[str, str]:
    return f"bench-key-{n}", f"bench-secret-{n}"


class ManyExchange(BenchExchange):
    """The bench exchange with one API key per trader, a per-key budget beside the per-IP one, and a
    record of every order's key."""

    def __init__(self, traders: int) -> None:
        super().__init__()
        self.charge_fees = True  # each fill pays its fee, as on MEXC: a fee learnt is told from none
        self.keys = {key_of(n)[0]: Signer(key_of(n)[1]) for n in range(traders)}
        self.key_windows: dict[tuple[str, str], deque[float]] = {}
        self.too_many: Counter[str] = Counter()  # 429s by endpoint
        self.by_key: dict[str, list[tuple[int, str, str]]] = {}  # symbol -> (after open ns, outcome, key)

    def handle(self, req: _Request, conn: _Connection) -> Any:
        key = req.headers.get("x-mexc-apikey", "")
        signer = self.keys.get(key)
        if signer is not None:  # authenticated with that trader's secret
            self.api_key, self._signer = key, signer
        if not req.path.startswith(CONTROL) and key and self._over_key_budget(key, req.endpoint):
            self.too_many[req.endpoint] += 1
            conn.write(_response(429, msgspec.json.encode({"code": 429, "msg": "Too Many Requests"}),
                                 [("Retry-After", "1")]), req.endpoint, req.close, 429)
            return None
        before = len(self.order_arrivals)
        later = super().handle(req, conn)
        if len(self.order_arrivals) > before:
            arrival = self.order_arrivals[-1]
            record = self.rounds.get(dict(parse_qsl(req.query)).get("symbol", ""))
            if record is not None:
                after_open = arrival.perf_ns + record.wall_minus_perf - record.opens_at_ms * 1_000_000
                self.by_key.setdefault(record.symbol, []).append((after_open, arrival.outcome, key))
            if arrival.outcome == "429":
                self.too_many[req.endpoint] += 1
        return later

    def _answer(self, req: _Request, arrival: Any) -> bytes:
        reply = super()._answer(req, arrival)
        if reply.startswith(b"HTTP/1.1 429") and arrival is None:
            self.too_many[req.endpoint] += 1
        return reply

    def _over_key_budget(self, key: str, endpoint: str) -> bool:
        now = time.monotonic()
        log = self.key_windows.setdefault((key, endpoint), deque())
        while log and log[0] <= now - WINDOW:
            log.popleft()
        if len(log) >= BUDGET:
            return True
        log.append(now)
        return False

    def _control(self, req: _Request) -> bytes:
        if req.path == CONTROL + "many":
            symbol = dict(parse_qsl(req.query))["symbol"]
            body = {"orders": self.by_key.get(symbol, []), "too_many": dict(self.too_many)}
            return _response(200, msgspec.json.encode(body))
        return super()._control(req)


async def _serve(traders: int) -> None:
    server = ManyExchange(traders)
    await server.start()
    print(f"listening {server.base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


# --- the traders ---------------------------------------------------------------------------


@dataclass
class ManyRound:
    traders: int
    accepted: int = 0
    first_sends_us: list[float] = field(default_factory=list)  # each trader's first send start - the earliest's
    first_arrivals_us: list[float] = field(default_factory=list)  # at the exchange, after the open
    first_accepted_us: float | None = None
    orders: Counter[str] = field(default_factory=Counter)  # outcome -> count
    per_trader: list[int] = field(default_factory=list)
    too_many: dict[str, int] = field(default_factory=dict)
    results: Counter[str] = field(default_factory=Counter)
    not_open: list[int] = field(default_factory=list)
    # Fills whose fee was not known when the snipe ended: recorded without it and not learnt right after
    # (the reconciliation learns it later). A fill is recorded at once, its fee then or after (issue 14).
    fees_unknown: int = 0
    fees_late: int = 0  # fills recorded without their fee (no budget for the lookup then) and the fee learnt after
    recorded_ms: list[float] = field(default_factory=list)  # each fill recorded this long after the send time


@dataclass(frozen=True)
class TraderOutcome:
    """How one trader's snipe ended, as a worker process reports it (or an error's text)."""

    result: str
    filled: bool = False
    not_open: int = 0
    first_send_at: datetime | None = None
    fee_known: bool = False  # the fill's fee was known when the snipe ended (at the fill, or learnt right after)
    fee_late: bool = False  # the fill was recorded without its fee, which was learnt right after
    recorded_ms: float | None = None  # when the fill (and its position) was recorded, ms after the send time

    @staticmethod
    def of(outcome: Any, recorded_ms: float | None = None) -> TraderOutcome:
        if isinstance(outcome, BaseException):
            return TraderOutcome(f"error {type(outcome).__name__}: {outcome}")
        fill = outcome.fill
        return TraderOutcome(outcome.result.value, fill is not None, outcome.not_open, outcome.first_send_at,
                             fill is not None and (fill.fee_asset != "" or outcome.fee_late), outcome.fee_late,
                             recorded_ms)

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "filled": self.filled, "not_open": self.not_open,
                "first_send_at": None if self.first_send_at is None else self.first_send_at.isoformat(),
                "fee_known": self.fee_known, "fee_late": self.fee_late, "recorded_ms": self.recorded_ms}

    @staticmethod
    def from_json(data: dict[str, Any]) -> TraderOutcome:
        at = data.get("first_send_at")
        return TraderOutcome(str(data["result"]), bool(data["filled"]), int(data["not_open"]),
                             None if at is None else datetime.fromisoformat(at), bool(data["fee_known"]),
                             bool(data["fee_late"]), data.get("recorded_ms"))


async def _traders_round(
    base_url: str, symbol_code: str, opens_at: datetime, traders: range, prefix: str, ip: RateLimiter,
) -> list[TraderOutcome]:
    """`traders` (their numbers: keys and names) snipe one launch in this process; `ip`: the process's
    IP budgets, which every trader's client draws from (on Redis too, under `prefix`, with REDIS_URL)."""
    from adapters.clock import SystemClock
    from adapters.eventstore.memory import InMemoryEventStore
    from adapters.memory import InMemoryLaunchRoster, InMemoryLockService, InMemoryTraderDirectory
    from adapters.mexc.exchange import MexcExchange
    from adapters.mexc.rest import MexcRestClient
    from application import repository
    from application.ports import TraderSettings
    from application.timing import SnipeTiming
    from application.trade_book import TradeBook
    from application.use_cases.snipe import ExecuteSnipe
    from domain.events import Cause, SnipeOrderFilled
    from domain.exit_plans import PRESETS
    from domain.risk import DEFAULT_RISK_PROFILE, RiskProfile
    from domain.target import SnipeTarget
    from domain.values import Symbol

    clock = SystemClock(launch_priority=1)
    timing = SnipeTiming()
    p = DEFAULT_RISK_PROFILE
    live = RiskProfile(p.max_quote_per_snipe, p.max_concurrent_positions, p.max_daily_loss, p.max_total_exposure,
                       live=True)
    users = {f"trader-{n}": n for n in traders}
    directory = InMemoryTraderDirectory(TraderSettings(user_id=u, risk=live) for u in users)
    exchanges = {u: MexcExchange(MexcRestClient(*key_of(n), base_url, ip_limiter=ip)) for u, n in users.items()}

    class Accounts:
        async def trading_for(self, user_id: str, live: bool) -> MexcExchange:
            return exchanges[user_id]

    roster: Any
    redis_url = os.environ.get("REDIS_URL")
    client = None
    if redis_url:
        from adapters.redis import redis_client
        from adapters.redis.rate_windows import RedisRateWindows
        from adapters.redis.roster import RedisLaunchRoster
        client = redis_client(redis_url)
        roster = RedisLaunchRoster(client, prefix)
        ip.shared = RedisRateWindows(client, prefix)
    else:
        roster = InMemoryLaunchRoster(clock)
    store = InMemoryEventStore()
    first = next(iter(exchanges.values()))
    execute = ExecuteSnipe(store, first, first, directory, InMemoryLockService(clock), clock, TradeBook(), timing,
                           accounts=Accounts(), roster=roster)  # type: ignore[arg-type]
    symbol = Symbol.parse(symbol_code)
    ids = []
    for u in users:
        tid = f"t-{u}-{symbol_code.lower()}"
        cause = Cause(clock.now(), tid)
        target = SnipeTarget.create(tid, u, f"coin-{symbol_code}", symbol, opens_at, Decimal("10"), PRESETS["balanced"],
                                    Decimal("0.20"), True, cause)
        target.mark_ready("bench", Decimal("1"), 60, cause)
        target.schedule(opens_at, opens_at + timing.snipe_window, cause)
        await repository.save(store, target)
        ids.append(tid)
    try:
        await clock.sleep_until(opens_at - timing.prepare_ahead)
        outcomes = await asyncio.gather(*(execute(tid) for tid in ids), return_exceptions=True)
    finally:
        for exchange in exchanges.values():
            await exchange.client.aclose()
        ip.shared = None
        if client is not None:
            await client.aclose()
    # The fill's latency as recorded: from the send time to the moment the fill (and its position) was recorded.
    recorded = {r.stream_id: float(r.event.latency_ms) for r in await store.read_all()
                if isinstance(r.event, SnipeOrderFilled)}
    return [TraderOutcome.of(o, recorded.get(f"target-{tid}")) for tid, o in zip(ids, outcomes, strict=True)]


def _in_workers(base_url: str, symbol: str, opens_at_ms: int, traders: int, workers: int,
                prefix: str) -> list[TraderOutcome]:
    """One round's traders split across `workers` processes (contiguous shares), sharing Redis."""
    procs = []
    for w in range(workers):
        share = f"{w * traders // workers}:{(w + 1) * traders // workers}"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "bench.many", "--worker", share, "--base-url", base_url, "--symbol", symbol,
             "--opens-at-ms", str(opens_at_ms), "--prefix", prefix], cwd=ROOT, stdout=subprocess.PIPE, text=True))
    found: list[TraderOutcome] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"a worker process failed (exit {proc.returncode})")
        found.extend(TraderOutcome.from_json(item) for item in json.loads(out.strip().splitlines()[-1]))
    return found


def _worker(share: str, base_url: str, symbol: str, opens_at_ms: int, prefix: str) -> int:
    low, high = (int(x) for x in share.split(":"))
    opens_at = datetime.fromtimestamp(opens_at_ms / 1000, UTC)
    outcomes = asyncio.run(_traders_round(base_url, symbol, opens_at, range(low, high), prefix,
                                          RateLimiter(scope=scope_of(base_url))))
    print(json.dumps([o.to_json() for o in outcomes]), flush=True)
    return 0


def run(traders: int, rounds: int, lead: float, workers: int = 1) -> list[ManyRound]:
    if workers > 1 and not os.environ.get("REDIS_URL"):
        raise ValueError("traders split across worker processes share the roster and the IP budget through Redis: "
                         "set REDIS_URL")
    proc = subprocess.Popen([sys.executable, "-m", "bench.many", "--serve", str(traders)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip() if proc.stdout is not None else ""
    if not line.startswith("listening "):
        proc.terminate()
        raise RuntimeError(f"the fake exchange did not start (it said {line!r})")
    base_url = line.split(" ", 1)[1]

    def control(what: str, **params: object) -> dict:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        with urllib.request.urlopen(f"{base_url}/bench/{what}?{query}", timeout=30) as reply:
            return json.loads(reply.read())

    # One worker's IP budgets, kept across the rounds (launches) as a worker process keeps them.
    ip = RateLimiter(scope=scope_of(base_url))
    prefix = f"bench-many-{os.getpid()}-{secrets.token_hex(4)}"
    found = []
    try:
        for n in range(rounds):
            opens_at_ms = math.ceil(time.time() + lead) * 1000
            symbol = control("list", base=f"MT{n}", opens_at_ms=opens_at_ms)["symbol"]
            opens_at = datetime.fromtimestamp(opens_at_ms / 1000, UTC)
            if workers > 1:
                outcomes = _in_workers(base_url, symbol, opens_at_ms, traders, workers, prefix)
            else:
                outcomes = asyncio.run(_traders_round(base_url, symbol, opens_at, range(traders), prefix, ip))
            record = control("many", symbol=symbol)
            result = ManyRound(traders, too_many=record["too_many"])
            firsts: dict[str, float] = {}
            per_key: Counter[str] = Counter()
            for after_open, outcome, key in record["orders"]:
                result.orders[outcome] += 1
                per_key[key] += 1
                firsts.setdefault(key, after_open / 1000)
                earliest = result.first_accepted_us
                if outcome == "accepted" and (earliest is None or after_open / 1000 < earliest):
                    result.first_accepted_us = after_open / 1000
            result.first_arrivals_us = sorted(firsts.values())
            result.per_trader = sorted(per_key.values())
            starts = []
            for o in outcomes:
                result.results[o.result] += 1
                result.accepted += o.filled
                result.fees_unknown += o.filled and not o.fee_known
                result.fees_late += o.filled and o.fee_late
                if o.recorded_ms is not None:
                    result.recorded_ms.append(o.recorded_ms)
                if o.result.startswith("error "):
                    continue
                result.not_open.append(o.not_open)
                if o.first_send_at is not None:
                    starts.append(o.first_send_at)
            if starts:
                first_start = min(starts)
                result.first_sends_us = sorted((s - first_start) / timedelta(microseconds=1) for s in starts)
            found.append(result)
            print(round_line(n, result), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()
    return found


def round_line(n: int, r: ManyRound) -> str:
    spread = r.first_sends_us[-1] if r.first_sends_us else math.nan
    arrivals = (r.first_arrivals_us[-1] - r.first_arrivals_us[0]) if r.first_arrivals_us else math.nan
    accepted = f"{r.first_accepted_us:+.0f} µs" if r.first_accepted_us is not None else "none"
    return (f"  round {n + 1}: {r.accepted}/{r.traders} bought ({dict(r.results)}); first sends started within "
            f"{spread / 1000:.2f} ms (median {median(r.first_sends_us) / 1000:.2f}, p90 "
            f"{percentile(r.first_sends_us, 90) / 1000:.2f}), arrived within {arrivals / 1000:.2f} ms; "
            f"first accepted {accepted} after the open; orders {dict(r.orders)}; per trader "
            f"{r.per_trader[0] if r.per_trader else 0}-{r.per_trader[-1] if r.per_trader else 0}; "
            f"not open per trader max {max(r.not_open, default=0)}; fills recorded within "
            f"{max(r.recorded_ms, default=math.nan):.0f} ms of the send time "
            f"(median {median(sorted(r.recorded_ms)):.0f}); "
            f"fees learnt after the fill {r.fees_late}, unknown {r.fees_unknown}; "
            f"429s {sum(r.too_many.values())} {r.too_many}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench many", description=__doc__.split("\n\n")[0])
    parser.add_argument("--traders", type=int, default=50, help="traders on the one launch (default 50)")
    parser.add_argument("--rounds", type=int, default=1, help="launches, one after the other (default 1)")
    parser.add_argument("--lead", type=float, default=8.0, help="seconds from a round's start to its open (default 8)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes the traders are split across (default 1; more need REDIS_URL)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "low:high": the traders of one worker process
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--symbol", help=argparse.SUPPRESS)
    parser.add_argument("--opens-at-ms", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        print(f"exchange process: {stand_apart()}", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args.serve))
        return 0
    if args.worker is not None:
        return _worker(args.worker, args.base_url, args.symbol, args.opens_at_ms, args.prefix)
    if not 1 <= args.traders <= 500 or args.rounds < 1 or args.lead <= 2 or not 1 <= args.workers <= args.traders:
        print("python -m bench many: --traders 1..500, --rounds >= 1, --lead > 2, --workers 1..traders",
              file=sys.stderr)
        return 2
    if args.workers > 1 and not os.environ.get("REDIS_URL"):
        print("python -m bench many: --workers > 1 shares the roster and the IP budget through Redis: set REDIS_URL",
              file=sys.stderr)
        return 2
    print(f"many traders, one launch: {args.traders} traders in {args.workers} worker process(es), {args.rounds} "
          f"round(s); load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs; roster "
          f"and IP budget {'on Redis' if os.environ.get('REDIS_URL') else 'in memory'}", flush=True)
    results = run(args.traders, args.rounds, args.lead, args.workers)
    ok = all(r.accepted == r.traders and not sum(r.too_many.values()) and r.first_sends_us
             and r.first_sends_us[-1] <= 5000 for r in results)
    print(f"targets (issue 14): all accepted, no 429, last first send <= 5 ms after the first: "
          f"{'PASS' if ok else 'FAIL'}; load average {os.getloadavg()[0]:.2f}")
    return 0 if all(r.accepted == r.traders for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
