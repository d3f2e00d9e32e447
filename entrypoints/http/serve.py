"""`sniper serve`: the HTTP API on uvicorn, until SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TextIO

import uvicorn

from adapters.clock import SystemClock
from application.credentials import CredentialVault
from application.errors import ConfigurationError
from application.identity import IdentityVerifier
from application.ports import EventStore, RequestCounter
from entrypoints.config import Settings
from entrypoints.http.app import create_app
from entrypoints.http.protocol import guarded_protocol
from entrypoints.http.providers import http_container

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost. Any other name may resolve to a network address: not loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_development_identity_on_network(settings: Settings, host: str) -> None:
    """Without Kinde, `Bearer dev` is SNIPER_USER, whose live orders use the operator's MEXC keys: only
    this machine may reach it. A container must listen on 0.0.0.0 to be reachable through a published
    port, hence the explicit, dangerous opt-in for a port published on 127.0.0.1 only."""
    if settings.kinde_issuer or is_loopback(host):
        return
    if not settings.sniper_dev_identity_on_network:
        raise ConfigurationError(
            f"the development identity (no KINDE_DOMAIN) is refused on {host}, a non-loopback address: anyone "
            f"reaching it would act as user {settings.sniper_user!r}; set KINDE_DOMAIN and KINDE_AUDIENCE, or listen "
            "on 127.0.0.1, or (a container whose port is published on 127.0.0.1 only) SNIPER_DEV_IDENTITY_ON_NETWORK=1"
        )
    log.warning("!!! SNIPER_DEV_IDENTITY_ON_NETWORK=1: the development identity answers on %s; publish this port "
                "on 127.0.0.1 only, or anyone reaching it acts as %r !!!", host, settings.sniper_user)


async def serve(settings: Settings, out: TextIO, host: str | None = None, port: int | None = None) -> None:
    host = host or settings.sniper_http_host
    port = port or settings.sniper_http_port
    refuse_development_identity_on_network(settings, host)
    container = http_container(settings, SystemClock())
    try:
        # Resolve what a bad setting would break now, so the start fails in one line, not the first request.
        for dependency in (EventStore, IdentityVerifier, CredentialVault, RequestCounter):
            await container.get(dependency)
        app = create_app(container, settings)
        out.write(f"sniper API on http://{host}:{port} (dashboard: http://{host}:{port}/, OpenAPI: /schema, "
                  "probes: /health /ready)\n")
        out.flush()
        # log_config=None: uvicorn's loggers go through the process's log (entrypoints/logs.py);
        # the app writes the access log itself, with the duration.
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, log_level=None, access_log=False,
            server_header=False, proxy_headers=False, lifespan="on", http=guarded_protocol(settings),
        )
        server = uvicorn.Server(config)
        log.info("sniper API starting on http://%s:%s (%s, access log %s)", host, port,
                 "Kinde sign-in" if settings.kinde_issuer else "development identity",
                 "on" if settings.sniper_access_log else "off")
        with _stop_on_signals(server):
            await server.serve()
    finally:
        await container.close()
    log.info("sniper API stopped")


@contextlib.contextmanager
def _stop_on_signals(server: uvicorn.Server) -> Iterator[None]:
    """uvicorn stops on SIGTERM/SIGINT, then raises the signal again under the handler that was
    there before it started, which by default ends the process at once: the container above would
    never close (SQLite's -wal/-shm files left behind, telemetry not flushed, exit status 143). The
    handler there before is this one, which only asks the server to stop."""

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
