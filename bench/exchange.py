"""The benchmark's exchange: the project's fake MEXC (tests/fakes/mexc_http.py) served from its
own process, so the clients under test share nothing with it but the machine.

    python -m bench.exchange        # prints "listening http://127.0.0.1:<port>", serves until killed

It is the fake the tests use, unchanged: MEXC's millisecond server clock (`/api/v3/time`
answers whole milliseconds), exchangeInfo, ping, signed orders (HMAC, recvWindow and
timestamp checked as FACTS.md says), GET order by origClientOrderId, 10007 "symbol not
support api" until a pair's open instant, and 500 requests per 10 s per endpoint (the fake's
default; one API key is used, so that is also the budget per key) before 429. What this module
adds is a control door for the driver (`/bench/...`, never rate-limited) and, per round, the
arrival of every order relative to the open on the server's own clock.

The arrival stamp is the fake's: `time.perf_counter_ns()` when the request's bytes were read
(`data_received`), placed on the wall clock with the tightest of 50 bracketed readings taken
when the round's pair is listed. The open is the pair's `opens_at_ms` on that wall clock (no
skew: exchange and clients share the machine's clock). The fake decides open or not a few
microseconds after that stamp, so an order stamped a few µs before the open can be accepted.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from bench.rig import KEY, SECRET, wall_minus_perf_ns
from tests.fakes.mexc_http import ORDER, FakeMexcServer, FakeSymbol, _Connection, _param_of, _Request, _response

CONTROL = "/bench/"


@dataclass
class Round:
    symbol: str
    opens_at_ms: int
    wall_minus_perf: int
    first_request_wall_ns: int | None = None
    orders: list[tuple[int, str]] = field(default_factory=list)  # (arrival ns after the open, outcome)


class BenchExchange(FakeMexcServer):
    def __init__(self) -> None:
        # Balance large enough never to refuse a buy; rate limits as MEXC's (the fake's defaults).
        super().__init__(api_key=KEY, api_secret=SECRET, balances={"USDT": "1000000000"})
        self.round: Round | None = None
        self.rounds: dict[str, Round] = {}

    def handle(self, req: _Request, conn: _Connection) -> Any:
        if req.path.startswith(CONTROL):
            conn.write(self._control(req), req.endpoint, req.close)
            return None
        current = self.round
        if current is not None and current.first_request_wall_ns is None:
            current.first_request_wall_ns = req.arrival_ns + current.wall_minus_perf
        later = super().handle(req, conn)
        if req.endpoint == ORDER:
            arrival = self.order_arrivals[-1]
            record = self.rounds.get(_param_of(req, "symbol") or "")
            if record is not None:
                after_open = arrival.perf_ns + record.wall_minus_perf - record.opens_at_ms * 1_000_000
                record.orders.append((after_open, arrival.outcome))
        return later

    def _control(self, req: _Request) -> bytes:
        params = dict(parse_qsl(req.query))
        if req.path == CONTROL + "list":
            # A fresh pair, the only one listed (keeps exchangeInfo and ccxt's load_markets small).
            base, opens_at_ms = params["base"], int(params["opens_at_ms"])
            symbol = FakeSymbol(symbol=f"{base}USDT", base=base, price=Decimal("0.3"), opens_at_ms=opens_at_ms)
            self.symbols = {symbol.symbol: symbol}
            self.round = self.rounds[symbol.symbol] = Round(symbol.symbol, opens_at_ms, wall_minus_perf_ns())
            body: Any = {"symbol": symbol.symbol}
        elif req.path == CONTROL + "round":
            record = self.rounds[params["symbol"]]
            body = {"symbol": record.symbol, "opens_at_ms": record.opens_at_ms,
                    "first_request_wall_ns": record.first_request_wall_ns,
                    "orders": [{"after_open_ns": ns, "outcome": outcome} for ns, outcome in record.orders]}
        else:
            return _response(404, msgspec.json.encode({"msg": f"no control {req.path}"}))
        return _response(200, msgspec.json.encode(body))


def stand_apart() -> str:
    """Run the exchange under SCHED_FIFO when the host allows it. It stands for MEXC's servers, which
    are not on the clients' host: its own wait for a CPU on a loaded host (milliseconds with the
    hogs) is not either client's doing, and it would be in both clients' figures. It is idle in
    epoll between requests, so this costs the rest of the host nothing. Says what it got."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(2))
    except (OSError, AttributeError) as exc:
        return f"normal priority ({exc})"
    return "SCHED_FIFO 2"


async def serve() -> None:
    server = BenchExchange()
    await server.start()
    print(f"listening {server.base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    print(f"exchange process: {stand_apart()}", file=sys.stderr, flush=True)
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)
