"""The settings declaration (entrypoints/config.py): a `.env` file under the environment, secrets that
never print, one line naming the variable for a bad value, and the README table regenerated from it."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from application.errors import ConfigurationError
from entrypoints.config import (
    ENV_VARS,
    README_BEGIN,
    README_END,
    SECRET_VARS,
    Secret,
    SecretUrl,
    environ,
    load_settings,
    read_settings,
    readme_with_table,
)

ROOT = Path(__file__).resolve().parents[2]


def test_a_dot_env_file_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("SNIPER_HTTP_PORT=9001\nSNIPER_USER=from-file\n# a comment\nREDIS_PREFIX='quoted'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SNIPER_USER", "from-env")
    settings = load_settings()
    assert (settings.sniper_http_port, settings.sniper_user, settings.redis_prefix) == (9001, "from-env", "quoted")


def test_without_a_dot_env_file_the_environment_alone_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert environ() is os.environ


def test_a_bad_value_in_the_dot_env_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SNIPER_HTTP_PORT=eighty\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNIPER_", "DATABASE_URL", "REDIS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "config"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "sniper: SNIPER_HTTP_PORT must be a whole number between 1 and 65535, got 'eighty'\n"


def test_secrets_are_secret_types_that_never_print() -> None:
    values = read_settings({"MEXC_API_KEY": "key-123", "MEXC_SECRET_KEY": "shh-456",
                               "DATABASE_URL": "postgresql://me:pw-789@db.example/x"})
    shown = repr(values) + str(values.mexc_api_key) + f"{values.mexc_secret_key}" + str(values.database_url)
    assert "key-123" not in shown and "shh-456" not in shown and "pw-789" not in shown
    assert "db.example" in shown  # a URL is shown masked, not hidden
    assert isinstance(values.database_url, SecretUrl) and values.mexc_secret_key.reveal() == "shh-456"
    assert {s.name for s in ENV_VARS if isinstance(s.default, Secret) or s.secret} == SECRET_VARS


@pytest.mark.parametrize(("env", "message"), [
    ({"SNIPER_BRACKET_SENDS": "0"}, "SNIPER_BRACKET_SENDS must be between 1 and 500, got '0'"),
    ({"SNIPER_BRACKET_SENDS": "many"}, "SNIPER_BRACKET_SENDS must be a whole number between 1 and 500, got 'many'"),
    ({"SNIPER_REPLAY_SPEED": "fast"}, "SNIPER_REPLAY_SPEED must be a number between 0.01 and 100000, got 'fast'"),
    ({"SNIPER_PAPER_WALLET": "NaN"}, "SNIPER_PAPER_WALLET must be a decimal amount between 0 and 1000000000000"),
    ({"SNIPER_MARKET": "binance"}, "SNIPER_MARKET must be replay or mexc, got 'binance'"),
    ({"SNIPER_LIVE": "maybe"}, "SNIPER_LIVE must be 0 or 1, got 'maybe'"),
    ({"REDIS_PREFIX": "a:b"}, "REDIS_PREFIX must be 1-64 characters without spaces or ':', got 'a:b'"),
    ({"TELEGRAM_BOT_TOKEN": "no colon secret"},
     "TELEGRAM_BOT_TOKEN must look like 123456:ABC... (as BotFather gives it)"),
    ({"MEXC_BASE_URL": "ftp://x"}, "MEXC_BASE_URL must be a https or http URL, got 'ftp://x'"),
    ({"SNIPER_LIVE": "1"}, "SNIPER_LIVE=1 needs SNIPER_MARKET=mexc"),
    ({"SNIPER_AI_CALL_TIMEOUT_SECONDS": "9"}, "SNIPER_AI_CALL_TIMEOUT_SECONDS (9) must not exceed"),
])
def test_a_bad_value_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(env)
    assert str(refused.value).startswith(message)
    assert "no colon secret" not in str(refused.value)  # a secret's bad value is never echoed


def test_on_off_settings_take_yes_and_no_and_empty_means_the_default() -> None:
    settings = load_settings({"SNIPER_ACCESS_LOG": "no", "SNIPER_DEV_IDENTITY_ON_NETWORK": "YES", "SNIPER_NOTIFY": ""})
    assert (settings.sniper_access_log, settings.sniper_dev_identity_on_network, settings.sniper_notify) == (
        False, True, True)


def test_every_variable_has_a_description_and_a_printed_default() -> None:
    assert all(var.meaning and var.shown_default for var in ENV_VARS)


def test_the_readme_table_is_rewritten_between_its_markers() -> None:
    stale = f"intro\n{README_BEGIN}\n| old | table |\n{README_END}\nafter\n"
    rewritten = readme_with_table(stale)
    assert rewritten.startswith(f"intro\n{README_BEGIN}\n| variable | default | meaning |\n")
    assert rewritten.endswith(f"{README_END}\nafter\n") and "| `SNIPER_HTTP_PORT` | `8080` |" in rewritten
    assert readme_with_table(rewritten) == rewritten


def test_what_sniper_init_writes_for_compose_is_not_read_by_the_commands_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sniper init` writes docker/.env for docker compose; the commands here read only ./.env, the user's:
    neither compose's ENCRYPTION_KEY nor its SNIPER_DEV_IDENTITY_ON_NETWORK=1 reaches them."""
    from entrypoints.cli import main

    for name in ("ENCRYPTION_KEY", "SNIPER_DEV_IDENTITY_ON_NETWORK", "SNIPER_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docker").mkdir()
    assert main(["init"], out=io.StringIO(), err=io.StringIO()) == 0
    assert "SNIPER_DEV_IDENTITY_ON_NETWORK=1\n" in (tmp_path / "docker" / ".env").read_text()
    (tmp_path / ".env").write_text("SNIPER_USER=mine\n")
    settings = load_settings()
    assert settings.sniper_user == "mine"
    assert (settings.encryption_key, settings.sniper_dev_identity_on_network) == (None, False)


def test_cors_origins_are_read_as_a_list_and_a_path_or_a_password_is_refused() -> None:
    settings = load_settings({"SNIPER_CORS_ORIGINS": " https://app.example.com/ ,http://localhost:3000,"})
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")
    for bad in ("https://app.example.com/path", "https://user:pw-123@app.example.com", "app.example.com"):
        with pytest.raises(ConfigurationError) as refused:
            load_settings({"SNIPER_CORS_ORIGINS": bad})
        message = str(refused.value)
        assert message.startswith("SNIPER_CORS_ORIGINS must be comma-separated origins like https://app.example.com")
        assert "pw-123" not in message and "\n" not in message
