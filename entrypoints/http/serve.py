"""`sniper serve`: the HTTP API on uvicorn, until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
from typing import TextIO

import uvicorn

from adapters.clock import SystemClock
from application.credentials import CredentialVault
from application.identity import IdentityVerifier
from application.ports import EventStore, RequestCounter
from entrypoints.config import Settings
from entrypoints.http.app import create_app
from entrypoints.http.providers import http_container


async def serve(settings: Settings, out: TextIO, host: str | None = None, port: int | None = None) -> None:
    host = host or settings.http.host
    port = port or settings.http.port
    container = http_container(settings, SystemClock())
    try:
        # Resolve what a bad setting would break now, so the start fails in one line, not the first request.
        for dependency in (EventStore, IdentityVerifier, CredentialVault, RequestCounter):
            await container.get(dependency)
        app = create_app(container, settings.http)
        out.write(f"sniper API on http://{host}:{port} (OpenAPI: /schema, probes: /health /ready)\n")
        out.flush()
        config = uvicorn.Config(
            app, host=host, port=port, log_level=logging.getLevelName(logging.INFO).lower(), access_log=False,
            server_header=False, proxy_headers=False, lifespan="on",
        )
        await uvicorn.Server(config).serve()
    finally:
        await container.close()
