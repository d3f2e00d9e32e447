"""Builders shared by the MEXC adapter tests."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from adapters.mexc.limits import CircuitBreakers, RateLimiter
from adapters.mexc.rest import MexcRestClient
from domain.values import ClientOrderId, Symbol
from tests.fakes.mexc_http import FakeMexcServer, FakeSymbol

NEW = Symbol("NEW", "USDT")
KEY, SECRET = "test-key", "test-secret"


def new_symbol(**overrides: Any) -> FakeSymbol:
    """NEWUSDT at 0.3: prices to 4 places, quantities to 2, quote amounts to 2, min 1 USDT."""
    fields: dict[str, Any] = dict(symbol="NEWUSDT", base="NEW", price=Decimal("0.3"))
    fields.update(overrides)
    return FakeSymbol(**fields)


def client_for(server: FakeMexcServer, api_key: str = KEY, api_secret: str = SECRET, **options: Any) -> MexcRestClient:
    """A client of the fake: short timeouts, tiny backoff, a seeded jitter."""
    defaults: dict[str, Any] = dict(
        timeout=2.0, order_timeout=2.0, connect_timeout=1.0, backoff_base=0.005, backoff_cap=0.05,
        rng=random.Random(7), limiter=RateLimiter(max_wait=0.1), breakers=CircuitBreakers(failure_threshold=50),
    )
    defaults.update(options)
    return MexcRestClient(api_key, api_secret, server.base_url, **defaults)


def coid(n: int = 1) -> ClientOrderId:
    return ClientOrderId(f"test-order-{n}")


@contextmanager
def on_own_loop(fake: FakeMexcServer) -> Iterator[FakeMexcServer]:
    """The fake started on an event loop of its own, in a thread: for a test whose loop is blocked
    while the fake must answer (a command's own asyncio.run; litestar.testing's client, which runs
    the app on another thread)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
