"""`python -m bench`: ours against the ccxt script a user would write, on a fake MEXC.

1. Open -> first accepted buy (bench/open.py): exchange, our `sniper snipe --live` and the ccxt
   script each in their own process, alternating rounds, quiet and with CPU hogs beside them.
2. Call -> order on the wire (bench/send.py): both clients and the fake in one process and one
   event loop, so the client's stamp and the server's arrival stamp share one clock: the send
   path's own cost in µs, without process start-up, sleeping or scheduling in the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time

import ccxt
import httpx

from bench import open as open_bench
from bench import send
from bench.open import CCXT, OURS, QUIET, SIGNATURE_OR_TIMESTAMP
from bench.rig import Arrivals, ccxt_exchange, new_server, our_exchange
from bench.stats import summarize, table


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    open_bench.add_arguments(parser)
    parser.add_argument("--samples", type=int, default=300, help="(2) samples per side (default 300; 0 skips it)")
    parser.add_argument("--block", type=int, default=25, help="(2) alternating block size (default 25)")
    parser.add_argument("--warmup", type=int, default=30, help="(2) warm-up orders per side (default 30)")
    return parser.parse_args(argv)


async def _send(args: argparse.Namespace) -> send.SendResult:
    arrivals = Arrivals()
    async with new_server() as server:
        server.on_order_arrival = arrivals
        ours = our_exchange(server)
        theirs = ccxt_exchange(server)
        try:
            return await send.run(server, ours, theirs, arrivals, samples=args.samples, block=args.block,
                                  warmup=args.warmup)
        finally:
            await ours.client.aclose()
            await theirs.close()


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.rounds < 1 or args.hogs < 0 or args.lead <= 0 or args.samples < 0 or args.block < 1 or args.warmup < 0:
        print("python -m bench: --rounds and --block must be >= 1, --hogs, --samples and --warmup >= 0, "
              "--lead > 0", file=sys.stderr)
        return 2
    open_bench.stop_on_sigterm()
    started = time.monotonic()
    print(f"environment: Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{os.cpu_count()} CPUs ({_cpu_model()}), {platform.system()} {platform.release()}, "
          f"ccxt {ccxt.__version__}, httpx {httpx.__version__}")
    print(f"arguments: {' '.join(sys.argv[1:] if argv is None else argv) or '(defaults)'}")
    print()
    print(f"(1) open -> first accepted buy: {args.rounds} rounds per client and condition, alternating; "
          f"exchange, `sniper snipe --live` and the ccxt script each in their own process")
    bench = open_bench.run(args.rounds, args.hogs, args.lead)
    print()
    print(open_bench.report(bench))
    print()

    a = None
    if args.samples:
        sent = asyncio.run(_send(args))
        a = {side: summarize(sent.samples[side]) for side in (OURS, CCXT)}
        print(table(f"(2) call -> order request arrives at the server, one process and one loop "
                    f"({args.samples} orders per side in alternating blocks of {args.block}, {args.warmup} warm-up)",
                    [("ours   MexcExchange.place_market_buy", a[OURS]), ("ccxt   mexc.create_order (async)", a[CCXT])]))
        print(f"    not accepted: ours {sent.not_accepted[OURS]}, ccxt {sent.not_accepted[CCXT]}")
        print()

    checks = []
    for condition in bench.conditions:
        ours = sorted(r.first_accepted_ns / 1000 for r in bench.of(condition, OURS) if r.landed)
        theirs = sorted(r.first_accepted_ns / 1000 for r in bench.of(condition, CCXT) if r.landed)
        if ours and theirs:
            ours_med, theirs_med = open_bench.median(ours), open_bench.median(theirs)
            p99 = open_bench.percentile(ours, 99)
            limit = 1000 if condition == QUIET else 3000
            checks.append((f"(1) {condition}: our median <= 1/2 ccxt's", ours_med <= theirs_med / 2,
                           f"{ours_med:.0f} vs {theirs_med / 2:.0f} µs"))
            checks.append((f"(1) {condition}: our p99 < {limit} µs", p99 < limit, f"{p99:.0f} µs"))
    refused = sum(r.refused(SIGNATURE_OR_TIMESTAMP) for r in bench.results)
    checks.append(("(1) no order refused for signature/timestamp", refused == 0, f"{refused}"))
    if a is not None:
        checks.append(("(2) our median <= 1/2 ccxt's", a[OURS].median <= a[CCXT].median / 2,
                       f"{a[OURS].median * 1000:.0f} vs {a[CCXT].median * 500:.0f} µs"))
    print("targets (issue 14; reported, the exit code only says whether every round landed an order)")
    for name, ok, detail in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:<48} ({detail})")
    print(f"  every round landed an order: {'yes' if not bench.failures else f'NO ({len(bench.failures)} did not)'}")
    print(f"run took {time.monotonic() - started:.0f} s")
    return 1 if bench.failures else 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
