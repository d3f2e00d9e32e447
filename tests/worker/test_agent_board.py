"""Agent heartbeats: the in-process board and the Redis one behave alike; the worker's
heartbeats reach `sniper agents` through Redis, which says when they are down."""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from litestar.testing import AsyncTestClient

from adapters.clock import ManualClock
from adapters.memory import InMemoryAgentStatusBoard
from adapters.redis import RedisAgentStatusBoard, redis_client
from application.ports import AgentStatus, AgentStatusBoard
from entrypoints.config import load_settings
from entrypoints.http import create_app
from entrypoints.http.providers import http_container
from tests.adapters.redis_support import delete_matching
from tests.http.support import ALICE, FakeSecurity, auth
from tests.worker.test_worker_process import ROOT, start_worker

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def status(name: str, worker: str = "w1", healthy: bool = True, at: datetime = T0, restarts: int = 0) -> AgentStatus:
    return AgentStatus(name, healthy, at, restarts, f"{name} detail", worker, at + timedelta(seconds=30))


async def _contract(board) -> None:  # noqa: ANN001
    assert await board.statuses() == []
    await board.beat(status("calendar"))
    await board.beat(status("strategy"))
    await board.beat(status("calendar", worker="w2"))
    await board.beat(status("calendar", healthy=False, restarts=1, at=T0 + timedelta(seconds=5)))  # replaces w1's
    got = await board.statuses()
    assert [(s.name, s.worker_id) for s in got] == [("calendar", "w1"), ("calendar", "w2"), ("strategy", "w1")]
    replaced = got[0]
    assert replaced == status("calendar", healthy=False, restarts=1, at=T0 + timedelta(seconds=5))
    assert not replaced.is_current(T0 + timedelta(seconds=6))
    assert got[2].is_current(T0 + timedelta(seconds=30)) and not got[2].is_current(T0 + timedelta(seconds=31))


async def test_in_memory_board() -> None:
    await _contract(InMemoryAgentStatusBoard())


async def test_redis_board(redis_url: str) -> None:
    client = redis_client(redis_url)
    prefix = f"sniper-test-{secrets.token_hex(6)}"
    try:
        await _contract(RedisAgentStatusBoard(client, prefix))
        # Something else wrote into our hash: ignored and dropped, never trusted.
        await client.hset(f"{prefix}:agents", "x/y", b"not json")
        assert len(await RedisAgentStatusBoard(client, prefix).statuses()) == 3
        assert not await client.hexists(f"{prefix}:agents", "x/y")
    finally:
        await client.delete(f"{prefix}:agents")
        await client.aclose()


async def test_the_api_judges_heartbeats_on_the_wall_clock_not_the_markets() -> None:
    """The API's clock may be any market's (here years away from today); a heartbeat stamped
    a moment ago on the wall clock is current, one past its wall-time deadline is not."""
    settings = load_settings({"DATABASE_URL": "memory://"})
    container = http_container(settings, ManualClock(datetime(2001, 1, 1, tzinfo=UTC)), FakeSecurity())
    try:
        async with AsyncTestClient(app=create_app(container, settings)) as client:
            board = await container.get(AgentStatusBoard)
            now = datetime.now(UTC)
            await board.beat(status("calendar", at=now))
            await board.beat(status("strategy", at=now - timedelta(minutes=5)))
            agents = {a["name"]: a for a in (await client.get("/api/v1/agents", headers=auth(ALICE))).json()}
            assert (agents["calendar"]["stale"], agents["calendar"]["healthy"]) == (False, True)
            assert (agents["strategy"]["stale"], agents["strategy"]["healthy"]) == (True, False)
    finally:
        await container.close()


def sniper_agents(env: dict[str, str], worker: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-c", "from entrypoints.cli import main; raise SystemExit(main())", "agents", "--worker",
            worker
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def test_sniper_agents_reads_a_running_workers_heartbeats(tmp_path: Path, redis_url: str) -> None:
    prefix = f"sniper-test-{secrets.token_hex(6)}"
    worker = f"w-{secrets.token_hex(3)}"
    proc, out, _ = start_worker(tmp_path, REDIS_URL=redis_url, REDIS_PREFIX=prefix, SNIPER_WORKER_ID=worker)
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": redis_url, "REDIS_PREFIX": prefix}
    try:
        out.wait_for("scheduled for")
        running = sniper_agents(env, worker)
        assert running.returncode == 0, running.stdout + running.stderr
        names = {line.split()[1] for line in running.stdout.splitlines()[1:]}
        assert names == {
            "calendar", "pattern-discovery", "strategy", "risk-manager", "safety-monitor", "reconciliation",
            "simulation"
        }
        assert all(line.split()[2] == "ok" for line in running.stdout.splitlines()[1:])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        stopped = sniper_agents(env, worker)
        assert stopped.returncode == 1 and "DOWN" in stopped.stdout and "stopped" in stopped.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
        asyncio.run(delete_matching(redis_url, f"{prefix}:*"))


def test_sniper_agents_without_redis_says_what_to_set() -> None:
    result = sniper_agents({"PATH": "/usr/bin:/bin"}, "any")
    assert result.returncode == 2
    assert "set REDIS_URL" in result.stderr
