"""An app on memory:// (or a given DATABASE_URL) with fake identity and credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from adapters.clock import SystemClock
from entrypoints.config import Settings, load_settings
from entrypoints.http import create_app
from entrypoints.http.providers import http_container
from tests.http.support import FakeSecurity


def api_settings(**env: str) -> Settings:
    """The settings of `env` (variable names) over the tests' own: memory://, a rate limit no test reaches
    unless it sets one, and MEXC at a closed port (whatever the API would ask it, a user's live balances,
    is refused: no test reaches MEXC)."""
    return load_settings({"DATABASE_URL": "memory://", "SNIPER_RATE_LIMIT_PER_MINUTE": "10000",
                          "MEXC_BASE_URL": "http://127.0.0.1:9"} | env)


def make_app(settings: Settings | None = None, **kwargs):  # noqa: ANN003, ANN201
    settings = settings or api_settings()
    container = http_container(settings, SystemClock(), FakeSecurity())
    return create_app(container, settings, **kwargs), container


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient]:
    app, container = make_app()
    try:
        async with AsyncTestClient(app=app) as test_client:
            yield test_client
    finally:
        await container.close()
