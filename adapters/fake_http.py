"""LocalHttpServer: the small HTTP/1.1 server that local fakes are built on, for tests and demos.

It listens on 127.0.0.1 only (a free port, chosen by the system) and speaks just enough HTTP for
httpx and the SDKs built on it: keep-alive, Content-Length bodies (no chunked uploads, no
pipelining). Each request is handed to `handle`, which a subclass writes; what it returns is sent
back as a JSON response. Stopping closes the listener and cancels the connections still open, so a
handler that sleeps or hangs (to provoke a timeout) does not outlive the server.

Used by the AI providers' fake (adapters/ai/fake/) and the alert and telemetry tests'
canned-reply server (tests/alerts/fake_http.py). The fake MEXC (adapters/mexc/fake/) has its
own faster parser, for the latency benchmark.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Self

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str  # the request target as sent, query string included
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class LocalHttpServer:
    """Base of a local fake HTTP server: subclasses answer in `handle`. Use `async with`, or
    `start()` and `stop()`; `port` and `url` are known once started."""

    port: int = 0
    _server: asyncio.Server | None = None

    async def handle(self, request: HttpRequest) -> tuple[int, bytes]:
        """(status, JSON body) for one request."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> Self:
        self._connections: set[asyncio.Task[None]] = set()
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:  # not reached: asyncio runs each connection's handler in a task
            raise RuntimeError("a connection handler outside a task")
        self._connections.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, payload = await self.handle(HttpRequest(method, target, headers, body))
                writer.write(
                    f"HTTP/1.1 {status} {_reason(status)}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(payload)}\r\nconnection: keep-alive\r\n\r\n".encode() + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
