"""The process's log: `sniper serve` as a process logs its start, one line per request with status
and duration, and errors, with time and level, in text or JSON; bad logging settings are one line."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib.metadata import version
from pathlib import Path

import pytest

from entrypoints.cli import main
from entrypoints.logs import JsonFormatter, TextFormatter
from tests.crash.test_service_restart import PrivateRedis, free_port, private_redis  # noqa: F401 (fixture)
from tests.entrypoints.support import StreamLines

ROOT = Path(__file__).resolve().parents[2]
MARKER = "query-secret-7c1f"
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def request(port: int, path: str) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": "Bearer dev"})
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_until_up(port: int, proc: subprocess.Popen[str], stderr: StreamLines, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sniper serve exited {proc.returncode}:\n" + stderr.join())
        try:
            if request(port, "/health") == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("sniper serve did not answer /health in time:\n" + "\n".join(stderr.lines))


def ignored_by_git(name: str) -> bool:
    """Whether the repository's .gitignore covers a file of this name in the working directory."""
    done = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", "-q", name], capture_output=True)
    return done.returncode == 0


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_sniper_serve_logs_its_start_every_request_and_errors(
    log_format: str, tmp_path: Path, private_redis: PrivateRedis  # noqa: F811 (the fixture)
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("SNIPER_", "MEXC_", "DATABASE_", "REDIS_", "KINDE_", "ENCRYPTION_", "OTEL_"))},
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": private_redis.url,
        "REDIS_PREFIX": "h5logs",
        "SNIPER_LOG_FORMAT": log_format,
    }
    # In a fresh directory with the embedded default database: what it writes there is seen below.
    proc = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "serve", "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = StreamLines(proc.stderr)
    try:
        wait_until_up(port, proc, stderr)
        assert request(port, f"/api/v1/portfolio?token={MARKER}") == 200
        assert request(port, "/api/v1/no-such-thing") == 404
        written = sorted(p.name for p in tmp_path.iterdir())
        private_redis.crash()  # the rate limiter needs Redis: the next request finds it gone
        assert request(port, "/api/v1/portfolio") == 503
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    text = stderr.join()
    assert code == 0, text  # a clean stop: the store closed, nothing left behind
    assert MARKER not in text  # the query string is never logged
    assert {"sniper.db", "sniper.db-wal", "sniper.db.dev-encryption-key.SECRET"} <= set(written)
    assert [name for name in written if not ignored_by_git(name)] == []
    assert not any(name.endswith(("-wal", "-shm")) for name in os.listdir(tmp_path))

    if log_format == "json":
        records = [json.loads(line) for line in stderr.lines]  # every line is one JSON object
        assert all(isinstance(r, dict) and {"time", "level", "logger", "message"} <= r.keys() for r in records)
    else:
        records = []
        for line in stderr.lines:
            assert TEXT_LINE.match(line), line
            stamp_level_logger, message = line.split(": ", 1)
            _, level, logger = stamp_level_logger.split(" ")
            records.append({"level": level, "logger": logger, "message": message})
    messages = [(r["level"], r["logger"], r["message"]) for r in records]
    assert ("INFO", "entrypoints.http.serve", f"sniper API starting on http://127.0.0.1:{port} "
            "(development identity, access log on)") in messages
    assert any(logger == "uvicorn.error" and m.startswith("Uvicorn running on") for _, logger, m in messages)
    access = [m for level, logger, m in messages if logger == "sniper.http.access" and level == "INFO"]
    for wanted in (r"GET /health 200 \d+\.\d ms", r"GET /api/v1/portfolio 200 \d+\.\d ms",
                   r"GET /api/v1/no-such-thing 404 \d+\.\d ms", r"GET /api/v1/portfolio 503 \d+\.\d ms"):
        assert any(re.fullmatch(wanted, m) for m in access), (wanted, access)
    assert any(level == "WARNING" and logger == "sniper.http" and m.startswith("service unavailable [")
               for level, logger, m in messages), messages
    assert ("INFO", "entrypoints.http.serve", "sniper API stopped") in messages
    if log_format == "json":
        served = [r for r in records if r["logger"] == "sniper.http.access" and r["status"] == 503]
        assert served and served[0]["method"] == "GET" and served[0]["path"] == "/api/v1/portfolio"
        assert isinstance(served[0]["duration_ms"], float)


