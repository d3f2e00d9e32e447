"""What the program writes into the working directory is ignored by git (one `git add -A` must
never commit the development key file or `.env`), and `sniper --version` names the version."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from entrypoints.cli import main
from entrypoints.config import load_settings
from entrypoints.keys import key_ring

ROOT = Path(__file__).resolve().parents[2]


def not_ignored_by_git(names: list[str]) -> list[str]:
    """Which of these names, as files of the repository's root, its .gitignore does not cover."""
    return [name for name in names
            if subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", "-q", name]).returncode != 0]


def test_what_the_commands_write_into_the_working_directory_is_ignored_by_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATABASE_URL", "NEON_DATABASE_URL", "REDIS_URL", "SNIPER_SCENARIO", "ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docker").mkdir()  # as in the repository: `sniper init` writes docker/.env
    assert main(["init"], out=io.StringIO(), err=io.StringIO()) == 0
    # (`sniper demo` and `sniper worker` write only the database, as migrate does; serve: see test_logs.)
    for argv in (["migrate"], ["backtest"]):
        err = io.StringIO()
        assert main(argv, out=io.StringIO(), err=err) == 0, (argv, err.getvalue())
    # The development key file, as `sniper serve` makes it (see test_logs for serve): compose's docker/.env
    # and its ENCRYPTION_KEY are not read here.
    key_ring(load_settings())
    written = sorted(os.listdir(tmp_path))
    assert {"sniper.db", "backtest.html", "docker", "sniper.db.dev-encryption-key.SECRET"} <= set(written)
    assert os.listdir(tmp_path / "docker") == [".env"]
    assert not_ignored_by_git([name for name in written if name != "docker"] + ["docker/.env", ".env"]) == []
    assert not_ignored_by_git(["sniper.db-wal", "sniper.db-shm", "sniper.db.key", "docker/.env"]) == []


def test_sniper_version() -> None:
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"sniper {version('mexc-sniper')}\n", "")


def test_sniper_v_is_short_for_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["-V"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"sniper {version('mexc-sniper')}\n"
