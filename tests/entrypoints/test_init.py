"""`sniper init`: docker/.env, which docker/compose.yaml reads, with a fresh ENCRYPTION_KEY, never replaced by
accident, and never the ./.env local commands read."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from adapters.security.sealing import KeyRing
from entrypoints.cli import main
from entrypoints.config import load_settings


def init(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["init", *argv], out, err)
    return code, out.getvalue(), err.getvalue()


def active_lines(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_it_writes_docker_dot_env_with_a_fresh_key_readable_by_its_owner_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docker").mkdir()
    monkeypatch.chdir(tmp_path)
    code, out, err = init()
    assert (code, err) == (0, "")
    env_file = tmp_path / "docker" / ".env"
    assert not (tmp_path / ".env").exists()  # the one local commands read stays the user's
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    variables = active_lines(env_file)
    assert set(variables) == {"ENCRYPTION_KEY", "SNIPER_DEV_IDENTITY_ON_NETWORK"}
    KeyRing.parse(variables["ENCRYPTION_KEY"])  # the ENCRYPTION_KEY format
    settings = load_settings(variables)  # what the file turns on is a valid setting
    assert settings.sniper_dev_identity_on_network
    # Compose reads docker/.env unasked: no --env-file.
    assert "docker compose -f docker/compose.yaml up --build\n" in out and "--env-file" not in out
    assert variables["ENCRYPTION_KEY"] not in out
    assert "# SNIPER_MARKET=mexc" in env_file.read_text()


def test_without_a_docker_directory_here_it_says_where_to_run_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = init()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "repository root" in err and "--path" in err, err
    assert list(tmp_path.iterdir()) == []


def test_another_path_is_given_to_compose_with_env_file(tmp_path: Path) -> None:
    code, out, _ = init("--path", str(tmp_path / "deploy.env"))
    assert code == 0 and f"--env-file {tmp_path / 'deploy.env'} up --build" in out


def test_two_runs_give_two_keys(tmp_path: Path) -> None:
    assert init("--path", str(tmp_path / "a.env"))[0] == 0
    assert init("--path", str(tmp_path / "b.env"))[0] == 0
    assert active_lines(tmp_path / "a.env")["ENCRYPTION_KEY"] != active_lines(tmp_path / "b.env")["ENCRYPTION_KEY"]


def test_an_existing_file_is_kept_unless_forced(tmp_path: Path) -> None:
    env_file = tmp_path / "deploy.env"
    env_file.write_text("ENCRYPTION_KEY=the one sealing every stored credential\n")
    env_file.chmod(0o644)
    code, out, err = init("--path", str(env_file))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "exists" in err and "--force" in err, err
    assert env_file.read_text() == "ENCRYPTION_KEY=the one sealing every stored credential\n"

    assert init("--path", str(env_file), "--force")[0] == 0
    KeyRing.parse(active_lines(env_file)["ENCRYPTION_KEY"])
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["deploy.env"]  # no temporary file left


@pytest.mark.parametrize(("where", "message"), [
    ("missing/.env", "--path: the directory"),
    (".", "--path must name a file"),
])
def test_a_bad_path_is_one_line_and_nothing_is_written(tmp_path: Path, where: str, message: str) -> None:
    code, out, err = init("--path", str(tmp_path / where))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []
