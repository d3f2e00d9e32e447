"""Open -> first accepted buy, measured from outside: every party in its own process.

    python -m bench.open [--rounds 8] [--hogs 2] [--lead 6]

- the exchange: the project's fake MEXC in its own process (bench/exchange.py);
- ours: `sniper snipe <PAIR> --quote-amount 10 --at <open> --live` as a user runs it, a fresh
  process and a fresh SQLite history per round, MEXC_BASE_URL/MEXC_WEB_URL on the fake, every
  other setting at its default;
- ccxt: the script a user would write (bench/ccxt_script.py), a fresh process per round.

Each round lists a fresh pair that opens at the next whole second at least `--lead` seconds
ahead (time for the client process to start and get ready), then runs one client; rounds
alternate ours, ccxt, ours, ccxt... Two conditions in one run: quiet, then with `--hogs` CPU-bound
processes (`while True: pass`) running beside everything. The figure of a round is the
exchange's arrival stamp of the first accepted order minus the open, on the exchange's clock.
Exits 1 if any round lands no order.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.rig import KEY, SECRET, SIGNATURE_OR_TIMESTAMP
from bench.stats import median, percentile

OURS, CCXT = "ours", "ccxt"
QUIET = "quiet"
ROOT = Path(__file__).resolve().parent.parent
NOT_OPEN = "10007"
RATE_LIMITED = frozenset({"429", "418"})
GRACE = 60.0  # seconds a client may run past the open before it is stopped
READY_MARGIN = 0.5  # a client's first request must reach the exchange this long before the open
TRIES = 3  # a round whose client was not ready in time is run again, at most this many times in all


@dataclass
class RoundResult:
    condition: str
    client: str
    symbol: str
    first_accepted_ns: int | None
    outcomes: list[str]  # every order the exchange saw for this pair, in arrival order
    ready_before_open_s: float | None  # the client's first request to the exchange, before the open
    startup_s: float | None  # process start to its first request to the exchange
    exit_code: int
    detail: str = ""

    @property
    def orders(self) -> int:
        return len(self.outcomes)

    def refused(self, codes: frozenset[str]) -> int:
        return sum(1 for o in self.outcomes if o in codes)

    @property
    def other_refusals(self) -> int:
        known = SIGNATURE_OR_TIMESTAMP | RATE_LIMITED | {NOT_OPEN, "accepted"}
        return sum(1 for o in self.outcomes if o not in known)

    @property
    def landed(self) -> bool:
        return self.first_accepted_ns is not None

    @property
    def ready(self) -> bool:
        return self.ready_before_open_s is not None and self.ready_before_open_s >= READY_MARGIN


@dataclass
class OpenBench:
    rounds: int
    hogs: int
    lead: float
    results: list[RoundResult] = field(default_factory=list)
    repeated: list[RoundResult] = field(default_factory=list)  # not ready in time: run again, not counted
    load: dict[str, tuple[float, float]] = field(default_factory=dict)  # condition -> 1-min load before, after

    @property
    def conditions(self) -> list[str]:
        return [QUIET] + ([f"hogs {self.hogs}"] if self.hogs else [])

    def of(self, condition: str, client: str) -> list[RoundResult]:
        return [r for r in self.results if r.condition == condition and r.client == client]

    @property
    def failures(self) -> list[RoundResult]:
        return [r for r in self.results if not r.landed]


class Exchange:
    """A fake exchange's process (`python -m <module>`, which prints `listening <url> ...` when it
    serves) and its control door; `addresses` are the words after `listening`."""

    def __init__(self, module: Sequence[str] = ("bench.exchange",)) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", *module], cwd=ROOT, stdout=subprocess.PIPE,
                                        text=True)
        if self.process.stdout is None:  # not reached: stdout=PIPE
            raise RuntimeError("the exchange process has no stdout")
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening "):
            self.close()
            raise RuntimeError(f"the fake exchange did not start (it said {line!r})")
        self.addresses = line.split(" ")[1:]
        self.base_url = self.addresses[0]

    def control(self, what: str, **params: object) -> dict:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        with urllib.request.urlopen(f"{self.base_url}/bench/{what}?{query}", timeout=30) as reply:
            return json.loads(reply.read())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def hogs(count: int) -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def client_env(base_url: str, db: Path) -> dict[str, str]:
    """The caller's environment without its MEXC/sniper settings, aimed at the fake."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEXC_", "SNIPER_")) and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(MEXC_BASE_URL=base_url, MEXC_WEB_URL=base_url, MEXC_API_KEY=KEY, MEXC_SECRET_KEY=SECRET,
               DATABASE_URL=f"sqlite+aiosqlite:///{db}")
    return env


