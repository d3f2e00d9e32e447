"""Tick -> exit order sent: how soon a stop-loss leaves once the price that triggers it exists.

    python -m bench exits [--samples 30] [--hogs 0]

- The exchange: the project's fakes, REST (tests/fakes/mexc_http.py) and WebSocket
  (tests/fakes/mexc_ws.py), in a process of their own (`python -m bench.exits --serve`). Both
  stamps are taken there, on its clock (time.perf_counter_ns): the tick (just before the deal is
  written to the WebSocket, or when the REST price changes) and the arrival of the first SELL
  order for the pair (when its bytes were read). The figure is their difference: it includes the
  loopback transfer both ways.
- Ours, in this process: the worker's exit path with its defaults: ManagePositions selling
  through MexcExchange (the product's REST client, rate limiter and breakers), the price-stream
  agent on MexcMarketStream and the risk manager with the worker's poll plan
  (application/price_polling.py), run by the worker's Supervisor, on an SQLite event store.

Each sample lists a fresh pair at 1, opens a position in it (the balanced plan: stop-loss 10 %),
waits a random 0-1 s (so the tick falls anywhere in the poll cycle), then drops the price to 0.85:
- websocket: a deal pushed on the WebSocket (REST still says 1): the path when MEXC_WS_URL works;
- rest, young position: no WebSocket; REST says 0.85 from the tick on; the position opened just now
  (polled every SNIPER_YOUNG_PRICE_POLL_MS, 200 ms);
- rest, older position: the same for a position opened an hour ago (SNIPER_PRICE_POLL_MS, 1 s: what
  every position got before the young cadence).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from adapters.clock import SystemClock
from adapters.eventstore.migrate import upgrade
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.memory import InMemoryAgentStatusBoard, InMemoryTraderDirectory
from adapters.mexc.exchange import MexcExchange
from adapters.mexc.price_stream import MexcPriceStream
from adapters.mexc.rest import MexcRestClient
from adapters.mexc.streams import MexcMarketStream
from application import repository
from application.agents import PriceStreamAgent, RiskManagerAgent
from application.price_polling import PollPlan
from application.supervisor import AgentSpec, Supervisor
from application.trade_book import TradeBook
from application.use_cases.positions import ManagePositions
from bench.open import Exchange as ProcessExchange
from bench.stats import Summary, summarize, table
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.position import Position
from domain.values import Symbol
from tests.fakes.mexc_http import ORDER, FakeMexcServer, FakeSymbol, _Connection, _param_of, _Request, _response
from tests.fakes.mexc_ws import DEALS_PREFIX, FakeMexcWebSocketServer

ROOT = Path(__file__).resolve().parent.parent
KEY, SECRET = "bench-key", "bench-secret"  # the fake's keys (as bench/rig.py's, without needing ccxt)
CONTROL = "/bench/"
ENTRY, DROP = Decimal("1"), Decimal("0.85")
WEBSOCKET, REST_YOUNG, REST_OLD = "websocket", "rest, young position", "rest, older position"


# --- the exchange's process -----------------------------------------------------------------------


class ExitsExchange(FakeMexcServer):
    def __init__(self, ws: FakeMexcWebSocketServer) -> None:
        super().__init__(api_key=KEY, api_secret=SECRET, balances={"USDT": "1000000"})
        self.ws = ws
        self.ticks: dict[str, int] = {}
        self.sells: dict[str, int] = {}
        self._pushes: set[asyncio.Task[None]] = set()

    def handle(self, req: _Request, conn: _Connection) -> Any:
        if req.path.startswith(CONTROL):
            conn.write(self._control(req), req.endpoint, req.close)
            return None
        if req.endpoint == ORDER and _param_of(req, "side") == "SELL":
            self.sells.setdefault(_param_of(req, "symbol") or "", req.arrival_ns)
        return super().handle(req, conn)

    def _control(self, req: _Request) -> bytes:
        params = dict(parse_qsl(req.query))
        body: Any
        if req.path == CONTROL + "list":
            base = params["base"]
            self.add_symbol(FakeSymbol(symbol=f"{base}USDT", base=base, price=ENTRY))
            self.balances[base] = Decimal("1000")
            body = {"symbol": f"{base}USDT"}
        elif req.path == CONTROL + "subscribed":
            channel = f"{DEALS_PREFIX}100ms@{params['symbol']}"
            body = {"subscribed": any(channel in c.subscriptions for c in self.ws.open_connections)}
        elif req.path == CONTROL + "tick":
            symbol, price = params["symbol"], params["price"]
            if params.get("ws") == "1":
                task = asyncio.ensure_future(self._push(symbol, price))
                self._pushes.add(task)
                task.add_done_callback(self._pushes.discard)
            else:
                self.symbols[symbol].price = Decimal(price)
                self.ticks[symbol] = time.perf_counter_ns()
            body = {"ok": True}
        elif req.path == CONTROL + "result":
            symbol = params["symbol"]
            body = {"tick_ns": self.ticks.get(symbol), "sell_ns": self.sells.get(symbol)}
        else:
            return _response(404, msgspec.json.encode({"msg": f"no control {req.path}"}))
        return _response(200, msgspec.json.encode(body))

    async def _push(self, symbol: str, price: str) -> None:
        self.ticks[symbol] = time.perf_counter_ns()
        await self.ws.publish_deal(symbol, price, "1", time_ms=time.time_ns() // 1_000_000)


async def serve() -> None:
    async with FakeMexcWebSocketServer() as ws:
        server = ExitsExchange(ws)
        await server.start()
        print(f"listening {server.base_url} {ws.url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()


# --- the driver -----------------------------------------------------------------------------------


class Exchange(ProcessExchange):
    """The exchange's process (REST and WebSocket) and its control door."""

    def __init__(self) -> None:
        super().__init__(("bench.exits", "--serve"))
        self.ws_url = self.addresses[1]


