"""`python -m bench`: runs (a) and (b) on one fake server in one run and prints the figures."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import time
from datetime import timedelta

import ccxt
import httpx

from bench import send, snipe
from bench.rig import CCXT, OURS, Arrivals, ccxt_exchange, new_server, our_exchange
from bench.stats import summarize, table
from application.timing import SnipeTiming

DEFAULT_RETRY_MS = 20


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--samples", type=int, default=300, help="(a) samples per side (default 300)")
    parser.add_argument("--block", type=int, default=25, help="(a) alternating block size (default 25)")
    parser.add_argument("--warmup", type=int, default=30, help="(a) warm-up orders per side (default 30)")
    parser.add_argument("--rounds", type=int, default=100, help="(b) listings per side (default 100)")
    parser.add_argument("--retry-ms", type=float, default=DEFAULT_RETRY_MS,
                        help=f"(b) our SnipeTiming.retry_interval in ms (default {DEFAULT_RETRY_MS})")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    arrivals = Arrivals()
    async with new_server() as server:
        server.on_order_arrival = arrivals
        ours = our_exchange(server)
        theirs = ccxt_exchange(server)
        try:
            sent = await send.run(server, ours, theirs, arrivals, samples=args.samples, block=args.block, warmup=args.warmup)
            timing = SnipeTiming(retry_interval=timedelta(milliseconds=args.retry_ms))
            sniped = await snipe.run(server, ours, theirs, arrivals, rounds=args.rounds, lead=(0.12, 0.18),
                                     timing=timing, rng=random.Random(args.seed))
        finally:
            await ours.client.aclose()
            await theirs.close()
    elapsed = time.monotonic() - started

    print(f"environment: Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{os.cpu_count()} CPUs ({_cpu_model()}), {platform.system()} {platform.release()}, "
          f"ccxt {ccxt.__version__}, httpx {httpx.__version__}, default asyncio loop")
    print("setup: fake MEXC on 127.0.0.1 in the same process and event loop; arrival = server's "
          "perf_counter_ns when the order's bytes were read")
    print(f"(a) {args.samples} orders per side in alternating blocks of {args.block} after {args.warmup} warm-up each; "
          f"(b) {args.rounds} listings per side, alternating, each opening 120-180 ms after its round starts")
    print(f"our SnipeTiming.retry_interval = {args.retry_ms:g} ms (product default 20); run took {elapsed:.1f} s")
    print()
    a = {side: summarize(sent.samples[side]) for side in (OURS, CCXT)}
    print(table("(a) call -> order request arrives at the server",
                [("ours   MexcExchange.place_market_buy", a[OURS]), ("ccxt   mexc.create_order", a[CCXT])]))
    print(f"    not accepted: ours {sent.not_accepted[OURS]}, ccxt {sent.not_accepted[CCXT]}")
    print()
    b = {side: summarize(sniped.samples[side]) for side in (OURS, CCXT)}
    print(table("(b) pair opens -> first accepted buy arrives (server clock)",
                [("ours   ExecuteSnipe + MexcExchange", b[OURS]), ("ccxt   sleep + create_order loop", b[CCXT])]))
    for side in (OURS, CCXT):
        att = sniped.attempts[side]
        late = sum(1 for x in att if x > 1)
        print(f"    {side}: rounds filled {len(sniped.samples[side])}/{args.rounds}, orders per round max {max(att, default=0)}, "
              f"rounds needing a retry {late}, failures {len(sniped.failures[side])}")
        for failure in sniped.failures[side][:5]:
            print(f"      failure: {failure}")
    refused = {side: arrivals.refused_for_signature_or_timestamp(side) for side in (OURS, CCXT)}
    print(f"    orders refused for signature/timestamp (a and b): ours {refused[OURS]}, ccxt {refused[CCXT]}")
    for side in (OURS, CCXT):
        print(f"    {side} order outcomes (all runs): {dict(arrivals.outcomes(side))}")
    print()

    checks = [
        ("(a) our median <= 1/2 ccxt median", a[OURS].median <= a[CCXT].median / 2,
         f"{a[OURS].median:.3f} vs {a[CCXT].median / 2:.3f} ms"),
        ("(b) our median <= 1/2 ccxt median", b[OURS].median <= b[CCXT].median / 2,
         f"{b[OURS].median:.3f} vs {b[CCXT].median / 2:.3f} ms"),
        ("(b) our p99 < 2 ms", b[OURS].p99 < 2.0, f"{b[OURS].p99:.3f} ms"),
        ("(b) no order refused for signature/timestamp (a+b)", refused[OURS] == 0 and refused[CCXT] == 0,
         f"ours {refused[OURS]}, ccxt {refused[CCXT]}"),
    ]
    filled = not sniped.failures[OURS] and len(sniped.samples[OURS]) == args.rounds
    print("targets (the run exits 0 either way)")
    for name, ok, detail in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:<54} ({detail})")
    print(f"  check: every one of our snipes filled: {'yes' if filled else 'NO'} ({len(sniped.samples[OURS])}/{args.rounds})")
    return 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
