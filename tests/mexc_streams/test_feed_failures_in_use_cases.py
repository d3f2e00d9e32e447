"""A malformed calendar or symbolsV2 never stops the listing use cases and never trades."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from adapters.clock import ManualClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryScheduler, InMemoryTraderDirectory
from adapters.mexc.listings import MexcListingFeed
from application.ports import TraderSettings
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.listings import DetectReadyStates, SyncCalendar

NOW = datetime(2026, 11, 25, 8, tzinfo=UTC)
LAUNCH_MS = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp() * 1000)
GOOD_CALENDAR = {
    "data": {"newCoins": [{"vcoinId": "c1", "vcoinName": "NEW", "vcoinNameFull": "New", "firstOpenTime": LAUNCH_MS}]}
}

BROKEN = [
    (200, b"<html>maintenance</html>"),
    (200, b'{"data": "nope"}'),
    (502, b"bad gateway"),
    (200, b"[1, 2, 3]"),
]


def feed_answering(calendar: tuple[int, bytes] | dict, symbols: tuple[int, bytes]) -> MexcListingFeed:
    import json

    def handler(request: httpx.Request) -> httpx.Response:
        if "new_coin_calendar" in request.url.path:
            if isinstance(calendar, dict):
                return httpx.Response(200, content=json.dumps(calendar).encode())
            return httpx.Response(calendar[0], content=calendar[1])
        return httpx.Response(symbols[0], content=symbols[1])

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return MexcListingFeed(client, "http://mexc.test", clock=ManualClock(NOW))


@pytest.mark.parametrize("reply", BROKEN)
async def test_a_broken_calendar_records_nothing_and_says_why(reply: tuple[int, bytes]) -> None:
    store, clock = InMemoryEventStore(), ManualClock(NOW)
    sync = SyncCalendar(store, feed_answering(reply, reply), InMemoryTraderDirectory([TraderSettings("alice")]),
                        clock, TradeBook())
    result = await sync()
    assert result.feed_error is not None and "calendar" in result.feed_error
    assert await store.read_all() == []


@pytest.mark.parametrize("reply", BROKEN)
async def test_broken_symbol_states_move_no_target_and_schedule_nothing(reply: tuple[int, bytes]) -> None:
    store, clock, book = InMemoryEventStore(), ManualClock(NOW), TradeBook()
    traders = InMemoryTraderDirectory([TraderSettings("alice")])
    feed = feed_answering(GOOD_CALENDAR, reply)
    assert (await SyncCalendar(store, feed, traders, clock, book)()).new_targets
    recorded = len(await store.read_all())
    scheduler = InMemoryScheduler()
    result = await DetectReadyStates(store, feed, traders, scheduler, clock, book, SnipeTiming())()
    assert result.feed_error is not None and "symbols" in result.feed_error
    assert len(await store.read_all()) == recorded
    assert scheduler.pending == []
