"""A tiny HTTP/1.1 server on 127.0.0.1 for adapter tests: records every request, answers
with a status and body chosen per test, optionally after a delay (to provoke timeouts).
The HTTP itself is tests/fakes/http_server.py's (uvicorn), shared with the AI providers' fake."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tests.fakes.http_server import HttpRequest, LocalHttpServer

Captured = HttpRequest  # method, path (as sent), headers (lower-case names), body bytes, json()


@dataclass
class FakeHttpServer(LocalHttpServer):
    status: int = 200
    reply: bytes = b'{"ok":true}'
    delay: float = 0.0
    requests: list[Captured] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: HttpRequest) -> tuple[int, bytes]:
        self.requests.append(request)
        self.arrived.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.status, self.reply
