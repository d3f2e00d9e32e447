"""Portfolio read under load: `GET /api/v1/portfolio` on `sniper serve`.

    .venv/bin/python -m bench.http                 # about 30 s
    .venv/bin/python -m bench.http --help

Seeds a fresh SQLite database (the embedded default) with one user's positions, projects them,
starts `sniper serve` in a subprocess on 127.0.0.1 (uvicorn, one process, the development
identity), and loads it from this process with keep-alive HTTP/1.1 connections written on raw
asyncio streams (a client far cheaper than the server, so the server is what is measured; both
share the machine's cores). Every request is authenticated and counted by the per-user rate
limiter (its limit is raised out of the way, its cost is not). Reports requests/s and latency
percentiles, and PASS/FAIL against the target: >= 2,000 requests/s with p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

TARGET_RPS = 2000
TARGET_P99_MS = 50.0
USER = "bench"
TOKEN = "dev"  # noqa: S105 - the development sign-in's token, accepted only in development mode


async def seed(database_url: str, positions: int) -> None:
    from adapters.eventstore.migrate import upgrade
    from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
    from adapters.projections import SqlProjector
    from application import repository
    from domain.events import Cause
    from domain.exit_plans import PRESETS
    from domain.listing import target_id_for
    from domain.position import Position
    from domain.target import SnipeTarget
    from domain.values import Symbol

    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        store = SqlEventStore(engine)
        at = datetime.now(UTC) - timedelta(hours=1)
        plan = PRESETS["balanced"]
        for i in range(positions):
            symbol = Symbol(f"BENCH{i}", "USDT")
            target_id = target_id_for(USER, f"bench-{i}")
            cause = Cause(at, target_id)
            target = SnipeTarget.create(target_id, USER, f"bench-{i}", symbol, at, Decimal("10"), plan, Decimal(1),
                                        False, cause)
            position = Position.open(target_id, USER, symbol, Decimal("0.25"), Decimal("40"), Decimal("10"),
                                     Decimal("0.01"), "USDT", 2, plan, cause)
            await repository.save(store, target, position)
        await SqlProjector(engine).catch_up()
    finally:
        await engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(database_url: str, port: int, workdir: Path, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SNIPER_USER": USER,
        "SNIPER_RATE_LIMIT_PER_MINUTE": "1000000",
        "SNIPER_ENV": "development",
    }
    for var in ("REDIS_URL", "KINDE_DOMAIN"):
        env.pop(var, None)
    if workers == 1:
        command = ["-m", "entrypoints.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = ["-m", "uvicorn", "entrypoints.http.asgi:app", "--factory",
                   "--http", "entrypoints.http.asgi:protocol", "--workers", str(workers),
                   "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--no-server-header"]
    return subprocess.Popen(
        [sys.executable, *command],
        env=env, cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.DEVNULL,
        stderr=open(workdir / "server.log", "wb"),
    )


async def wait_ready(port: int, timeout: float = 60) -> None:  # noqa: ASYNC109 - polls a server process's port
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /ready HTTP/1.1\r\nHost: bench\r\n\r\n")
            await writer.drain()
            status = await reader.readline()
            writer.close()
            if b" 200 " in status:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready")


def request_bytes(path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\nAccept: application/json\r\n\r\n"
    ).encode()


REQUEST = request_bytes("/api/v1/portfolio")
EXPECT = b'"positions"'


async def one_connection(
    port: int, stop_at: float, record_from: float, latencies: list[float], errors: list[str],
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                return done
            writer.write(REQUEST)
            status = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            finished = time.perf_counter()
            if b" 200 " not in status or EXPECT not in body:
                errors.append(status.decode(errors="replace").strip())
                if len(errors) > 20:
                    return done
            if started >= record_from:
                latencies.append(finished - started)
                done += 1
    finally:
        writer.close()


async def load(
    port: int, connections: int, warmup: float, duration: float,
) -> tuple[int, float, list[float], list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    begin = time.perf_counter()
    record_from = begin + warmup
    stop_at = record_from + duration
    counts = await asyncio.gather(*(one_connection(port, stop_at, record_from, latencies, errors)
                                    for _ in range(connections)))
    return sum(counts), duration, latencies, errors


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its worker children have used so far, from /proc."""
    total = 0.0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for each in (pid, *map(int, children)):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=10, help="positions the user holds (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring (default 3)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured (default 15)")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes (default 1, `sniper serve`; more run entrypoints.http.asgi)")
    parser.add_argument("--baseline", action="store_true",
                        help="load GET /health instead (no auth, no data): what uvicorn and Litestar alone cost")
    args = parser.parse_args(argv)
    global REQUEST, EXPECT
    if args.baseline:
        REQUEST, EXPECT = request_bytes("/health"), b'"ok"'

    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run

    with tempfile.TemporaryDirectory(prefix="sniper-bench-http-") as tmp:
        workdir = Path(tmp)
        database_url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        asyncio.run(seed(database_url, args.positions))
        port = free_port()
        server = start_server(database_url, port, workdir, args.workers)
        try:
            asyncio.run(wait_ready(port))
            server_cpu_before, client_cpu_before = cpu_seconds(server.pid), time.process_time()
            total, seconds, latencies, errors = runner(load(port, args.connections, args.warmup, args.duration))
            server_cpu = cpu_seconds(server.pid) - server_cpu_before
            client_cpu = time.process_time() - client_cpu_before
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    latencies.sort()
    rps = total / seconds
    p50, p90, p99 = (percentile(latencies, p) * 1000 for p in (50, 90, 99))
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"environment: {os.cpu_count()} cores, load average {load_avg:.2f} at the end, "
          f"Python {sys.version.split()[0]}, "
          f"SQLite, {args.workers} uvicorn process(es), {args.connections} connections, {args.positions} positions")
    print("GET /api/v1/portfolio (authenticated, rate-limited, JSON with the positions)")
    print(f"  requests      {total} in {seconds:.1f} s  ->  {rps:,.0f} requests/s")
    print(f"  latency (ms)  p50 {p50:.2f}   p90 {p90:.2f}   p99 {p99:.2f}   "
          f"max {latencies[-1] * 1000 if latencies else 0:.2f}"
          f"   mean {statistics.fmean(latencies) * 1000 if latencies else 0:.2f}")
    measured = seconds + args.warmup
    per_request_ms = server_cpu / max(total, 1) * 1e3 * seconds / measured
    print(f"  CPU           server {server_cpu / measured * 100:.0f}% of a core ({per_request_ms:.2f} ms"
          f" per request), load client {client_cpu / measured * 100:.0f}% of a core")
    if errors:
        print(f"  errors        {len(errors)} (first: {errors[0]})")
    ok_rps, ok_p99 = rps >= TARGET_RPS, p99 < TARGET_P99_MS and not errors
    print(f"  {'PASS' if ok_rps else 'FAIL'}  throughput >= {TARGET_RPS:,} requests/s")
    print(f"  {'PASS' if ok_p99 else 'FAIL'}  p99 < {TARGET_P99_MS:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
