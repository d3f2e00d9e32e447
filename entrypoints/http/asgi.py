"""An ASGI factory for running the API under uvicorn with several worker processes:

    uvicorn entrypoints.http.asgi:app --factory --http entrypoints.http.asgi:protocol \\
        --workers 2 --host 127.0.0.1 --port 8080

Each worker builds its own container from the environment (like `sniper serve`). With more
than one worker, set REDIS_URL: the rate limits and live streams are per process otherwise.
`--http entrypoints.http.asgi:protocol` applies the slow-client deadlines and the connection cap of
the environment (SNIPER_HTTP_*_TIMEOUT_SECONDS, SNIPER_HTTP_KEEP_ALIVE_SECONDS,
SNIPER_HTTP_MAX_CONNECTIONS; see entrypoints/http/protocol.py), as `sniper serve` does. The log
follows SNIPER_LOG_LEVEL and SNIPER_LOG_FORMAT as `sniper serve`'s does, uvicorn's lines included;
the access log is the app's (SNIPER_ACCESS_LOG), uvicorn's own is off.
"""

from __future__ import annotations

import functools
from typing import Any

from litestar import Litestar

from adapters.clock import SystemClock
from entrypoints.config import Settings, load_settings
from entrypoints.http.app import create_app
from entrypoints.http.protocol import GuardedHttpToolsProtocol
from entrypoints.http.providers import http_container
from entrypoints.logs import configure_logging


def app() -> Litestar:
    settings = load_settings()
    # uvicorn has set up its own loggers by now: this puts them, and every other, on the process's log.
    configure_logging(settings, long_running=True)
    container = http_container(settings, SystemClock())
    application = create_app(container, settings)
    application.on_shutdown.append(container.close)
    return application


@functools.cache
def _limits() -> Settings:
    return load_settings()


def protocol(*args: Any, **kwargs: Any) -> GuardedHttpToolsProtocol:
    """uvicorn's `--http` protocol: one per connection, with the limits of the environment."""
    return GuardedHttpToolsProtocol(*args, limits=_limits(), **kwargs)
