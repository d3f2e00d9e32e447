"""Many traders, one launch: `python -m bench many [--traders 50] [--rounds 1] [--lead 8]`.

- the exchange: the project's fake MEXC in its own process (`python -m bench.many --serve N`), with N
  API keys, one per trader, all on one IP: it enforces 500 weight per 10 s per endpoint (the IP's
  budget, the fake's own limiter) and 500 per 10 s per endpoint per key, and answers 429 beyond;
- the traders: one process, as one worker serves them: N live snipe targets on the same pair, each
  run by ExecuteSnipe with that trader's own keys (its own MexcRestClient and order lane), a
  shared launch roster (Redis when REDIS_URL is set, else in memory), the system clock at its
  default launch priority. Every trader's bracket is shaped by how many share the launch.

Reported per round: accepted traders, the spread of the first sends (when each trader's first send
started, on the traders' clock, and when each arrived at the exchange), orders per trader, 429s,
refusals as not open, and the first accepted buy after the open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
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

from adapters.mexc.fake.http import _Connection, _Request, _response
from adapters.mexc.signing import Signer
from bench.exchange import CONTROL, BenchExchange, stand_apart
from bench.open import ROOT
from bench.stats import median, percentile

WINDOW, BUDGET = 10.0, 500  # MEXC: per endpoint, per IP and per UID (key)


def key_of(n: int) -> tuple[str, str]:
    return f"bench-key-{n}", f"bench-secret-{n}"


class ManyExchange(BenchExchange):
    """The bench exchange with one API key per trader, a per-key budget beside the per-IP one, and a
    record of every order's key."""

    def __init__(self, traders: int) -> None:
        super().__init__()
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


async def _traders_round(base_url: str, symbol_code: str, opens_at: datetime, count: int) -> tuple[list[Any], Any]:
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
    from domain.events import Cause
    from domain.exit_plans import PRESETS
    from domain.risk import DEFAULT_RISK_PROFILE, RiskProfile
    from domain.target import SnipeTarget
    from domain.values import Symbol

    clock = SystemClock(launch_priority=1)
    timing = SnipeTiming()
    p = DEFAULT_RISK_PROFILE
    live = RiskProfile(p.max_quote_per_snipe, p.max_concurrent_positions, p.max_daily_loss, p.max_total_exposure,
                       live=True)
    users = [f"trader-{n}" for n in range(count)]
    directory = InMemoryTraderDirectory(TraderSettings(user_id=u, risk=live) for u in users)
    exchanges = {u: MexcExchange(MexcRestClient(*key_of(n), base_url)) for n, u in enumerate(users)}

    class Accounts:
        async def trading_for(self, user_id: str, live: bool) -> MexcExchange:
            return exchanges[user_id]

    roster: Any
    redis_url = os.environ.get("REDIS_URL")
    client = None
    if redis_url:
        from adapters.redis import redis_client
        from adapters.redis.roster import RedisLaunchRoster
        client = redis_client(redis_url)
        roster = RedisLaunchRoster(client, f"bench-many-{os.getpid()}")
    else:
        roster = InMemoryLaunchRoster(clock)
    store = InMemoryEventStore()
    first = exchanges[users[0]]
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
        if client is not None:
            await client.aclose()
    return list(outcomes), None


def run(traders: int, rounds: int, lead: float) -> list[ManyRound]:
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

    found = []
    try:
        for n in range(rounds):
            opens_at_ms = math.ceil(time.time() + lead) * 1000
            symbol = control("list", base=f"MT{n}", opens_at_ms=opens_at_ms)["symbol"]
            opens_at = datetime.fromtimestamp(opens_at_ms / 1000, UTC)
            outcomes, _ = asyncio.run(_traders_round(base_url, symbol, opens_at, traders))
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
                if isinstance(o, BaseException):
                    result.results[f"error {type(o).__name__}: {o}"] += 1
                    continue
                result.results[o.result.value] += 1
                result.accepted += o.fill is not None
                result.not_open.append(o.not_open)
                if o.first_send_at is not None:
                    starts.append(o.first_send_at)
            if starts:
                earliest = min(starts)
                result.first_sends_us = sorted((s - earliest) / timedelta(microseconds=1) for s in starts)
            found.append(result)
            print(round_line(n, result), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
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
            f"not open per trader max {max(r.not_open, default=0)}; 429s {sum(r.too_many.values())} {r.too_many}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench many", description=__doc__.split("\n\n")[0])
    parser.add_argument("--traders", type=int, default=50, help="traders on the one launch (default 50)")
    parser.add_argument("--rounds", type=int, default=1, help="launches, one after the other (default 1)")
    parser.add_argument("--lead", type=float, default=8.0, help="seconds from a round's start to its open (default 8)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        print(f"exchange process: {stand_apart()}", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args.serve))
        return 0
    if not 1 <= args.traders <= 500 or args.rounds < 1 or args.lead <= 2:
        print("python -m bench many: --traders 1..500, --rounds >= 1, --lead > 2", file=sys.stderr)
        return 2
    print(f"many traders, one launch: {args.traders} traders, {args.rounds} round(s); load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs; roster "
          f"{'Redis' if os.environ.get('REDIS_URL') else 'in memory'}", flush=True)
    results = run(args.traders, args.rounds, args.lead)
    ok = all(r.accepted == r.traders and not sum(r.too_many.values()) and r.first_sends_us
             and r.first_sends_us[-1] <= 5000 for r in results)
    print(f"targets (issue 14): all accepted, no 429, last first send <= 5 ms after the first: "
          f"{'PASS' if ok else 'FAIL'}; load average {os.getloadavg()[0]:.2f}")
    return 0 if all(r.accepted == r.traders for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
