"""Helpers for the MEXC stream tests: settings with short intervals (reconnects, rotations
and pings happen in milliseconds) and polling waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from adapters.mexc.streams import StreamSettings

T = TypeVar("T")


def fast_settings(**overrides: object) -> StreamSettings:
    values: dict[str, object] = {
        "ping_interval": timedelta(milliseconds=50),
        "stale_after": timedelta(seconds=2),
        "max_lifetime": timedelta(hours=1),
        "backoff_initial": timedelta(milliseconds=10),
        "backoff_max": timedelta(milliseconds=80),
        "stable_after": timedelta(milliseconds=200),
        "open_timeout": timedelta(seconds=2),
        "close_timeout": timedelta(milliseconds=500),
        "proxy": None,  # straight to 127.0.0.1 whatever the environment says
    }
    values.update(overrides)
    return StreamSettings(**values)  # type: ignore[arg-type]


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a client-side condition (every 10 ms) until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def next_item(queue: asyncio.Queue[T], timeout: float = 3.0) -> T:
    return await asyncio.wait_for(queue.get(), timeout)
