"""The process's log, configured once per command (entrypoints/cli.py calls `configure_logging`).

One handler on the root logger, writing to stderr: every logger of ours, of the libraries and of
uvicorn goes through it, so all lines look alike.

- text: `2026-12-07T06:37:50.971Z INFO sniper.http.access: GET /api/v1/portfolio 200 3.1 ms`,
  a traceback on the lines after it;
- json (SNIPER_LOG_FORMAT=json): one object per line, `{"time", "level", "logger", "message"}`,
  `"exception"` with the traceback when there is one, and the record's own fields (the access
  log's method, path, status, duration_ms).

Times are UTC. `serve` and `worker` log at SNIPER_LOG_LEVEL (INFO by default); the other commands
print their results on stdout and log warnings and errors only unless SNIPER_LOG_LEVEL is set.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from types import TracebackType
from typing import Any

from entrypoints.config import Settings

# Chatty at INFO (a line per HTTP call, per migration step, per job): kept at WARNING.
NOISY_LOGGERS = ("httpx", "httpcore", "hpack", "websockets", "saq", "alembic", "aiosqlite", "asyncpg",
                 "openai", "anthropic", "cohere", "urllib3", "multipart", "opentelemetry",
                 "apprise")  # apprise's DEBUG lines carry the Discord/Slack webhook URL with its token
# uvicorn's own access log has no duration; the app logs one line per request instead (sniper.http.access).
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")

# Attributes every LogRecord has; anything else on a record came from `extra=` and goes into JSON.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_SKIPPED_EXTRAS = frozenset({"color_message"})  # uvicorn's copy of the message with terminal colours


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (stdlib name)
        return _timestamp(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in _SKIPPED_EXTRAS and name not in line:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when the record is emitted (as logging.lastResort does)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(settings: Settings, long_running: bool) -> None:
    """Install the one handler. Like logging.basicConfig, it leaves alone a process whose root
    logger already has handlers of someone else's (a host application, pytest): theirs win.
    Calling it again replaces what the previous call set up. Reads SNIPER_LOG_LEVEL (None: the command's
    own default) and SNIPER_LOG_FORMAT."""
    root = logging.getLogger()
    if any(not isinstance(h, _StderrHandler) for h in root.handlers):
        return
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if settings.sniper_log_format == "json" else TextFormatter())
    root.addHandler(handler)
    level = logging.getLevelName(settings.sniper_log_level or ("INFO" if long_running else "WARNING"))
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()  # what `uvicorn` on the command line installed (entrypoints/http/asgi.py)
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)
    logging.getLogger("uvicorn.access").disabled = True
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], value: BaseException, traceback: TracebackType | None) -> None:
    """A crash's traceback goes through the log too: with SNIPER_LOG_FORMAT=json it is one JSON line
    like every other, not forty lines a log collector would take for forty messages."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, traceback)
        return
    logging.getLogger("sniper").critical("the process ends on an uncaught %s", kind.__name__,
                                         exc_info=(kind, value, traceback))


def package_version() -> str:
    """The installed package's version, for start lines and `sniper --version`."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mexc-sniper")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"
