"""A TCP relay in front of the test Redis that loses a connection exactly when a test says.

CLIENT KILL can only cut a connection that sits idle between commands. What a client's retry
policy is about is the other case: a command on the wire when its connection breaks. The relay
makes that case on demand, on the test's own event loop:
- `cut_after(marker)`: the next command containing `marker` reaches Redis and runs, then the
  connection is closed before its reply gets back (the reply is lost);
- `cut_before(marker)`: the connection is closed instead of passing that command on (it never ran);
- `stall()`: from then on Redis's replies are swallowed and connections left open (a Redis
  that stops answering, as behind a partition).
`sent(marker)` counts the commands containing `marker` that reached Redis; `connections` the
connections clients opened through the relay, `open` those not yet closed (by either side).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class RedisProxy:
    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self._redis_url = parts
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cut: tuple[bytes, bool] | None = None  # (marker, after)
        self._stalled = False
        self._sent: list[bytes] = []
        self.connections = 0
        self.open = 0

    async def start(self) -> RedisProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        """The test Redis's URL (its database, password and options) with the relay's address."""
        assert self._server is not None, "start() first"
        port = self._server.sockets[0].getsockname()[1]
        userinfo = self._redis_url.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
        return urlunsplit(self._redis_url._replace(netloc=netloc))

    def cut_after(self, marker: bytes) -> None:
        self._cut = (marker, True)

    def cut_before(self, marker: bytes) -> None:
        self._cut = (marker, False)

    def stall(self) -> None:
        self._stalled = True

    def sent(self, marker: bytes) -> int:
        return sum(chunk.count(marker) for chunk in self._sent)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> RedisProxy:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        server_r, server_w = await asyncio.open_connection(*self._upstream)
        self.open += 1
        self._writers |= {client_w, server_w}
        link = _Link()
        pumps = [asyncio.create_task(self._requests(link, client_r, server_w)),
                 asyncio.create_task(self._replies(link, server_r, client_w))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            for writer in (client_w, server_w):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                self._writers.discard(writer)
            self.open -= 1

    async def _requests(self, link: _Link, client_r: asyncio.StreamReader, server_w: asyncio.StreamWriter) -> None:
        while chunk := await client_r.read(65536):
            cut = self._cut
            if cut is not None and cut[0] in chunk:
                self._cut = None
                if cut[1]:  # it runs: its reply, once Redis sent it, is dropped with the connection
                    link.swallow = True
                    self._sent.append(chunk)
                    server_w.write(chunk)
                    await server_w.drain()
                    await asyncio.wait_for(link.replied.wait(), timeout=30)
                return  # the connection ends here, for both sides
            self._sent.append(chunk)
            server_w.write(chunk)
            await server_w.drain()

    async def _replies(self, link: _Link, server_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        while chunk := await server_r.read(65536):
            if link.swallow or self._stalled:
                link.replied.set()
                continue
            client_w.write(chunk)
            await client_w.drain()


class _Link:
    """One client connection through the relay."""

    def __init__(self) -> None:
        self.swallow = False
        self.replied = asyncio.Event()
