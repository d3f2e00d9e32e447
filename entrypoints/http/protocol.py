"""uvicorn's HTTP/1.1 protocol (h11) with deadlines for slow clients and a cap on connections.

uvicorn arms no timer while a request head or body is arriving: its keep-alive timer runs only
between requests and is cancelled by the first byte of the next one, so a client that opens a
connection and sends nothing, or half a head, or half a body, holds it forever. Here:

- head: a request head must be complete `header_timeout_seconds` after the connection opened or
  its previous answer was sent (an idle connection that sends nothing is closed by it too);
- body: a request body must be complete `body_timeout_seconds` after its head, whether the app
  reads it or not (it is not read when the answer needs no body, e.g. a 401);
- idle keep-alive connections close after `keep_alive_seconds` (uvicorn's own timer);
- past `max_connections` open connections a request answers 503 (uvicorn's `limit_concurrency`).

A deadline missed closes the connection; an app still reading the body then sees the client gone
(entrypoints/http/bodies.py). Upgraded connections (the live stream) leave these timers behind.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from entrypoints.config import HttpSettings


class GuardedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, limits: HttpSettings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = limits.keep_alive_seconds  # type: ignore[assignment]
        self.limit_concurrency = limits.max_connections
        self._head_seconds = limits.header_timeout_seconds
        self._body_seconds = limits.body_timeout_seconds
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._cancel_timers()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arms or cancels the deadlines for where the client is in its request."""
        if self.transport.is_closing():
            self._cancel_timers()
            return
        state = self.conn.their_state
        if state is h11.IDLE:  # the next head is due (armed once: bytes arriving do not extend it)
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self._head_seconds, self._expire, h11.IDLE)
            return
        self._head_timer = _cancelled(self._head_timer)
        if state is h11.SEND_BODY:
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(self._body_seconds, self._expire, h11.SEND_BODY)
        else:
            self._body_timer = _cancelled(self._body_timer)

    def _expire(self, waiting_in: type[h11.IDLE] | type[h11.SEND_BODY]) -> None:
        if waiting_in is h11.IDLE:
            self._head_timer = None
        else:
            self._body_timer = None
        if self.conn.their_state is waiting_in and not self.transport.is_closing():
            self.transport.close()

    def _cancel_timers(self) -> None:
        self._head_timer = _cancelled(self._head_timer)
        self._body_timer = _cancelled(self._body_timer)


def _cancelled(timer: asyncio.TimerHandle | None) -> None:
    if timer is not None:
        timer.cancel()


def guarded_protocol(limits: HttpSettings) -> Callable[..., GuardedH11Protocol]:
    """The `http` protocol factory for uvicorn.Config."""
    return functools.partial(GuardedH11Protocol, limits=limits)
