"""Server-time offset: measured from several /time samples (lowest round trip wins),
used for every signed timestamp, re-synced on 700003 with one retry, ClockSkew after that."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.mexc.rest import MexcRestClient
from application.errors import ClockSkew, ConfigurationError
from tests.fakes.mexc_http import ACCOUNT, ORDER, TIME, FakeMexcServer, Fault, FaultKind
from tests.mexc.support import client_for


async def test_offset_follows_the_server_clock(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.skew_ms = 5_000
    sync = await client.sync_clock(samples=5)
    assert abs(sync.offset_ms - 5_000) <= 50
    assert client.clock_offset_ms == sync.offset_ms
    assert sync.samples == 5 and server.hits[TIME] == 5
    assert abs(client.now_ms() - server.now_ms()) <= 50
    # Signed calls now carry server time: accepted even though local time is 5 s behind.
    assert "USDT" in await client.balances()
    assert server.statuses(ACCOUNT) == [200]


async def test_the_lowest_round_trip_sample_is_kept(server: FakeMexcServer, client: MexcRestClient) -> None:
    # Two slow samples: the server stamps them 150 ms late, so their midpoint estimate is off
    # by ~75 ms. The fast ones are right.
    server.inject(Fault(FaultKind.DELAY, TIME, times=2, delay=0.15))
    sync = await client.sync_clock(samples=4)
    assert abs(sync.offset_ms) <= 30
    assert sync.rtt_ns < 100_000_000


async def test_700003_resyncs_the_clock_and_retries_once(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.skew_ms = -20_000  # the exchange is 20 s behind us: our timestamps look 20 s early
    balances = await client.balances()
    assert balances["USDT"].free == Decimal("1000")
    assert server.statuses(ACCOUNT) == [400, 200]
    assert server.hits[TIME] >= 1
    assert abs(client.clock_offset_ms + 20_000) <= 50


async def test_an_order_refused_for_its_timestamp_is_placed_once_after_the_resync(
    server: FakeMexcServer, client: MexcRestClient
) -> None:
    server.skew_ms = 30_000  # ahead: our timestamps are older than recvWindow
    order = await client.new_order("NEWUSDT", "BUY", "MARKET", quote_order_qty=Decimal("3"), client_order_id="skewed-1")
    assert order.order_id
    assert [a.outcome for a in server.order_arrivals] == ["700003", "accepted"]
    assert len(server.accepted_orders()) == 1


async def test_a_second_700003_is_clock_skew(server: FakeMexcServer, client: MexcRestClient) -> None:
    server.inject(Fault(FaultKind.ERROR_CODE, ACCOUNT, times=5, code=700003,
                        message="Timestamp for this request is outside of the recvWindow."))
    with pytest.raises(ClockSkew) as info:
        await client.balances()
    assert info.value.code == "700003"
    assert server.hits[ACCOUNT] == 2  # the call and its one retry
    assert server.hits[TIME] >= 1  # a resync in between


async def test_a_timestamp_more_than_1s_ahead_is_refused_then_fixed_by_the_resync(server: FakeMexcServer) -> None:
    # Our wall clock runs 1.5 s fast: MEXC accepts a timestamp only below serverTime + 1000.
    async with client_for(server, wall_clock_ns=lambda: (server.now_ms() + 1_500) * 1_000_000) as c:
        assert "USDT" in await c.balances()
        assert abs(c.clock_offset_ms + 1_500) <= 50
    assert server.statuses(ACCOUNT) == [400, 200]


def test_recv_window_is_checked(server: FakeMexcServer) -> None:
    with pytest.raises(ConfigurationError):
        MexcRestClient("k", "s", server.base_url, recv_window_ms=60_001)
    with pytest.raises(ConfigurationError):
        MexcRestClient("k", "s", server.base_url, recv_window_ms=0)


async def test_a_client_with_keys_and_the_widest_window_works(server: FakeMexcServer) -> None:
    async with MexcRestClient("test-key", "test-secret", server.base_url, recv_window_ms=60_000) as c:
        assert c.recv_window_ms == 60_000
        assert c.base_url == server.base_url
        await c.sync_clock(samples=2)
        assert "USDT" in await c.balances()
    assert ORDER not in server.hits
