"""`python -m bench.persistence`: append throughput and projection lag on the local Postgres.

A fresh database (created here, dropped at the end) at the newest schema. `--writers` asyncio
tasks in this process append realistic snipe/position histories, each to its own streams, each
append a batch of 1-4 events, as fast as the store lets them, through one SqlEventStore (one
per process, as in the product: it group-commits what its writers append concurrently).
Meanwhile a SqlProjector follows the events table in a child process (as the product's
projector worker does), in follow mode (`--poll-ms`), on its own connection.

* throughput: events appended / wall time of the append phase.
* lag per event: the projector's commit that first covers the event's position minus the
  moment the event's append returned (its commit is done by then). The projector's commit is
  stamped when the batch's transaction has committed. Both stamps are CLOCK_MONOTONIC, which
  is one clock for every process of the machine.

The Postgres is the tests' (SNIPER_TEST_DATABASE_URL, default the local one; the new database is
created from the one it names). Exits 0 whether the targets pass or not; 1 if Postgres is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import platform
import resource
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from adapters.eventstore.migrate import upgrade
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.projections.sql import SqlProjector, SqlReadModels
from bench.stats import percentile
from domain.events import Cause, Recorded
from domain.exit_plans import PRESETS
from domain.position import ExitDecision, ExitReason, Position
from domain.target import SnipeTarget
from domain.values import Symbol
from tests.conftest import POSTGRES_UNREACHABLE, postgres_database_url, postgres_dsn

TARGET_EVENTS_PER_S = 5000.0
TARGET_P99_LAG_MS = 100.0
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
D = Decimal


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.persistence", description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=16, help="concurrent appenders (default 16)")
    parser.add_argument("--events", type=int, default=30_000, help="events to append in all (default 30000)")
    parser.add_argument("--poll-ms", type=float, default=5.0,
                        help="projector poll interval once caught up (default 5)")
    parser.add_argument("--batch", type=int, default=500, help="projector batch size (default 500)")
    parser.add_argument("--store-writers", type=int, default=1,
                        help="SqlEventStore max_writers: append inserts in flight at once (default 1)")
    parser.add_argument("--no-projector", action="store_true", help="appends only: measure (a) without the projector")
    parser.add_argument("--follow", metavar="URL", help=argparse.SUPPRESS)  # the projector's process
    parser.add_argument("--warmup", type=int, default=1_000, help="events appended and projected before timing")
    return parser.parse_args(argv)


# --- the histories -----------------------------------------------------------------------------

def snipe_life(tag: str, writer: int, n: int) -> list[list[Recorded]]:
    """One listing sniped from creation to a closed position: the appends the product makes, 1-4 events each."""
    user = f"user-{writer % 4}"
    tid = f"t-{tag}-{writer}-{n}"
    at = T0 + timedelta(minutes=n)

    def cause(seconds: float) -> Cause:
        return Cause(at + timedelta(seconds=seconds), f"corr-{tid}")

    appends: list[list[Recorded]] = []

    def take(*aggregates: SnipeTarget | Position) -> None:
        batch = [rec for agg in aggregates for rec in agg.pending]
        for agg in aggregates:
            agg.mark_saved()
        appends.append(batch)

    launch = at + timedelta(hours=2)
    target = SnipeTarget.create(tid, user, f"coin-{writer}-{n}", Symbol("B" + str(n), "USDT"), launch,
                                D("10.01"), PRESETS["balanced"], D("0.85"), False, cause(0))
    take(target)
    target.mark_ready("sts2-st2-tt4", D("0.95"), 7200, cause(1))
    target.schedule(launch - timedelta(milliseconds=50), launch + timedelta(seconds=30), cause(2))
    take(target)
    target.submit_order(cause(3))
    take(target)
    price, qty = D("0.00009512"), D("105214.46")
    target.record_fill("ex-1", price, qty, D("10.0080"), D("0.005004"), "USDT", 1, D("0.412"), cause(4))
    position = Position.open(tid, user, Symbol("B" + str(n), "USDT"), price, qty, D("10.0080"), D("0.005004"), "USDT",
                             2, PRESETS["balanced"], cause(4))
    take(target, position)
    position.submit_exit(ExitDecision(ExitReason.TAKE_PROFIT, 0, D("42085.78"), D("0.00011415")), cause(60))
    take(position)
    position.record_exit_fill(D("0.00011415"), D("42085.78"), D("0.0024"), cause(61))
    take(position)
    position.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, position.remaining, D("0.00008500")), cause(300))
    position.record_exit_fill(D("0.00008499"), position.remaining, D("0.0026"), cause(301))
    take(position)
    return appends


def histories(tag: str, writers: int, events: int) -> list[list[list[Recorded]]]:
    """Per writer, its appends in order, about `events` events in all."""
    per_life = sum(len(batch) for batch in snipe_life(tag, 0, 0))
    lives = max(1, events // (per_life * writers))
    return [[batch for n in range(lives) for batch in snipe_life(tag, w, n)] for w in range(writers)]


# --- the run ---------------------------------------------------------------------------------------

@dataclass
class Stamps:
    committed: dict[int, float] = field(default_factory=dict)  # position -> append returned
    projected: list[tuple[int, float]] = field(default_factory=list)  # (checkpoint, batch committed)


def _now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


async def _follow_in_child(url: str, args: argparse.Namespace) -> int:
    """The child: catch up, say "ready", follow until stdin says "stop", then print the stamps."""
    marks: list[tuple[int, float]] = []
    engine = make_engine(url, pool_size=2)
    try:
        projector = SqlProjector(engine, batch=args.batch, on_batch=lambda through: marks.append((through, _now())))
        await projector.catch_up()
        marks.clear()
        stop = asyncio.Event()
        following = asyncio.create_task(projector.follow(poll_interval=args.poll_ms / 1000, stop=stop))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        stop.set()
        await following
    finally:
        await engine.dispose()
    print(json.dumps(marks), flush=True)
    return 0


async def _writer(store: SqlEventStore, appends: list[list[Recorded]], stamps: Stamps | None) -> int:
    written = 0
    for batch in appends:
        stored = await store.append(batch)
        if stamps is not None:
            now = _now()
            for rec in stored:
                stamps.committed[rec.position or 0] = now
        written += len(stored)
    return written


def _lags_ms(stamps: Stamps) -> list[float]:
    marks = sorted(stamps.projected)
    through = [m[0] for m in marks]
    lags = []
    for position, committed in stamps.committed.items():
        i = bisect.bisect_left(through, position)
        if i == len(marks):
            continue  # never projected: counted as missing below
        lags.append(max(0.0, marks[i][1] - committed) * 1000)
    return sorted(lags)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_dsn(), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _run(args: argparse.Namespace) -> int:
    name = f"bench_persistence_{secrets.token_hex(4)}"
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - no server: say so and stop
        print(f"persistence benchmark skipped: {POSTGRES_UNREACHABLE} ({type(exc).__name__}: {exc})")
        return 1
    try:
        return await _measure(postgres_database_url(name), args)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _measure(url: str, args: argparse.Namespace) -> int:
    writers = args.writers
    appends = histories("bench", writers, args.events)
    warm = histories("warm", writers, args.warmup)
    store_engine = make_engine(url, pool_size=4)
    stamps = Stamps()
    child = None
    try:
        await upgrade(store_engine)
        store = SqlEventStore(store_engine, max_writers=args.store_writers)
        await asyncio.gather(*(_writer(store, batches, None) for batches in warm))
        if not args.no_projector:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.persistence", "--follow", url, "--batch", str(args.batch),
                "--poll-ms", str(args.poll_ms), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )
            if child.stdin is None or child.stdout is None:  # not reached: both are PIPE
                raise RuntimeError("the projector process has no stdin or stdout")
            if (await child.stdout.readline()).strip() != b"ready":
                raise RuntimeError("the projector process did not start")

        warm_transactions = store.group_transactions
        cpu_started = time.process_time()
        started = time.perf_counter()
        written = sum(await asyncio.gather(*(_writer(store, batches, stamps) for batches in appends)))
        elapsed = time.perf_counter() - started
        writer_cpu = time.process_time() - cpu_started
        projector_cpu_s = 0.0
        if child is None:
            stamps.committed.clear()
        last = await store.last_position()
        deadline = time.monotonic() + 60
        # Another process's checkpoint in the database: nothing to wait on but the table itself.
        while (child is not None and await SqlReadModels(store_engine).checkpoint() < last  # noqa: ASYNC110
               and time.monotonic() < deadline):
            await asyncio.sleep(0.05)
        if child is not None:
            if child.stdin is None or child.stdout is None:  # not reached: both are PIPE
                raise RuntimeError("the projector process has no stdin or stdout")
            child.stdin.write(b"stop\n")
            await child.stdin.drain()
            stamps.projected = [(int(p), float(t)) for p, t in json.loads(await child.stdout.read())]
            await child.wait()
            child = None
            projector_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            projector_cpu_s = projector_cpu.ru_utime + projector_cpu.ru_stime
    finally:
        if child is not None:
            child.kill()
            await child.wait()
        await store_engine.dispose()

    appends_made = sum(len(b) for b in appends)
    transactions = store.group_transactions - warm_transactions
    rate = written / elapsed
    lags = _lags_ms(stamps)
    missing = len(stamps.committed) - len(lags)
    p50, p95, p99 = (percentile(lags, p) for p in (50, 95, 99))
    print("persistence: Postgres event store + SqlProjector (fresh database, dropped afterwards)")
    print(f"environment: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{platform.system()} {platform.release()}")
    print(f"setup: {writers} asyncio writers (own streams) on one SqlEventStore (max_writers {args.store_writers}), "
          f"{appends_made} appends of 1-4 events; "
          + ("no projector" if args.no_projector else
             f"SqlProjector in a second process, batch {args.batch}, poll {args.poll_ms:g} ms once caught up"))
    print(f"(a) append throughput: {written} events in {elapsed:.2f} s = {rate:,.0f} events/s "
          f"({appends_made / elapsed:,.0f} appends/s in {transactions} transactions, "
          f"{appends_made / max(transactions, 1):.1f} appends each)")
    if args.no_projector:
        print("(b) projection lag: not measured (--no-projector)")
    else:
        print(f"(b) projection lag (append returned -> projector committed), n={len(lags)}: "
              f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {lags[-1] if lags else float('nan'):.1f} ms"
              f"{f', NOT PROJECTED {missing}' if missing else ''}")
    print(f"cpu: writers' process {writer_cpu:.1f} s during the {elapsed:.1f} s append phase "
          f"({writer_cpu / written * 1e6:.0f} us/event); projector process {projector_cpu_s:.1f} s in all")
    print("targets (the run exits 0 either way)")
    verdict = "PASS" if rate >= TARGET_EVENTS_PER_S else "FAIL"
    print(f"  {verdict}  (a) >= {TARGET_EVENTS_PER_S:,.0f} events/s ({rate:,.0f})")
    if not args.no_projector:
        ok = p99 < TARGET_P99_LAG_MS and missing == 0
        print(f"  {'PASS' if ok else 'FAIL'}  (b) p99 lag < {TARGET_P99_LAG_MS:g} ms ({p99:.1f} ms)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.follow:
        return asyncio.run(_follow_in_child(args.follow, args))
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
