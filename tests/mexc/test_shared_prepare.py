"""Many traders in one process (issue 14): their exchanges share one clock sync and one
exchangeInfo load per pair (MexcShare), so 50 traders stay inside MEXC's budget; each still sends
one /time call on its own order lane (warming its connection) and signs with its own keys."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal

from adapters.mexc.exchange import MexcExchange, MexcShare
from tests.fakes.mexc_http import EXCHANGE_INFO, TIME, FakeMexcServer, FakeSymbol
from tests.mexc.support import NEW, client_for, coid, new_symbol

TRADERS = 8
SAMPLES = 3


async def prepare_all(server: FakeMexcServer, share: MexcShare | None) -> list[MexcExchange]:
    clients = [client_for(server) for _ in range(TRADERS)]
    exchanges = [MexcExchange(c, clock_samples=SAMPLES, share=share) for c in clients]
    await asyncio.gather(*(e.prepare(NEW) for e in exchanges))
    return exchanges


async def close(exchanges: list[MexcExchange]) -> None:
    for exchange in exchanges:
        await exchange.client.aclose()


async def test_traders_preparing_together_share_one_sync_and_one_rules_load(server: FakeMexcServer) -> None:
    exchanges = await prepare_all(server, MexcShare())
    try:
        assert server.hits[EXCHANGE_INFO] == 1
        assert server.hits[TIME] == SAMPLES + TRADERS - 1  # one sync, and one warming call per other trader
        offsets = {e.client.clock_offset_ms for e in exchanges}
        assert len(offsets) == 1
        # Every trader knows the pair's rules and its orders go through.
        for n, exchange in enumerate(exchanges):
            assert exchange.cached_info(NEW) is not None
            await exchange.place_market_buy(NEW, Decimal("10"), coid(n))
        assert len(server.accepted_orders()) == TRADERS
    finally:
        await close(exchanges)


async def test_a_pair_not_listed_yet_is_asked_for_once() -> None:
    async with FakeMexcServer(symbols=[FakeSymbol(symbol="NEWUSDT", base="NEW", listed=False)]) as unlisted:
        exchanges = await prepare_all(unlisted, MexcShare())
        try:
            assert unlisted.hits[EXCHANGE_INFO] == 1
            assert all(e.cached_info(NEW) is None for e in exchanges)
        finally:
            await close(exchanges)


async def test_without_a_share_each_trader_syncs_and_loads_for_itself() -> None:
    async with FakeMexcServer(symbols=[new_symbol()]) as server:
        exchanges = await prepare_all(server, None)
        try:
            assert server.hits[EXCHANGE_INFO] == TRADERS
            assert server.hits[TIME] == SAMPLES * TRADERS
        finally:
            await close(exchanges)


async def test_a_failed_shared_call_is_made_again_by_the_next_trader(server: FakeMexcServer) -> None:
    share = MexcShare()
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        raise RuntimeError("no answer")

    async def answering() -> int:
        nonlocal calls
        calls += 1
        return 7

    for call in (failing, answering, answering):
        with contextlib.suppress(RuntimeError):
            await share.get(("k",), call)
    assert calls == 2 and await share.get(("k",), answering) == 7
