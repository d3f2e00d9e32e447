"""Fixtures for the MEXC stream tests: a fake MEXC WebSocket server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.mexc_ws import FakeMexcWebSocketServer


@pytest.fixture
async def server() -> AsyncIterator[FakeMexcWebSocketServer]:
    async with FakeMexcWebSocketServer() as fake:
        yield fake
