"""`sniper worker` as a process: start-up reconciliation first, agents, and SIGTERM during a
snipe — the snipe finishes and is recorded before the worker exits cleanly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.adapters.paper_support import one_listing_file
from tests.entrypoints.support import StreamLines

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 25, 9, 59, 55, tzinfo=UTC)
LAUNCH = START + timedelta(seconds=5)


def event_types(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT event_type FROM events ORDER BY position")]


def start_worker(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[str], StreamLines, Path]:
    """`sniper worker` replaying one listing, TERM, launching 5 s after the scenario's start;
    its stdout (stderr too) read as it comes."""
    db = tmp_path / "worker.db"
    scenario = one_listing_file(tmp_path / "scenario.json", name="sigterm", ticker="TERM", user_id="alice",
                                start=START, launch=LAUNCH, end=START + timedelta(hours=1))
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SNIPER_", "MEXC_", "DATABASE_", "REDIS_"))},
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "SNIPER_SCENARIO": str(scenario),
        "SNIPER_REPLAY_SPEED": "1",
        "SNIPER_CALENDAR_POLL_SECONDS": "1",
        "SNIPER_STATE_POLL_SECONDS": "0.5",
        "SNIPER_PREPARE_AHEAD_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from entrypoints.cli import main; raise SystemExit(main())", "worker"],
        cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    return proc, StreamLines(proc.stdout), db


def test_sigterm_during_a_snipe_lets_it_finish_and_be_recorded(tmp_path: Path) -> None:
    proc, out, db = start_worker(tmp_path)
    try:
        reconciled = out.wait_for("start-up reconciliation:")
        scheduled = out.wait_for("scheduled for")
        assert reconciled < scheduled  # nothing is scheduled, let alone traded, before reconciliation
        # The executor takes the snipe 2 s before launch and waits for the launch instant:
        # stop the worker while the snipe is in flight, before its order is sent.
        out.wait_for("executor armed for launch")
        assert not any("FILLED" in text for text in out.lines)
        signalled_at = len(out.lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    out.join(timeout=5)
    filled = out.wait_for("FILLED", timeout=1)
    assert filled >= signalled_at - 1, "the fill came after the stop was asked for"
    assert any("SIGTERM: finishing work in flight" in text for text in out.lines), out.lines
    types = event_types(db)
    assert types.count("SnipeOrderSubmitted") == 1
    assert types.count("SnipeOrderFilled") == 1 and types.count("PositionOpened") == 1


def test_a_bad_setting_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    proc, out, _ = start_worker(tmp_path, SNIPER_LIVE="1")
    assert proc.wait(timeout=30) == 2
    out.join(timeout=5)
    assert out.lines == ["sniper: SNIPER_LIVE=1 needs SNIPER_MARKET=mexc: a replay is never traded live"]
