"""An ASGI factory for running the API under uvicorn with several worker processes:

    uvicorn entrypoints.http.asgi:app --factory --workers 2 --host 127.0.0.1 --port 8080

Each worker builds its own container from the environment (like `sniper serve`). With more
than one worker, set REDIS_URL: the rate limits and live streams are per process otherwise.
"""

from __future__ import annotations

from litestar import Litestar

from adapters.clock import SystemClock
from entrypoints.config import load_settings
from entrypoints.http.app import create_app
from entrypoints.http.providers import http_container


def app() -> Litestar:
    settings = load_settings()
    container = http_container(settings, SystemClock())
    application = create_app(container, settings.http)
    application.on_shutdown.append(container.close)
    return application
