"""An empty SQL database for one test: a SQLite file, or a schema of its own on the test Postgres."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine


@asynccontextmanager
async def empty_database(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, name: str,
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The URL of an empty database and the options of the engines to open on it (make_engine).
    `kind` "sqlite": a file in `tmp_path`. "postgres": a fresh schema (`<name>_<random>`) on the
    test Postgres, dropped afterwards: the tables of one test never meet another's. Dispose of
    the engines before this ends."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'history.db'}", {}
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"{name}_{uuid.uuid4().hex}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        yield url, {"connect_args": {"server_settings": {"search_path": schema}}}
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.dispose()
