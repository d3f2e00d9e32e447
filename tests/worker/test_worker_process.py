"""`sniper worker` as a process: start-up reconciliation first, agents, and SIGTERM during a
snipe — the snipe finishes and is recorded before the worker exits cleanly."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 25, 9, 59, 55, tzinfo=UTC)
LAUNCH = START + timedelta(seconds=5)


def event_types(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT event_type FROM events ORDER BY position")]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def scenario(path: Path) -> Path:
    doc = {
        "name": "sigterm",
        "start": iso(START),
        "end": iso(START + timedelta(hours=1)),
        "traders": [{"user_id": "alice", "quote_amount": "10", "exit_strategy": "balanced"}],
        "listings": [{
            "coin_id": "term-1", "ticker": "TERM", "full_name": "Term Coin",
            "announced_at": iso(START), "launch_at": iso(LAUNCH), "price_scale": 4, "quantity_scale": 2,
            "states": [{"at": iso(START), "sts": 2, "st": 2, "tt": 4}],
            "prices": [{"t": "0", "price": "0.5"}, {"t": "3600", "price": "0.5"}],
        }],
    }
    path.write_text(json.dumps(doc))
    return path


class Output:
    """The worker's stdout, line by line, as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for text in proc.stdout:
            self.lines.append(text.rstrip("\n"))

    def wait_for(self, needle: str, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, text in enumerate(self.lines):
                if needle in text:
                    return i
            time.sleep(0.02)
        raise AssertionError(f"{needle!r} not printed in {timeout} s; got:\n" + "\n".join(self.lines))


def start_worker(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[str], Output, Path]:
    db = tmp_path / "worker.db"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SNIPER_", "MEXC_", "DATABASE_", "REDIS_"))},
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "SNIPER_SCENARIO": str(scenario(tmp_path / "scenario.json")),
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
    return proc, Output(proc), db


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
    out._thread.join(timeout=5)
    filled = out.wait_for("FILLED", timeout=1)
    assert filled >= signalled_at - 1, "the fill came after the stop was asked for"
    assert any("SIGTERM: finishing work in flight" in text for text in out.lines), out.lines
    types = event_types(db)
    assert types.count("SnipeOrderSubmitted") == 1
    assert types.count("SnipeOrderFilled") == 1 and types.count("PositionOpened") == 1


def test_a_bad_setting_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    proc, out, _ = start_worker(tmp_path, SNIPER_LIVE="1")
    assert proc.wait(timeout=30) == 2
    out._thread.join(timeout=5)
    assert out.lines == ["sniper: SNIPER_LIVE=1 needs SNIPER_MARKET=mexc: a replay is never traded live"]
