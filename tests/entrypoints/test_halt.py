"""`sniper halt` / `sniper resume`: a person's emergency stop from the command line."""

from __future__ import annotations

import io
import re
import sqlite3
from pathlib import Path

import pytest

from entrypoints.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def events(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT stream_id, event_type FROM events ORDER BY position"))


def test_halt_records_the_stop_and_resume_clears_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "h.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    for name in ("MEXC_API_KEY", "MEXC_SECRET_KEY", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    code, out, _ = run("halt", "--user", "alice", "--reason", "exchange acting up")
    assert code == 0 and "emergency stop (alice) ACTIVE: exchange acting up" in out
    # Pressed again: no error, nothing recorded, and since when it holds (issue 12).
    code, out, err = run("halt", "--user", "alice", "--reason", "twice")
    assert (code, err) == (0, "")
    assert re.fullmatch(r"emergency stop \(alice\) already ACTIVE since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: "
                        r"exchange acting up; nothing new recorded\n0 open order\(s\) cancelled on paper\n", out), out
    code, out, _ = run("halt", "--global", "--reason", "everyone")
    assert code == 0 and "(global)" in out
    code, out, _ = run("resume", "--user", "alice")
    assert code == 0 and "cleared" in out
    code, out, err = run("resume", "--user", "alice")
    assert (code, out, err) == (0, "no emergency stop (alice) was active: nothing to clear\n", "")
    assert events(db) == [
        ("safety-alice", "EmergencyStopActivated"),
        ("safety-global", "EmergencyStopActivated"),
        ("safety-alice", "EmergencyStopCleared"),
    ]


def test_halt_needs_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    code, _, err = run("halt", "--reason", "  ")
    assert code == 2 and err == "sniper: --reason must say why\n"
    assert not (tmp_path / "h.db").exists()
