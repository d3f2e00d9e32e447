"""LocalHttpServer: the base of the local fake HTTP services of the tests, served by uvicorn.

A subclass answers each request in `handle` with a status and a JSON body; uvicorn (the API's own
server, a project dependency) speaks the HTTP: keep-alive, Content-Length and chunked bodies. It
listens on 127.0.0.1 only, on a free port chosen by the system. Stopping closes the listener, drops
the connections still open and cancels the handlers still running, so a handler that sleeps or
hangs (to provoke a timeout) does not outlive the server.

Used by the AI providers' fake (tests/fakes/ai.py), the Telegram Bot API fake (tests/fakes/telegram.py)
and the canned-reply server (tests/alerts/fake_http.py). The fake MEXC (tests/fakes/mexc_http.py)
keeps its own asyncio protocol: the latency benchmarks stamp each order when its bytes arrive
(data_received), and its faults act on the connection itself (closed after accepting, a corrupt body).
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from typing import Any, Self

import uvicorn

HOST = "127.0.0.1"
_JSON = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str  # the request target as sent, query string included
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LocalHttpServer:
    """Base of a local fake HTTP server: subclasses answer in `handle`. Use `async with`, or
    `start()` and `stop()`; `port` and `url` are known once started."""

    port: int = 0
    _uvicorn: uvicorn.Server | None = None

    async def handle(self, request: HttpRequest) -> tuple[int, bytes]:
        """(status, JSON body) for one request."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> Self:
        self._handlers: set[asyncio.Task[Any]] = set()
        self._stopping = False
        # No lifespan, no WebSocket; uvicorn's loggers left as they are (log_config=None), no access log
        # (a Telegram path carries the bot token). An idle keep-alive connection stays open (as the client
        # pool expects of a service), so no request races the server closing it.
        config = uvicorn.Config(
            self._asgi, interface="asgi3", lifespan="off", ws="none", log_config=None, log_level=None,
            access_log=False, proxy_headers=False, server_header=False, date_header=False, timeout_keep_alive=3600,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((HOST, 0))
        # Given a socket, uvicorn's startup logs no "running on" line and installs no signal handler.
        await server.startup(sockets=[listener])
        self.port = listener.getsockname()[1]
        self._uvicorn = server
        return self

    async def stop(self) -> None:
        server, self._uvicorn = self._uvicorn, None
        if server is None:
            return
        self._stopping = True
        for listener in server.servers:
            listener.close()
        for connection in list(server.server_state.connections):
            connection.transport.abort()
        await asyncio.sleep(0)  # the connections' connection_lost: uvicorn sends nothing more on them
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        for listener in server.servers:
            await listener.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        task = asyncio.current_task()
        if task is None:  # not reached: uvicorn runs each request in a task
            raise RuntimeError("a request outside a task")
        self._handlers.add(task)
        try:
            body = bytearray()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            target = scope["raw_path"].decode("latin-1")
            if scope["query_string"]:
                target += "?" + scope["query_string"].decode("latin-1")
            headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
            status, payload = await self.handle(HttpRequest(scope["method"], target, headers, bytes(body)))
            await send({"type": "http.response.start", "status": status,
                        "headers": [_JSON, (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Stopping: the connection is already dropped, the client gets no reply.
        finally:
            self._handlers.discard(task)
