"""The API's access log: one INFO line per request once it is answered, with method, path (never the
query string), status and duration; off with SNIPER_ACCESS_LOG=0."""

from __future__ import annotations

import logging
import re

import pytest
from litestar.testing import AsyncTestClient

from entrypoints.config import Settings
from tests.http.conftest import api_settings, make_app
from tests.http.support import auth


async def requests_logged(caplog: pytest.LogCaptureFixture, settings: Settings) -> list[logging.LogRecord]:
    caplog.set_level(logging.INFO, logger="sniper.http.access")
    app, container = make_app(settings, run_background=False)
    try:
        async with AsyncTestClient(app=app) as client:
            assert (await client.get("/health?token=query-secret-1")).status_code == 200
            assert (await client.get("/api/v1/me", headers=auth("alice"))).status_code == 200
            assert (await client.get("/api/v1/no-such%0Ainjected?code=query-secret-2",
                                     headers=auth("alice"))).status_code == 404
            assert (await client.get("/api/v1/me")).status_code == 401
    finally:
        await container.close()
    return [r for r in caplog.records if r.name == "sniper.http.access"]


async def test_one_access_line_per_request_without_the_query(caplog: pytest.LogCaptureFixture) -> None:
    records = await requests_logged(caplog, api_settings())
    lines = [r.getMessage() for r in records]
    assert [re.sub(r"\d+\.\d ms$", "N ms", line) for line in lines] == [
        "GET /health 200 N ms",
        "GET /api/v1/me 200 N ms",
        "GET /api/v1/no-such%0Ainjected 404 N ms",  # as sent: an encoded newline cannot split the log line
        "GET /api/v1/me 401 N ms",
    ]
    assert all(r.levelno == logging.INFO for r in records)
    assert "query-secret" not in caplog.text
    first = records[0]
    assert (first.method, first.path, first.status) == ("GET", "/health", 200)  # type: ignore[attr-defined]
    assert isinstance(first.duration_ms, float) and first.duration_ms >= 0  # type: ignore[attr-defined]


async def test_sniper_access_log_0_turns_it_off(caplog: pytest.LogCaptureFixture) -> None:
    assert await requests_logged(caplog, api_settings(SNIPER_ACCESS_LOG="0")) == []