def test_the_json_log_carries_the_exception_and_the_text_log_its_traceback() -> None:
    logger = logging.getLogger("h5.test")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    logger.addHandler(keep)
    try:
        try:
            raise RuntimeError("the store went away\nwith a second line")
        except RuntimeError:
            logger.error("request %s failed", "r-1", exc_info=True)
    finally:
        logger.removeHandler(keep)
    (record,) = records
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "ERROR" and parsed["logger"] == "h5.test" and parsed["message"] == "request r-1 failed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", parsed["time"])
    assert parsed["exception"].startswith("Traceback") and "RuntimeError: the store went away" in parsed["exception"]
    text = TextFormatter().format(record)
    first, *rest = text.splitlines()
    assert TEXT_LINE.match(first) and first.endswith(" ERROR h5.test: request r-1 failed")
    assert rest[0].startswith("Traceback") and "RuntimeError: the store went away" in text


@pytest.mark.parametrize(("name", "value", "message"), [
    ("SNIPER_LOG_LEVEL", "loud", "sniper: SNIPER_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got 'LOUD'\n"),
    ("SNIPER_LOG_FORMAT", "xml", "sniper: SNIPER_LOG_FORMAT must be text or json, got 'xml'\n"),
    ("SNIPER_ACCESS_LOG", "sometimes", "sniper: SNIPER_ACCESS_LOG must be 0 or 1, got 'sometimes'\n"),
])
def test_a_bad_logging_setting_is_one_line_and_exit_2(
    name: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    assert main(["config"], out=out, err=err) == 2
    assert err.getvalue() == message and out.getvalue() == ""


def test_a_bad_setting_stops_sniper_serve_with_one_line_and_no_secret(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SNIPER_", "DATABASE_", "REDIS_"))},
           "PYTHONPATH": str(ROOT), "REDIS_URL": f"http://:{MARKER}@cache.example:6379/0"}
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "serve", "--port", str(free_port())],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("sniper: REDIS_URL must be a redis://, rediss:// or unix:// URL, "
                           "got 'http://***@cache.example:6379/0'\n")
    assert os.listdir(tmp_path) == []  # nothing written


def test_the_log_level_and_format_are_read_from_the_environment() -> None:
    from entrypoints.config import Settings, load_settings, log_settings

    def log(settings: Settings) -> tuple[str | None, str]:
        return settings.sniper_log_level, settings.sniper_log_format

    assert log(log_settings({})) == (None, "text")
    assert log(log_settings({"SNIPER_LOG_LEVEL": " debug ", "SNIPER_LOG_FORMAT": "JSON"})) == ("DEBUG", "json")
    assert log(load_settings({"SNIPER_LOG_LEVEL": "error"})) == ("ERROR", "text")
    assert load_settings({}).sniper_access_log is True
    assert load_settings({"SNIPER_ACCESS_LOG": "0"}).sniper_access_log is False


def test_sniper_worker_logs_in_the_same_format(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("SNIPER_", "MEXC_", "DATABASE_", "REDIS_", "KINDE_", "ENCRYPTION_", "OTEL_"))},
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}",
        "SNIPER_REPLAY_SPEED": "100000",
        "SNIPER_LOG_FORMAT": "json",
    }
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "worker", "--for", "3"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    starting = [r for r in records if r["logger"] == "sniper" and r["message"].startswith(
        f"sniper {version('mexc-sniper')}: worker starting")]
    assert len(starting) == 1 and starting[0]["level"] == "INFO"
    assert not any(r["logger"].startswith(("alembic", "aiosqlite")) for r in records)  # chatty libraries held back
