"""Helpers of the crash tests: worker processes, the fake exchange, the store and the servers.

Workers are real processes (`sys.executable -m tests.crash.worker_script`, `-m entrypoints.cli`)
talking to a FakeMexcServer that runs on this test's event loop, so every wait here is an
`await` that lets the fake keep answering. Waits are for a condition (a line printed, a row
stored, a key gone) with a generous limit, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from adapters.clock import SystemClock
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from application.ports import EventStore, Scheduler, TraderDirectory
from application.trade_book import TradeBook
from application.use_cases.targets import CreateSnipeTarget, NewSnipe
from domain.events import Recorded
from domain.position import position_id_for, position_stream
from domain.target import target_stream
from domain.values import Symbol
from entrypoints.config import ENV_VARS, load_settings
from entrypoints.container import TradingMode, mexc_trading_container
from tests.conftest import postgres_dsn
from tests.fakes.mexc_http import FakeMexcServer, FakeSymbol

ROOT = Path(__file__).resolve().parents[2]
API_KEY, API_SECRET = "crash-key", "crash-secret"
SYMBOL = "NEWUSDT"
QUOTE = Decimal("10.01")
USER = "local"
# A cold interpreter importing the whole container takes about a second; CI machines are slower.
PROCESS_TIMEOUT = 30.0

T = TypeVar("T")


# --- the exchange -------------------------------------------------------------------------

def fake_exchange() -> FakeMexcServer:
    return FakeMexcServer(
        api_key=API_KEY, api_secret=API_SECRET,
        symbols=[FakeSymbol(symbol=SYMBOL, base="NEW", price=Decimal("0.00009512"), quantity_scale=0,
                            price_scale=8, min_quantity=Decimal("1"))],
    )


# --- processes ----------------------------------------------------------------------------

def child_env(database_url: str, fake: FakeMexcServer, *, redis_url: str | None = None,
              redis_prefix: str | None = None, live: bool = True, **extra: str) -> dict[str, str]:
    """The environment of a worker or `sniper` process: none of this shell's sniper settings leak in."""
    ours = {var.name for var in ENV_VARS}
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update(
        PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", DATABASE_URL=database_url,
        MEXC_BASE_URL=fake.base_url, MEXC_WEB_URL=fake.base_url, SNIPER_USER=USER,
        # Never the real MEXC: a closed local port unless a test gives its fake WebSocket server.
        MEXC_WS_URL="ws://127.0.0.1:9/ws",
        SNIPER_RETRY_INTERVAL_MS="5",
    )
    if live:
        env.update(MEXC_API_KEY=API_KEY, MEXC_SECRET_KEY=API_SECRET)
    if redis_url is not None:
        assert redis_prefix is not None, "a Redis prefix of its own keeps each test's leases apart"
        env.update(REDIS_URL=redis_url, REDIS_PREFIX=redis_prefix)
    env.update(extra)
    return env


class Child:
    """One subprocess with its stdout read line by line."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name, self.proc = name, proc
        self.lines: list[str] = []
        self.stderr = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def expect(self, prefix: str, timeout: float = PROCESS_TIMEOUT) -> str:
        """The next stdout line starting with `prefix` (earlier lines are kept in `lines`)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no line starting with {prefix!r} within {timeout} s; "
                                     f"got {self.lines}")
            raw = await asyncio.wait_for(self.proc.stdout.readline(), left)
            if not raw:
                await self._collect_stderr()
                raise AssertionError(f"{self.name} ended before printing {prefix!r}: lines {self.lines}, "
                                     f"exit {self.proc.returncode}\n{self.stderr}")
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            if line.startswith(prefix):
                return line

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs in the child."""
        if self.proc.returncode is None:
            with suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)

    async def finish(self, timeout: float = PROCESS_TIMEOUT) -> int:
        """Wait for the exit (killing the child if it overstays); returns the exit code."""
        try:
            out, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        except TimeoutError:
            self.kill()
            await self.proc.wait()
            raise AssertionError(f"{self.name} still ran after {timeout} s: lines {self.lines}") from None
        self.lines += [line for line in out.decode().splitlines()]
        self.stderr += err.decode()
        assert self.proc.returncode is not None
        return self.proc.returncode

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def _collect_stderr(self) -> None:
        if self.proc.stderr is not None:
            with suppress(TimeoutError):
                self.stderr += (await asyncio.wait_for(self.proc.stderr.read(), 5)).decode()


class Children:
    """Every subprocess a test starts; those still running at the end are killed."""

    def __init__(self) -> None:
        self._all: list[Child] = []

    async def start(self, name: str, env: dict[str, str], *argv: str) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *argv, env=env, cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        child = Child(name, proc)
        self._all.append(child)
        return child

    async def worker(self, name: str, env: dict[str, str], target_id: str | None = None) -> Child:
        """A worker executing `target_id`; without it, one waiting on stdin after printing `ready`."""
        return await self.start(name, env, "-m", "tests.crash.worker_script", *([target_id] if target_id else []))

    async def sniper(self, env: dict[str, str], *argv: str, timeout: float = PROCESS_TIMEOUT) -> tuple[int, str, str]:
        """Run one `sniper` command to its end: (exit code, stdout, stderr)."""
        child = await self.start(f"sniper {' '.join(argv)}", env, "-m", "entrypoints.cli", *argv)
        code = await child.finish(timeout)
        return code, child.output, child.stderr

    async def close(self) -> None:
        for child in self._all:
            child.kill()
        for child in self._all:
            with suppress(TimeoutError):  # pragma: no cover - SIGKILL is not refused
                await asyncio.wait_for(child.proc.wait(), 10)


# --- waiting ------------------------------------------------------------------------------

async def eventually(probe: Callable[[], Awaitable[T]], what: str, timeout: float = PROCESS_TIMEOUT,
                     interval: float = 0.02) -> T:
    """Poll `probe` until it returns something truthy; that value, or AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout} s")
        await asyncio.sleep(interval)