def command(client: str, base_url: str, symbol: str, opens_at_ms: int) -> list[str]:
    if client == OURS:
        at = datetime.fromtimestamp(opens_at_ms / 1000, UTC).isoformat(timespec="milliseconds")
        return [str(Path(sys.executable).parent / "sniper"), "snipe", symbol, "--quote-amount", "10", "--at", at,
                "--live"]
    return [sys.executable, "-m", "bench.ccxt_script", base_url, symbol, str(opens_at_ms)]


def run_round(exchange: Exchange, condition: str, client: str, base: str, lead: float, workdir: Path) -> RoundResult:
    opens_at_ms = math.ceil(time.time() + lead) * 1000  # listings open on a whole second
    symbol = exchange.control("list", base=base, opens_at_ms=opens_at_ms)["symbol"]
    spawned_ns = time.time_ns()
    proc = subprocess.run(command(client, exchange.base_url, symbol, opens_at_ms), cwd=ROOT,
                          env=client_env(exchange.base_url, workdir / f"{base}.db"), capture_output=True, text=True,
                          timeout=lead + 1 + GRACE, check=False)
    record = exchange.control("round", symbol=symbol)
    orders = record["orders"]
    accepted = [o["after_open_ns"] for o in orders if o["outcome"] == "accepted"]
    first_request = record["first_request_wall_ns"]
    ready = None if first_request is None else (opens_at_ms * 1_000_000 - first_request) / 1e9
    startup = None if first_request is None else (first_request - spawned_ns) / 1e9
    last_words = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] if proc.returncode else []
    return RoundResult(condition, client, symbol, accepted[0] if accepted else None, [o["outcome"] for o in orders],
                       ready, startup, proc.returncode, " ".join(last_words))


def run(rounds: int, hogs_count: int, lead: float, *, progress: bool = True, warmup: bool = True,
        tries: int = TRIES) -> OpenBench:
    bench = OpenBench(rounds, hogs_count, lead)
    names = (f"BN{n}" for n in itertools.count(1))
    exchange = Exchange()
    startups: deque[float] = deque(maxlen=4)

    def one(condition: str, client: str, workdir: Path, counted: bool) -> None:
        for attempt in range(1, tries + 1):
            # A client must be up and synced before the open: on a loaded host a cold start
            # takes seconds, so the lead follows the slowest of the last few starts.
            round_lead = max([lead] + [1.5 * s + 1.0 for s in startups])
            result = run_round(exchange, condition, client, next(names), round_lead, workdir)
            if result.startup_s is not None:
                startups.append(result.startup_s)
            again = counted and not result.ready and attempt < tries
            if progress:
                tag = "" if counted else "  (warm-up, not counted)"
                print(round_line(result) + tag + ("  (not ready in time: run again)" if again else ""), flush=True)
            if not again:
                break
            bench.repeated.append(result)
        if counted:
            bench.results.append(result)

    try:
        with tempfile.TemporaryDirectory(prefix="bench-open-") as tmp:
            for condition in bench.conditions:
                with hogs(hogs_count if condition != QUIET else 0):
                    before = os.getloadavg()[0]
                    for client in (OURS, CCXT) if warmup else ():  # warms the page cache, sizes the lead
                        one(condition, client, Path(tmp), counted=False)
                    for _ in range(rounds):
                        for client in (OURS, CCXT):
                            one(condition, client, Path(tmp), counted=True)
                    bench.load[condition] = (before, os.getloadavg()[0])
    finally:
        exchange.close()
    return bench


def round_line(r: RoundResult) -> str:
    landed = f"{r.first_accepted_ns / 1000:+9.0f} µs" if r.landed else "  NO ORDER"
    ready = "?" if r.ready_before_open_s is None else f"{r.ready_before_open_s:.1f} s"
    line = (f"  {r.condition:<7} {r.client:<4} {r.symbol:<9} {landed}  orders {r.orders}  "
            f"outcomes {dict(Counter(r.outcomes))}  first request {ready} before the open")
    return line + (f"  exit {r.exit_code}: {r.detail}" if r.exit_code else "")


def _us(values: Sequence[float]) -> tuple[float, float, float, float]:
    ordered = sorted(values)
    return median(ordered), percentile(ordered, 90), percentile(ordered, 99), (ordered[-1] if ordered else math.nan)


