"""An app on memory:// (or a given DATABASE_URL) with fake identity and credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from litestar.testing import AsyncTestClient

from adapters.clock import SystemClock
from entrypoints.config import HttpSettings, MexcSettings, Settings
from entrypoints.http import create_app
from entrypoints.http.providers import http_container
from tests.http.support import FakeSecurity

# No test reaches MEXC: whatever the API would ask it (a user's live balances) goes to a closed port.
NO_MEXC = MexcSettings(base_url="http://127.0.0.1:9")


def make_app(settings: Settings | None = None, http: HttpSettings | None = None, **kwargs):  # noqa: ANN003, ANN201
    settings = settings or Settings(database_url="memory://", mexc=NO_MEXC)
    http = http or replace(settings.http, rate_limit_per_minute=10_000)
    container = http_container(settings, SystemClock(), FakeSecurity())
    return create_app(container, http, **kwargs), container


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient]:
    app, container = make_app()
    try:
        async with AsyncTestClient(app=app) as test_client:
            yield test_client
    finally:
        await container.close()