class Ours:
    """The worker's exit path, wired as entrypoints/worker.py wires it for SNIPER_MARKET=mexc."""

    def __init__(self, exchange: Exchange, db: Path, websocket: bool) -> None:
        self.exchange, self.db, self.websocket = exchange, db, websocket

    async def __aenter__(self) -> Ours:
        self.engine = make_engine(f"sqlite+aiosqlite:///{self.db}")
        await upgrade(self.engine)
        self.clock = SystemClock()
        self.store, book = SqlEventStore(self.engine), TradeBook()
        self.market = MexcExchange(MexcRestClient(KEY, SECRET, self.exchange.base_url))
        manage = ManagePositions(self.store, self.market, self.clock, book)
        plan = PollPlan(self.clock)
        traders = InMemoryTraderDirectory()
        specs = [AgentSpec("risk-manager", lambda: RiskManagerAgent(manage, self.market, traders, self.store, book,
                                                                     self.clock, plan=plan), plan.cadence.round_every)]
        self.stream: MexcMarketStream | None = None
        if self.websocket:
            self.stream = MexcMarketStream(self.exchange.ws_url)
            await self.stream.start()
            prices = MexcPriceStream(self.stream)
            specs.append(AgentSpec("price-stream",
                                   lambda: PriceStreamAgent(manage, prices, self.store, book, plan=plan),
                                   timedelta(0)))
        self.supervisor = Supervisor(specs, self.clock, InMemoryAgentStatusBoard(), wall_clock=self.clock)
        self.running = asyncio.create_task(self.supervisor.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.supervisor.stop()
        await self.running
        if self.stream is not None:
            await self.stream.stop()
        await self.market.client.aclose()
        await self.engine.dispose()

    async def open_position(self, code: str, age: timedelta) -> None:
        symbol = Symbol.parse(code, "USDT")
        target = f"bench-{code}"
        position = Position.open(target, "bench", symbol, ENTRY, Decimal("10"), Decimal("10"), Decimal("0"), "USDT", 2,
                                 PRESETS["balanced"], Cause(self.clock.now() - age, target))
        await self.market.symbol_rules(symbol)  # the snipe that opened it loaded the pair's rules
        await repository.save(self.store, position)


# A polling helper with a deadline in seconds (the checks ask another process).
async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def _samples(
    exchange: Exchange, path: str, count: int, rng: random.Random, serial: list[int], spread: float,
) -> list[int]:
    control = lambda what, **p: asyncio.to_thread(exchange.control, what, **p)  # noqa: E731
    out: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-exits-") as tmp:
        async with Ours(exchange, Path(tmp) / "history.db", websocket=path == WEBSOCKET) as ours:
            for _ in range(count):
                serial[0] += 1
                code = (await control("list", base=f"EX{serial[0]}"))["symbol"]
                await ours.open_position(code, timedelta(hours=1) if path == REST_OLD else timedelta(0))
                if path == WEBSOCKET:
                    async def subscribed(code: str = code) -> bool:
                        return bool((await control("subscribed", symbol=code))["subscribed"])
                    await _until(subscribed, 20, f"the deals subscription of {code}", 0.005)
                await asyncio.sleep(rng.uniform(0, spread))
                await control("tick", symbol=code, price=DROP, ws=int(path == WEBSOCKET))

                async def sold(code: str = code) -> bool:
                    return (await control("result", symbol=code))["sell_ns"] is not None
                # Asked seldom: the driver's own requests must not slow the path they measure.
                await _until(sold, 20, f"the stop-loss sell of {code}", 0.1)
                result = await control("result", symbol=code)
                out.append(result["sell_ns"] - result["tick_ns"])
    return out


@contextmanager
def hog_processes(count: int) -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def run(samples: int, hogs: int, seed: int, spread: float = 1.0) -> dict[str, Summary]:
    """Figures per path (milliseconds); the older-position path takes half the samples."""
    exchange = Exchange()
    rng, serial = random.Random(seed), [0]
    results: dict[str, Summary] = {}
    try:
        with hog_processes(hogs):
            for path in (WEBSOCKET, REST_YOUNG, REST_OLD):
                n = samples if path != REST_OLD else max(1, samples // 2)
                results[path] = summarize(asyncio.run(_samples(exchange, path, n, rng, serial, spread)))
    finally:
        exchange.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench exits", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30, help="stop-losses per path (the older-position path: half)")
    parser.add_argument("--hogs", type=int, default=0, help="CPU-bound processes running beside everything")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--spread", type=float, default=1.0, help="seconds: each tick comes a random 0..spread "
                        "after the position opens (anywhere in the poll cycle)")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.hogs < 0 or not 0 <= args.spread <= 60:
        print("--samples must be at least 1, --hogs at least 0, --spread within 0..60", file=sys.stderr)
        return 2
    results = run(args.samples, args.hogs, args.seed, args.spread)
    title = "Tick -> exit order at the exchange (stop-loss; fake MEXC in its own process"
    title += f", {args.hogs} CPU hog(s))" if args.hogs else ", quiet)"
    print(table(title, list(results.items())))
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        try:
            asyncio.run(serve())
        except KeyboardInterrupt:
            sys.exit(0)
    sys.exit(main())