def run_aside(make: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
    """Run a coroutine to its end on its own loop in a thread: usable from a synchronous hook
    of the fake exchange (which blocks this loop meanwhile, as a slow network would)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result(timeout=timeout)  # type: ignore[arg-type]


# --- the store ----------------------------------------------------------------------------

async def create_target(database_url: str, launch_at: datetime, snipe_window_seconds: int = 10) -> str:
    """A manual, scheduled live target, created on the container `sniper snipe` uses (which also
    gives the fresh database its schema before any worker starts). LIVE: a live target is refused
    at creation unless the user's profile trades live, as SNIPER_USER's does in LIVE mode. Without
    the pair's rules: MEXC_BASE_URL is not the fake's here, and nothing may reach the real MEXC."""
    settings = load_settings({"DATABASE_URL": database_url, "SNIPER_USER": USER,
                              "SNIPER_SNIPE_WINDOW_SECONDS": str(snipe_window_seconds)})
    container = mexc_trading_container(settings, TradingMode.LIVE, SystemClock())
    try:
        create = CreateSnipeTarget(
            await container.get(EventStore), await container.get(TraderDirectory), await container.get(Scheduler),
            SystemClock(), settings.timing, await container.get(TradeBook),
        )
        return await create(NewSnipe(USER, Symbol.parse(SYMBOL), launch_at, QUOTE, live=True))
    finally:
        await container.close()


@asynccontextmanager
async def open_store(database_url: str) -> AsyncIterator[SqlEventStore]:
    engine = make_engine(database_url)
    try:
        yield SqlEventStore(engine)
    finally:
        await engine.dispose()


async def all_events(database_url: str) -> list[Recorded]:
    async with open_store(database_url) as store:
        return await store.read_all()


async def stream_of(database_url: str, stream_id: str) -> list[Recorded]:
    async with open_store(database_url) as store:
        return await store.load(stream_id)


def names(records: list[Recorded]) -> list[str]:
    return [type(r.event).__name__ for r in records]


async def target_events(database_url: str, target_id: str) -> list[str]:
    """The target's event names, after checking its versions run 1, 2, 3... without a gap."""
    records = await stream_of(database_url, target_stream(target_id))
    assert [r.version for r in records] == list(range(1, len(records) + 1)), records
    return names(records)


async def submitted(database_url: str, target_id: str) -> bool:
    return "SnipeOrderSubmitted" in await target_events(database_url, target_id)


FILLED_HISTORY = ["SnipeTargetCreated", "SnipeTargetReady", "SnipeScheduled", "SnipeOrderSubmitted", "SnipeOrderFilled"]


async def assert_one_position(database_url: str, target_id: str) -> None:
    """The whole store holds exactly one filled snipe and one opened position, for this target."""
    events = await all_events(database_url)
    counted = names(events)
    assert counted.count("SnipeOrderFilled") == 1, counted
    assert counted.count("PositionOpened") == 1, counted
    assert "SnipeFailed" not in counted and "SnipeOrderRejected" not in counted, counted
    assert await target_events(database_url, target_id) == FILLED_HISTORY
    assert names(await stream_of(database_url, position_stream(position_id_for(target_id)))) == ["PositionOpened"]
    positions = [e.position for e in events]
    assert len(set(positions)) == len(positions), "two events share a global position"


# --- Postgres administration ---------------------------------------------------------------

async def terminate_backends(database_url: str, where: str = "true", *args: Any) -> int:
    """pg_terminate_backend on every connection to the test's database (narrowed by `where`):
    what a Postgres restart does to its clients. Returns how many were terminated."""
    database = make_url(database_url).database
    conn = await asyncpg.connect(postgres_dsn())  # the configured database: not one being terminated
    try:
        return int(await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = $1 AND pid <> pg_backend_pid() AND ({where})", database, *args,
        ))
    finally:
        await conn.close()
