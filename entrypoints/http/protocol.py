"""uvicorn's HTTP/1.1 protocol on httptools (llhttp) with deadlines for slow clients and a cap on connections.

httptools parses a request in about a fifth of the CPU h11 takes (uvicorn's own protocol classes, a
micro-benchmark: 15 µs against 76 µs per keep-alive request), so the API runs on it.

uvicorn arms no timer while a request head or body is arriving: its keep-alive timer runs only
between requests and is cancelled by the first byte of the next one, so a client that opens a
connection and sends nothing, or half a head, or half a body, holds it forever. Here:

- head: a request head must be complete `header_timeout_seconds` after the connection opened or
  its previous answer was sent (an idle connection that sends nothing is closed by it too);
- body: a request body must be complete `body_timeout_seconds` after its head, whether the app
  reads it or not (it is not read when the answer needs no body, e.g. a 401);
- idle keep-alive connections close after `keep_alive_seconds` (uvicorn's own timer);
- past `max_connections` open connections a request answers 503 (uvicorn's `limit_concurrency`).

Where the client is comes from the parser's callbacks: a head is due until its headers are
complete, a body until the message is, and the next head once the last request in is answered
(pipelined requests queue behind it). A deadline missed closes the connection; an app still
reading the body then sees the client gone (entrypoints/http/bodies.py). Upgraded connections
(the live stream) leave these timers behind.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from entrypoints.config import Settings

# Where the client is in its request.
_HEAD_DUE, _BODY_DUE, _ANSWER_DUE, _UPGRADED = "head due", "body due", "answer due", "upgraded"


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, limits: Settings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = limits.sniper_http_keep_alive_seconds  # type: ignore[assignment]
        self.limit_concurrency = limits.sniper_http_max_connections
        self._head_seconds = limits.sniper_http_header_timeout_seconds
        self._body_seconds = limits.sniper_http_body_timeout_seconds
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._client = _HEAD_DUE

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head()

    def on_headers_complete(self) -> None:
        self._client = _BODY_DUE
        self._head_timer = _cancelled(self._head_timer)
        if self._body_timer is None:
            self._body_timer = self.loop.call_later(self._body_seconds, self._expire, _BODY_DUE)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_timer = _cancelled(self._body_timer)
        super().on_message_complete()
        self._client = _ANSWER_DUE
        self._next_head_if_answered()  # the app may have answered before the body was in (a 401)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._next_head_if_answered()

    def handle_websocket_upgrade(self) -> None:
        self._cancel_timers()
        self._client = _UPGRADED
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def _next_head_if_answered(self) -> None:
        """The next head is due once the last request in is whole and answered."""
        if self._client == _ANSWER_DUE and (self.cycle is None or self.cycle.response_complete):
            self._client = _HEAD_DUE
            self._arm_head()

    def _arm_head(self) -> None:
        """Armed once per head: bytes arriving do not extend it."""
        if self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self._head_seconds, self._expire, _HEAD_DUE)

    def _expire(self, waiting_for: str) -> None:
        if waiting_for == _HEAD_DUE:
            self._head_timer = None
        else:
            self._body_timer = None
        if self._client == waiting_for and not self.transport.is_closing():
            self.transport.close()

    def _cancel_timers(self) -> None:
        self._head_timer = _cancelled(self._head_timer)
        self._body_timer = _cancelled(self._body_timer)


def _cancelled(timer: asyncio.TimerHandle | None) -> asyncio.TimerHandle | None:
    """Cancels the timer if there is one; None, to keep in its place."""
    if timer is not None:
        timer.cancel()
    return None


def guarded_protocol(limits: Settings) -> type[GuardedHttpToolsProtocol]:
    """The `http` protocol class for uvicorn.Config: GuardedHttpToolsProtocol with these limits
    (a subclass, not a functools.partial: Config's `http` takes a protocol class)."""

    class WithLimits(GuardedHttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, limits=limits, **kwargs)

    return WithLimits
