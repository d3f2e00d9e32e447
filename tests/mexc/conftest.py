"""Fixtures for the MEXC adapter tests: a fake exchange on 127.0.0.1 and clients of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.mexc.rest import MexcRestClient
from tests.fakes.mexc_http import FakeMexcServer
from tests.mexc.support import client_for, new_symbol


@pytest.fixture
async def server() -> AsyncIterator[FakeMexcServer]:
    async with FakeMexcServer(symbols=[new_symbol()]) as fake:
        yield fake


@pytest.fixture
async def client(server: FakeMexcServer) -> AsyncIterator[MexcRestClient]:
    async with client_for(server) as c:
        yield c
