"""OrderLane: a lean HTTP/1.1 keep-alive client for the calls on the snipe's critical path
(POST /api/v3/order, and GET /api/v3/time, which `prepare` uses to sync the clock and which
so warms the lane's connection ahead of the launch).

Why: through httpx a request costs ~250-300 µs of Python before its bytes leave (URL and
header models, the pool's locks, h11), about twice what ccxt's aiohttp path costs. The lane
formats the request line and a fixed header block as one string, writes it to a warm asyncio
transport, and parses the reply with a small state machine: ~20-40 µs from call to wire.

What it speaks: http and https (TLS with SNI, the same verification as httpx), replies with
Content-Length, chunked, or until-close bodies, gzip/deflate Content-Encoding, interim 1xx
replies skipped, `Connection: close` and HTTP/1.0 honoured. One request at a time per
connection; idle connections are reused (up to `max_idle` kept), a new one is opened when
none is idle. No proxies (the REST client does not use any either: trust_env is off).

Errors, as the REST client needs them to judge whether an order may have gone out:
- LaneNotSent: no byte of the request was written (connection refused, DNS, TLS handshake,
  connect timeout);
- LaneNoReply: the request was written but no complete, readable reply came back (timeout,
  connection dropped, malformed head or body, undecodable encoding): it may have been processed.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Iterable

import httpx

_MAX_HEAD = 64 * 1024
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILERS, _UNTIL_CLOSE = range(6)


class LaneNotSent(Exception):
    """Nothing was written: the request cannot have reached the server."""


class LaneNoReply(Exception):
    """Written, but no complete readable reply: the outcome is unknown."""


class LaneReply:
    """The parts of a reply the REST client reads (named like httpx.Response's)."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers  # names in lower case
        self.content = content


class _Connection(asyncio.Protocol):
    """One keep-alive connection and the parser of the reply it is waiting for."""

    def __init__(self, lane: OrderLane) -> None:
        self.lane = lane
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self.waiter: asyncio.Future[LaneReply] | None = None
        self._buf = bytearray()
        self._state = _HEAD
        self._status = 0
        self._headers: dict[str, str] = {}
        self._remaining = 0
        self._chunks: list[bytes] = []

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.lane._open.add(self)

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for (an idle connection's "408" before a close): unusable.
            self.reusable = False
            self.abort()
            return
        self._buf += data
        try:
            reply = self._parse()
        except (ValueError, IndexError, zlib.error) as exc:
            self.reusable = False
            waiter.set_exception(LaneNoReply(f"unreadable reply ({exc})"))
            self.abort()
            return
        if reply is not None:
            self.waiter = None
            waiter.set_result(reply)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self.lane._open.discard(self)
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if self._state == _UNTIL_CLOSE:
            try:
                waiter.set_result(self._finish(bytes(self._buf)))
            except (ValueError, zlib.error) as error:
                waiter.set_exception(LaneNoReply(f"unreadable reply ({error})"))
            return
        waiter.set_exception(LaneNoReply("connection closed before a complete reply"))

    # --- use -------------------------------------------------------------------------------

    def usable(self) -> bool:
        return not self.closed and self.reusable and self.transport is not None and not self.transport.is_closing()

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def reset(self) -> None:
        self._state = _HEAD
        self._headers = {}
        self._chunks = []

    # --- parsing ---------------------------------------------------------------------------

    def _parse(self) -> LaneReply | None:
        buf = self._buf
        while True:
            state = self._state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > _MAX_HEAD:
                        raise ValueError("reply head too large")
                    return None
                lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
                del buf[:end + 4]
                version, _, rest = lines[0].partition(" ")
                if not version.startswith("HTTP/1."):
                    raise ValueError(f"not an HTTP/1.x status line: {lines[0][:40]!r}")
                status = int(rest[:3])
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if not sep:
                        raise ValueError("header line without a colon")
                    headers[name.strip().lower()] = value.strip()
                if 100 <= status < 200:
                    continue  # interim reply: the final one follows
                self._status, self._headers = status, headers
                if version != "HTTP/1.1" or "close" in headers.get("connection", "").lower():
                    self.reusable = False
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    self._state = _CHUNK_SIZE
                elif "content-length" in headers:
                    self._remaining = int(headers["content-length"])
                    if self._remaining < 0:
                        raise ValueError("negative Content-Length")
                    self._state = _LENGTH
                elif status in (204, 304):
                    return self._done(b"")
                else:
                    self.reusable = False
                    self._state = _UNTIL_CLOSE
            elif state == _LENGTH:
                size = self._remaining
                if len(buf) < size:
                    return None
                body = bytes(buf[:size])
                del buf[:size]
                return self._done(body)
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > _MAX_HEAD:
                        raise ValueError("chunk size line too long")
                    return None
                size = int(bytes(buf[:end]).split(b";", 1)[0].strip(), 16)
                del buf[:end + 2]
                if size < 0:
                    raise ValueError("negative chunk size")
                self._remaining = size
                self._state = _CHUNK_DATA if size else _TRAILERS
            elif state == _CHUNK_DATA:
                size = self._remaining
                if len(buf) < size + 2:
                    return None
                if buf[size:size + 2] != b"\r\n":
                    raise ValueError("chunk not followed by CRLF")
                self._chunks.append(bytes(buf[:size]))
                del buf[:size + 2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > _MAX_HEAD:
                        raise ValueError("trailers too long")
                    return None
                del buf[:end + 2]
                if end == 0:
                    return self._done(b"".join(self._chunks))
            else:  # _UNTIL_CLOSE: the body ends with the connection
                return None

    def _done(self, body: bytes) -> LaneReply:
        if self._buf:
            self.reusable = False  # bytes beyond the reply: we never pipeline, so something is off
        reply = self._finish(body)
        self.reset()
        return reply

    def _finish(self, body: bytes) -> LaneReply:
        encoding = self._headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send
        elif encoding not in ("", "identity"):
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")
        return LaneReply(self._status, self._headers, body)


def _expire(waiter: asyncio.Future[LaneReply], seconds: float) -> None:
    if not waiter.done():
        waiter.set_exception(LaneNoReply(f"no reply within {seconds:g} s"))


class OrderLane:
    def __init__(
        self,
        base: httpx.URL,
        headers: Iterable[tuple[str, str]],
        *,
        connect_timeout: float,
        max_idle: int = 4,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if base.scheme not in ("http", "https"):
            raise ValueError(f"the order lane speaks http and https, not {base.scheme!r}")
        self.host = base.host
        self.port = base.port or (443 if base.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = None
        if base.scheme == "https":
            self._ssl = ssl_context or httpx.create_ssl_context()
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        block = f"Host: {base.netloc.decode('ascii')}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        # Request line + headers, by method: only the ones that may carry a body say it is empty.
        self._heads = {
            "GET": f" HTTP/1.1\r\n{block}\r\n",
            "POST": f" HTTP/1.1\r\n{block}Content-Length: 0\r\n\r\n",
            "PUT": f" HTTP/1.1\r\n{block}Content-Length: 0\r\n\r\n",
            "DELETE": f" HTTP/1.1\r\n{block}Content-Length: 0\r\n\r\n",
        }
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    # The timeout is the wait for the reply after the write: a timer on the waiter, cheaper on the order
    # path than an asyncio.timeout scope, failing with LaneNoReply rather than a cancellation.
    async def request(self, method: str, target: str, timeout: float) -> LaneReply:  # noqa: ASYNC109
        """Send `method target` (an absolute path with its query, ASCII) and return the reply."""
        conn = None
        idle = self._idle
        while idle:
            candidate = idle.pop()
            if candidate.usable():
                conn = candidate
                break
        if conn is None:
            conn = await self._connect()
        payload = (method + " " + target + self._heads[method]).encode("ascii")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[LaneReply] = loop.create_future()
        conn.waiter = waiter
        if conn.transport is None:  # not reached: usable() and _connect() give a connected one
            raise RuntimeError("a lane connection without a transport")
        conn.transport.write(payload)
        timer = loop.call_later(timeout, _expire, waiter, timeout)
        try:
            reply = await waiter
        except BaseException:  # LaneNoReply, or cancelled: the connection is in an unknown state
            conn.waiter = None
            conn.abort()
            raise
        finally:
            timer.cancel()
        if conn.usable() and len(idle) < self.max_idle:
            idle.append(conn)
        elif not conn.closed and conn.transport is not None:
            conn.transport.close()
        return reply

    async def warm(self) -> None:
        """Open a connection now if none is idle (the TCP and TLS handshakes off the hot path)."""
        if not any(c.usable() for c in self._idle):
            self._idle.append(await self._connect())

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except (OSError, TimeoutError) as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise LaneNotSent(f"could not connect to {self.host}:{self.port} ({type(exc).__name__}: {exc})") from exc
        return conn

    def close(self) -> None:
        for conn in list(self._open):
            conn.abort()
        self._idle.clear()
        self._open.clear()