def report(bench: OpenBench) -> str:
    head = (f"{'condition':<9} {'client':<6} {'n':>3} {'median':>8} {'p90':>8} {'p99':>8} {'max':>8}   "
            f"{'orders/round':>12} {'10007/round':>11} {'sig/ts':>6} {'429':>4} {'other':>5}")
    lines = ["open -> first accepted buy arrives at the exchange (µs after the open, exchange's clock)", head,
             "-" * len(head)]
    for condition in bench.conditions:
        for client in (OURS, CCXT):
            rows = bench.of(condition, client)
            landed = [r.first_accepted_ns / 1000 for r in rows if r.landed]
            med, p90, p99, top = _us(landed)
            orders = [r.orders for r in rows]
            not_open = [r.refused(frozenset({NOT_OPEN})) for r in rows]
            lines.append(
                f"{condition:<9} {client:<6} {len(landed):>3} {med:>8.0f} {p90:>8.0f} {p99:>8.0f} {top:>8.0f}   "
                f"{_mean_max(orders):>12} {_mean_max(not_open):>11} "
                f"{sum(r.refused(SIGNATURE_OR_TIMESTAMP) for r in rows):>6} "
                f"{sum(r.refused(RATE_LIMITED) for r in rows):>4} {sum(r.other_refusals for r in rows):>5}")
    lines.append("orders/round and 10007/round: mean (max); sig/ts, 429 and other: refusals over all rounds")
    for condition in bench.conditions:
        before, after = bench.load.get(condition, (math.nan, math.nan))
        lines.append(f"load average (1 min) during '{condition}': {before:.2f} at the start, {after:.2f} at the end")
    ratios = []
    for condition in bench.conditions:
        ours = [r.first_accepted_ns for r in bench.of(condition, OURS) if r.landed]
        theirs = [r.first_accepted_ns for r in bench.of(condition, CCXT) if r.landed]
        if ours and theirs:
            ratios.append(f"{condition}: ours/ccxt median {median(sorted(ours)) / median(sorted(theirs)):.2f}")
    if ratios:
        lines.append("; ".join(ratios))
    for client in (OURS, CCXT):
        ready = [r.ready_before_open_s for r in bench.results
                 if r.client == client and r.ready_before_open_s is not None]
        if ready:
            lines.append(f"{client}: first request to the exchange at least {min(ready):.1f} s before the open "
                         f"(process start to first request at most "
                         f"{max(r.startup_s or 0 for r in bench.results if r.client == client):.1f} s)")
    if bench.repeated:
        lines.append(f"rounds run again because the client was not ready {READY_MARGIN} s before the open: "
                     + ", ".join(f"{c} {sum(1 for r in bench.repeated if r.client == c)}" for c in (OURS, CCXT)))
    late = [r for r in bench.results if not r.ready]
    if late:
        lines.append(f"WARNING: {len(late)} counted round(s) whose client was still not ready in time (raise --lead)")
    for r in bench.failures:
        lines.append(f"FAILED round: {r.condition} {r.client} {r.symbol}: no accepted order "
                     f"(exit {r.exit_code}: {r.detail or 'no output'})")
    return "\n".join(lines)


def _mean_max(values: Sequence[int]) -> str:
    return f"{sum(values) / len(values):.1f} ({max(values)})" if values else "-"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.open", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return parser.parse_args(argv)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=8, help="rounds per client and condition (default 8)")
    parser.add_argument("--hogs", type=int, default=2,
                        help="CPU-bound processes beside the run in the second condition; 0: quiet only (default 2)")
    parser.add_argument("--lead", type=float, default=6.0,
                        help="seconds from a round's start to its open, at least (default 6): the client process "
                             "must be up and ready by then")


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the exchange, the hogs and a running client are stopped."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.rounds < 1 or args.hogs < 0 or args.lead <= 0:
        print("python -m bench.open: --rounds must be >= 1, --hogs >= 0 and --lead > 0", file=sys.stderr)
        return 2
    stop_on_sigterm()
    return execute(args.rounds, args.hogs, args.lead)


def execute(rounds: int, hogs_count: int, lead: float) -> int:
    started = time.monotonic()
    print(f"open bench: {rounds} rounds per client and condition, hogs {hogs_count}, lead >= {lead:g} s; "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs", flush=True)
    bench = run(rounds, hogs_count, lead)
    print()
    print(report(bench))
    print(f"(open bench took {time.monotonic() - started:.0f} s)")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
