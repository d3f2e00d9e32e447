"""Slow clients against a real uvicorn server with the API's protocol (entrypoints/http/protocol.py),
spoken to over raw sockets: a connection that sends nothing, half a head or half a body is closed
once its deadline passes, and past the connection cap a request answers 503.

The deadlines here are short (1 s) so the test is quick; what is asserted is that the server
closes the connection at all, within a wait far longer than the deadline (never how fast)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn

from application.errors import ConfigurationError
from entrypoints.config import load_settings
from entrypoints.http.protocol import guarded_protocol
from tests.http.conftest import api_settings, make_app
from tests.http.support import ALICE, token_for

DEADLINE = 1.0
GENEROUS = 20.0  # what "closed" waits for at most: a slow machine is never a failure


@contextlib.asynccontextmanager
async def running_server(**limits: float) -> AsyncIterator[int]:
    """The API under uvicorn with the deadlines at DEADLINE, or as `limits` (SNIPER_HTTP_* variables) say."""
    env = {"SNIPER_HTTP_HEADER_TIMEOUT_SECONDS": DEADLINE, "SNIPER_HTTP_BODY_TIMEOUT_SECONDS": DEADLINE,
           "SNIPER_HTTP_KEEP_ALIVE_SECONDS": DEADLINE, "SNIPER_RATE_LIMIT_PER_MINUTE": 0} | limits
    http = api_settings(**{name: str(value) for name, value in env.items()})
    app, container = make_app(http, run_background=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on",
                            http=guarded_protocol(http))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(400):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "the server did not start"
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, GENEROUS)
        await container.close()


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does). A close
    with bytes of ours still unread arrives as a reset: closed all the same."""
    received = b""
    async with asyncio.timeout(GENEROUS):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                received += chunk
    return received


async def request(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()


async def test_a_connection_that_sends_nothing_or_half_a_head_is_closed() -> None:
    async with running_server() as port:
        silent = await asyncio.open_connection("127.0.0.1", port)
        half = await asyncio.open_connection("127.0.0.1", port)
        half[1].write(b"GET /health HTTP/1.1\r\nHost: test\r\n")  # no blank line: the head never ends
        await half[1].drain()
        assert await closed_by_server(silent[0]) == b""
        assert await closed_by_server(half[0]) == b""
        for _, writer in (silent, half):
            writer.close()
        # A head that trickles in, one byte at a time, does not extend its deadline.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def trickle() -> None:
            with contextlib.suppress(OSError):
                for byte in b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 10_000:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.05)

        sender = asyncio.create_task(trickle())
        assert await closed_by_server(reader) == b""
        sender.cancel()
        writer.close()
        # Whole requests are unaffected, several on one keep-alive connection.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):
            writer.write(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            await reader.readuntil(b'"ok"}')
        writer.close()


async def test_half_a_body_is_closed_whether_the_app_reads_it_or_not(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_server() as port:
        body = b'{"reason": "a reason that never fully arrives"}'
        head = (f"POST /api/v1/emergency-stop HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token_for(ALICE)}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        read_by_app = await asyncio.open_connection("127.0.0.1", port)
        read_by_app[1].write(head + body[:10])
        # Without a token the app answers 401 at once and never reads the body; the rest still must arrive.
        unread = await asyncio.open_connection("127.0.0.1", port)
        unread[1].write(head.replace(f"Bearer {token_for(ALICE)}".encode(), b"Bearer nobody") + body[:10])
        assert await closed_by_server(read_by_app[0]) == b""
        answered = await closed_by_server(unread[0])
        assert answered.startswith(b"HTTP/1.1 401")
        for _, writer in (read_by_app, unread):
            writer.close()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], "no traceback, no error"



async def test_pipelined_requests_are_answered_then_the_next_head_is_due() -> None:
    """Requests sent in one write are answered in order; the next head is due from the last answer
    (the keep-alive timer is out of the way here: the head deadline is what closes the connection)."""
    async with running_server(SNIPER_HTTP_KEEP_ALIVE_SECONDS=GENEROUS * 3) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n" * 3)
        assert (await closed_by_server(reader)).count(b"HTTP/1.1 200") == 3
        writer.close()


async def test_answered_before_its_body_is_in_the_next_head_is_due_once_it_is() -> None:
    async with running_server(SNIPER_HTTP_KEEP_ALIVE_SECONDS=GENEROUS * 3,
                              SNIPER_HTTP_BODY_TIMEOUT_SECONDS=GENEROUS * 3) as port:
        body = b'{"reason": "a reason"}'
        head = (f"POST /api/v1/emergency-stop HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer nobody\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + body[:5])
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 401")
        writer.write(body[5:])  # the body completes after the answer; then nothing more comes
        await closed_by_server(reader)
        writer.close()

async def test_past_the_connection_cap_requests_answer_503() -> None:
    async with running_server(SNIPER_HTTP_MAX_CONNECTIONS=2, SNIPER_HTTP_HEADER_TIMEOUT_SECONDS=GENEROUS * 3) as port:
        idle = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.2)  # let the server take it
        assert (await request(port, b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")).startswith(b"HTTP/1.1 503")
        idle[1].close()
        await idle[1].wait_closed()
        answer = b""
        for _ in range(100):  # until the server has noticed the close
            answer = await request(port, b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
            if answer.startswith(b"HTTP/1.1 200"):
                break
            await asyncio.sleep(0.1)
        assert answer.startswith(b"HTTP/1.1 200")


def test_the_limits_are_settings_and_bad_values_are_refused_naming_the_variable() -> None:
    http = load_settings({"SNIPER_HTTP_HEADER_TIMEOUT_SECONDS": "2.5", "SNIPER_HTTP_BODY_TIMEOUT_SECONDS": "7",
                          "SNIPER_HTTP_KEEP_ALIVE_SECONDS": "3", "SNIPER_HTTP_MAX_CONNECTIONS": "64"})
    assert (http.sniper_http_header_timeout_seconds, http.sniper_http_body_timeout_seconds,
            http.sniper_http_keep_alive_seconds, http.sniper_http_max_connections) == (2.5, 7, 3, 64)
    for name, bad in (("SNIPER_HTTP_HEADER_TIMEOUT_SECONDS", "0"), ("SNIPER_HTTP_BODY_TIMEOUT_SECONDS", "forever"),
                      ("SNIPER_HTTP_KEEP_ALIVE_SECONDS", "-1"), ("SNIPER_HTTP_MAX_CONNECTIONS", "1.5")):
        with pytest.raises(ConfigurationError, match=name):
            load_settings({name: bad})
