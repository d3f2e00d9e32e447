"""Issue 12, fault 5: `sniper reconcile` never waits for a snipe's launch, and Ctrl-C on
`sniper snipe` cancels its target while no order can have left, saying so in one line.

Real `sniper` processes against the fake MEXC (served by this test's event loop) and one
SQLite file; SIGINT is what a terminal's Ctrl-C sends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.mexc_http import FakeMexcServer, FakeSymbol

ROOT = Path(__file__).resolve().parents[2]
# Generous: the machine is small and shared. A prompt command takes a few seconds; the bug made
# `sniper reconcile` wait for the launch, ten minutes away.
PROMPT = 120


@pytest.fixture
async def fake() -> AsyncIterator[FakeMexcServer]:
    async with FakeMexcServer(
        symbols=[FakeSymbol(symbol="NEWUSDT", base="NEW", price=Decimal("0.00009512"), quantity_scale=0,
                            price_scale=8, min_quantity=Decimal("1"))],
    ) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, fake: FakeMexcServer) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'snipe.db'}",
            "MEXC_BASE_URL": fake.base_url}


async def start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "entrypoints.cli", *args, cwd=env["HOME"], env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def sniper(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await start(env, *args)
    out, err = await asyncio.wait_for(proc.communicate(), PROMPT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def wait_for_event(env: dict[str, str], event_type: str) -> None:
    """Until the store holds an event of this type (read from the SQLite file: quicker than a
    `sniper history` process per look)."""
    db = env["DATABASE_URL"].split(":///", 1)[1]
    for _ in range(PROMPT * 4):
        if Path(db).exists():
            with contextlib.closing(sqlite3.connect(db)) as conn:
                try:
                    if conn.execute("SELECT 1 FROM events WHERE event_type = ?", (event_type,)).fetchone():
                        return
                except sqlite3.OperationalError:  # the schema is being created
                    pass
        await asyncio.sleep(0.25)
    raise AssertionError(f"no {event_type} recorded")


def in_seconds(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")


async def test_ctrl_c_before_the_launch_cancels_the_target_in_one_line(env: dict[str, str]) -> None:
    snipe = await start(env, "snipe", "NEWUSDT", "--quote-amount", "10", "--at", in_seconds(120))
    try:
        await wait_for_event(env, "SnipeScheduled")
        snipe.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(snipe.communicate(), PROMPT)
    finally:
        if snipe.returncode is None:
            snipe.kill()
            await snipe.wait()
    assert snipe.returncode == 130, err.decode()
    lines = err.decode().splitlines()
    assert len(lines) == 1, err.decode()
    found = re.fullmatch(r"sniper: interrupted: snipe target (t-[0-9a-f]{12}) cancelled by cli:local; "
                         r"no order was sent", lines[0])
    assert found, lines[0]
    code, history, _ = await sniper(env, "history", found.group(1))
    assert code == 0
    assert "submitted" not in history  # nothing recorded as sent minutes before the launch
    assert "cancelled" in history.splitlines()[-1], history


async def test_reconcile_lists_a_future_snipe_as_scheduled_and_returns(env: dict[str, str]) -> None:
    snipe = await start(env, "snipe", "NEWUSDT", "--quote-amount", "10", "--at", in_seconds(600))
    try:
        await wait_for_event(env, "SnipeScheduled")
        code, out, err = await sniper(env, "reconcile")
    finally:
        snipe.send_signal(signal.SIGINT)
        await asyncio.wait_for(snipe.communicate(), PROMPT)
    assert code == 0, out + err
    assert re.search(r"^scheduled snipe t-[0-9a-f]{12}: NEWUSDT for local, launch \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; "
                     r"no order sent yet$", out, re.M), out
    assert out.splitlines()[-1] == "clean: every order is accounted for"


async def test_reconcile_does_not_wait_for_the_launch_of_a_snipe_left_executing(env: dict[str, str],
                                                                                fake: FakeMexcServer) -> None:
    # An executor started ten minutes ahead records "submitted" at once; killed, it leaves the
    # target executing with no order sent (none can leave before the launch).
    early = {**env, "SNIPER_PREPARE_AHEAD_SECONDS": "600"}
    snipe = await start(early, "snipe", "NEWUSDT", "--quote-amount", "10", "--at", in_seconds(300))
    try:
        await wait_for_event(env, "SnipeOrderSubmitted")
    finally:
        snipe.kill()
        await snipe.wait()
    code, out, err = await sniper(env, "reconcile")
    assert code == 0, out + err
    assert re.search(r"^scheduled snipe t-[0-9a-f]{12}: NEWUSDT for local, launch .* UTC; recorded as submitted, "
                     r"but no order can leave before its launch", out, re.M), out
    assert fake.order_arrivals == []
