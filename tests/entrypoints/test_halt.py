"""`sniper halt` / `sniper resume`: a person's emergency stop from the command line."""

from __future__ import annotations

import io
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
    code, _, err = run("halt", "--user", "alice", "--reason", "twice")
    assert code == 1 and err == "sniper: InvalidTransition: emergency stop (alice) cannot be activated while active\n"
    code, out, _ = run("halt", "--global", "--reason", "everyone")
    assert code == 0 and "(global)" in out
    code, out, _ = run("resume", "--user", "alice")
    assert code == 0 and "cleared" in out
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
