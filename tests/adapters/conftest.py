"""Fixtures shared by the adapter tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.sqlalchemy_store import make_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database, no schema yet: a SQLite file, and a fresh Postgres database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_database")
    eng = make_engine(url)
    try:
        yield eng
    finally:
        await eng.dispose()
