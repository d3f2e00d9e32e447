"""Issue 12: a person's emergency stop holds for a replay started after it. A replay trades for
its own namespaced users (`local.<run>`, `alice.<run>`); `sniper halt` (for SNIPER_USER, or
`--user alice`, or `--global`) recorded before `sniper worker` or `sniper demo` starts holds for
the trader the run stands in for, and the output says so."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.adapters.paper_support import one_listing_file

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 25, 9, 58, tzinfo=UTC)
LAUNCH = START + timedelta(minutes=2)
# Generous: the worker replays 10 minutes at 60x (10 s); the machine is shared.
COMMAND_TIMEOUT = 300


def scenario(path: Path) -> Path:
    """One listing, ready from the start, sniped by SNIPER_USER's stand-in `local`."""
    return one_listing_file(path, name="halted", ticker="HALT", user_id="local", start=START, launch=LAUNCH,
                            end=START + timedelta(minutes=10))


def sniper(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args], cwd=tmp_path, capture_output=True, text=True,
        timeout=COMMAND_TIMEOUT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
             "PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'halt.db'}", **env},
    )
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


@pytest.mark.parametrize("halt", [["halt"], ["halt", "--global"]], ids=["SNIPER_USER", "global"])
def test_a_stop_pressed_before_the_replay_worker_starts_holds_for_its_trader(tmp_path: Path, halt: list[str]) -> None:
    pressed = sniper(tmp_path, *halt, "--reason", "hands off")
    assert pressed.returncode == 0, pressed.stderr
    done = sniper(tmp_path, "worker", SNIPER_SCENARIO=str(scenario(tmp_path / "s.json")), SNIPER_REPLAY_SPEED="60",
                  SNIPER_CALENDAR_POLL_SECONDS="5", SNIPER_STATE_POLL_SECONDS="5")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "FILLED" not in out and "position p-" not in out, out
    scope = "global" if "--global" in halt else "local"
    assert f"emergency stop ({scope}) is ACTIVE: hands off; this run holds it for " in out, out
    assert re.search(r"HALTUSDT\s+local\s+snipe t-[0-9a-f]{12} failed: .*emergency stop.*hands off", out), out


def test_a_stop_of_a_scenario_trader_holds_in_the_demo(tmp_path: Path) -> None:
    assert sniper(tmp_path, "halt", "--user", "alice", "--reason", "alice is away").returncode == 0
    done = sniper(tmp_path, "demo", "--run-id", "held")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "emergency stop (alice) is ACTIVE: alice is away; this run holds it for alice (alice.held here)" in out
    assert not re.search(r"alice\s+FILLED", out), out
    assert re.search(r"PUMPUSDT\s+bob\s+FILLED", out), out  # bob is not halted
    assert re.search(r"PUMPUSDT\s+alice\s+snipe t-[0-9a-f]{12} failed: "
                     r"emergency stop \(alice\): alice is away", out), out
