"""MexcListingFeed against httpx.MockTransport: both symbolsV2 shapes, defensive parsing,
classified failures. Nothing here leaves the process."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from adapters.clock import ManualClock
from adapters.mexc.listings import (
    CALENDAR_PATH,
    SYMBOLS_PATH,
    ListingFeedUnavailable,
    MexcListingFeed,
)
from application.errors import ApplicationError
from application.ports import CalendarEntry, SymbolStateReport
from domain.values import Symbol, SymbolState

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
LAUNCH_MS = NOW_MS + 2 * 3_600_000  # two hours ahead
LAUNCH = NOW + timedelta(hours=2)
WEB = "https://web.test"


def feed_for(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: object,
) -> tuple[MexcListingFeed, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(record))
    feed = MexcListingFeed(client, kwargs.pop("web_url", WEB), clock=ManualClock(NOW), **kwargs)  # type: ignore[arg-type]
    return feed, seen


def json_reply(payload: object, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=payload)


def calendar_payload(*coins: object) -> dict[str, object]:
    return {"code": 0, "msg": "success", "data": {"newCoins": list(coins)}}


def coin(
    coin_id: str = "c-1", ticker: str = "NEW", full: str = "New Coin", first_open: object = LAUNCH_MS, **extra: object,
) -> dict[str, object]:
    return {"vcoinId": coin_id, "vcoinName": ticker, "vcoinNameFull": full, "firstOpenTime": first_open, **extra}


def row(
    cd: str, vn: str, sts: object = 2, st: object = 2, tt: object = 4, ot: object = LAUNCH_MS, **extra: object,
) -> dict[str, object]:
    return {
        "cd": cd, "vn": vn, "fn": str(vn).title(), "sts": sts, "st": st, "tt": tt, "ot": ot, "ps": 6, "qs": 2, **extra
    }


# --- calendar ----------------------------------------------------------------------------------


class TestCalendar:
    async def test_good_entries_with_int_and_string_times(self) -> None:
        payload = calendar_payload(
            coin("c-1", "NEW", "New Coin", LAUNCH_MS, zone="new"),
            coin("c-2", "ABC", "Alphabet", str(LAUNCH_MS + 1000)),
        )
        feed, seen = feed_for(json_reply(payload))
        entries = await feed.calendar()
        assert entries == [
            CalendarEntry("c-1", "NEW", "New Coin", Symbol("NEW", "USDT"), LAUNCH),
            CalendarEntry("c-2", "ABC", "Alphabet", Symbol("ABC", "USDT"), LAUNCH + timedelta(seconds=1)),
        ]
        assert entries[0].launch_at.tzinfo is not None
        assert feed.dropped["calendar"] == 0
        [request] = seen
        assert request.method == "GET"
        assert request.url.host == "web.test"
        assert request.url.path == CALENDAR_PATH
        assert request.url.params["timestamp"] == str(NOW_MS)

    async def test_millisecond_precision_is_kept(self) -> None:
        feed, _ = feed_for(json_reply(calendar_payload(coin(first_open=LAUNCH_MS + 7))))
        [entry] = await feed.calendar()
        assert entry.launch_at == LAUNCH + timedelta(milliseconds=7)

    async def test_full_name_falls_back_to_the_ticker(self) -> None:
        feed, _ = feed_for(
            json_reply(calendar_payload({"vcoinId": 99, "vcoinName": " xyz ", "firstOpenTime": LAUNCH_MS}))
        )
        [entry] = await feed.calendar()
        assert (entry.coin_id, entry.ticker, entry.full_name, entry.symbol.code) == ("99", "XYZ", "XYZ", "XYZUSDT")

    async def test_bad_entries_are_dropped_counted_and_logged_good_ones_survive(
        self, caplog: pytest.LogCaptureFixture,
    ) -> None:
        bad = [
            "not an object",
            None,
            {"vcoinName": "NOID", "firstOpenTime": LAUNCH_MS},  # no coin id
            coin("c-3", ticker=None),  # type: ignore[arg-type]
            coin("c-4", ticker=123),  # type: ignore[arg-type]
            coin("c-5", ticker="NEW-COIN"),  # not an asset code
            coin("c-6", ticker="币安"),
            coin("c-7", ticker="A" * 17),
            coin("c-8", first_open="soon"),
            coin("c-9", first_open=-5),
            coin("c-10", first_open=NOW_MS + 10 * 365 * 86_400_000),  # ten years ahead: absurd
            coin("c-11", first_open=LAUNCH_MS // 1000),  # seconds, not ms: 1970
            coin("c-12", first_open=True),
            coin("c-13", first_open=None),
            coin("c-14", first_open=[LAUNCH_MS]),
            coin("c-15", first_open="1.5e12"),
            coin(coin_id=["x"]),  # type: ignore[arg-type]
            coin(coin_id=""),
        ]
        good = [coin("g-1", "GOOD"), coin("g-2", "FINE", first_open=str(LAUNCH_MS))]
        payload = calendar_payload(good[0], *bad, good[1], coin("g-1", "GOOD"))  # the last repeats g-1
        feed, _ = feed_for(json_reply(payload))
        with caplog.at_level(logging.WARNING, logger="adapters.mexc.listings"):
            entries = await feed.calendar()
        assert [e.coin_id for e in entries] == ["g-1", "g-2"]
        assert feed.dropped["calendar"] == len(bad) + 1
        reasons = feed.drop_reasons
        assert reasons["calendar:not_object"] == 2
        assert reasons["calendar:missing_vcoinId"] == 1
        assert reasons["calendar:bad_vcoinName"] == 4
        assert reasons["calendar:missing_vcoinName"] == 1
        assert reasons["calendar:bad_firstOpenTime"] == 7
        assert reasons["calendar:missing_firstOpenTime"] == 1
        assert reasons["calendar:bad_vcoinId"] == 2
        assert reasons["calendar:duplicate"] == 1
        assert sum(reasons.values()) == feed.dropped["calendar"]
        dropped_logs = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert len(dropped_logs) == feed.dropped["calendar"]
        assert any("newCoins[9]" in m and "bad_firstOpenTime" in m and "soon" in m for m in dropped_logs)

    async def test_counters_accumulate_over_polls(self) -> None:
        feed, _ = feed_for(json_reply(calendar_payload(coin("a"), {"vcoinId": "b"})))
        await feed.calendar()
        await feed.calendar()
        assert feed.dropped["calendar"] == 2

    async def test_empty_calendar_is_fine(self) -> None:
        feed, _ = feed_for(json_reply(calendar_payload()))
        assert await feed.calendar() == []


# --- symbol states ----------------------------------------------------------------------------


class TestSymbolStates:
    async def test_object_keyed_by_quote_currency(self) -> None:
        payload = {
            "code": 0,
            "data": {
                "symbols": {
                    "USDT": [row("c-1", "NEW"), row("c-2", "OLD", 1, 1, 0, ot=None)],
                    "USDC": [row("c-1", "NEW", 1, 1, 1)],  # another quote: not ours
                }
            },
        }
        feed, seen = feed_for(json_reply(payload))
        reports = await feed.symbol_states()
        assert reports == [
            SymbolStateReport("c-1", "NEW", SymbolState(2, 2, 4, LAUNCH_MS)),
            SymbolStateReport("c-2", "OLD", SymbolState(1, 1, 0, None)),
        ]
        assert seen[0].url.path == SYMBOLS_PATH
        assert feed.dropped["symbols"] == 0

    async def test_flat_list(self) -> None:
        payload = {
            "code": 0, "data": {"symbols": [row("c-1", "NEW"), row("c-3", "THREE", "2", "1", "0", ot=str(LAUNCH_MS))]}
        }
        feed, _ = feed_for(json_reply(payload))
        reports = await feed.symbol_states()
        assert reports == [
            SymbolStateReport("c-1", "NEW", SymbolState(2, 2, 4, LAUNCH_MS)),
            SymbolStateReport("c-3", "THREE", SymbolState(2, 1, 0, LAUNCH_MS)),
        ]

    async def test_other_quote_groups_can_be_followed(self) -> None:
        payload = {"data": {"symbols": {"USDC": [row("c-9", "NINE")]}}}
        feed, _ = feed_for(json_reply(payload), quote_assets=frozenset({"USDT", "USDC"}))
        assert [r.coin_id for r in await feed.symbol_states()] == ["c-9"]

    async def test_open_time_zero_or_empty_means_absent(self) -> None:
        payload = {"data": {"symbols": [row("a", "AA", ot=0), row("b", "BB", ot=""), row("c", "CC", ot="0")]}}
        feed, _ = feed_for(json_reply(payload))
        assert [r.state.open_time_ms for r in await feed.symbol_states()] == [None, None, None]

    @pytest.mark.parametrize("shape", ["object", "list"])
    async def test_bad_entries_dropped_and_counted_good_ones_survive(
        self, shape: str, caplog: pytest.LogCaptureFixture,
    ) -> None:
        bad = [
            42,
            {"vn": "NOCD", "sts": 2, "st": 2, "tt": 4},
            row("b-1", "OK1", sts=None),
            row("b-2", "OK2", st="two"),
            row("b-3", "OK3", tt=-1),
            row("b-4", "OK4", sts=1000),
            row("b-5", "OK5", tt=4.5),
            row("b-6", "bad ticker!"),
            row("b-7", 7),  # type: ignore[arg-type]
            row("b-8", "OK8", ot=-1),
            row("b-9", "OK9", ot="yesterday"),
            row("b-10", "OK10", st=False),
        ]
        good = [row("g-1", "GOOD"), row("g-2", "ALSO", 2, 1, 0)]
        entries = [good[0], *bad, good[1], row("g-1", "GOOD")]
        symbols: object = {"USDT": entries} if shape == "object" else entries
        feed, _ = feed_for(json_reply({"code": 0, "data": {"symbols": symbols}}))
        with caplog.at_level(logging.WARNING, logger="adapters.mexc.listings"):
            reports = await feed.symbol_states()
        assert [r.coin_id for r in reports] == ["g-1", "g-2"]
        assert feed.dropped["symbols"] == len(bad) + 1
        assert feed.drop_reasons["symbols:duplicate"] == 1
        assert feed.drop_reasons["symbols:missing_cd"] == 1
        assert feed.drop_reasons["symbols:bad_ot"] == 2
        assert sum(feed.drop_reasons.values()) == feed.dropped["symbols"]
        assert sum("dropped" in r.getMessage() for r in caplog.records) == feed.dropped["symbols"]

    async def test_a_group_that_is_not_a_list_is_dropped_not_fatal(self) -> None:
        payload = {"data": {"symbols": {"USDT": "oops"}}}
        feed, _ = feed_for(json_reply(payload))
        assert await feed.symbol_states() == []
        assert feed.drop_reasons["symbols:group_not_list"] == 1


# --- whole-payload failures --------------------------------------------------------------------


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


UNREADABLE: dict[str, Callable[[httpx.Request], httpx.Response]] = {
    "html": lambda r: httpx.Response(200, text="<html>maintenance</html>", headers={"content-type": "text/html"}),
    "empty body": lambda r: httpx.Response(200, content=b""),
    "binary": lambda r: httpx.Response(200, content=b"\xff\xfe\x00"),
    "json list": json_reply([1, 2]),
    "json string": json_reply("ok"),
    "no data": json_reply({"code": 0}),
    "data null": json_reply({"code": 0, "data": None}),
    "data list": json_reply({"code": 0, "data": []}),
    "error code": json_reply({"code": 500, "msg": "system busy", "data": {"newCoins": [], "symbols": []}}),
    "http 500": json_reply({"code": 0}, status=500),
    "http 403": lambda r: httpx.Response(403, text="firewall"),
    "http 429": lambda r: httpx.Response(429, headers={"Retry-After": "2"}),
    "connect error": raising(httpx.ConnectError("connection refused")),
    "timeout": raising(httpx.ReadTimeout("read timed out")),
}


class TestUnreadablePayloads:
    @pytest.mark.parametrize("case", sorted(UNREADABLE))
    async def test_calendar_raises_the_classified_error(self, case: str) -> None:
        feed, _ = feed_for(UNREADABLE[case])
        with pytest.raises(ListingFeedUnavailable) as raised:
            await feed.calendar()
        assert raised.value.feed == "calendar"
        assert isinstance(raised.value, ApplicationError)
        assert feed.failures["calendar"] == 1

    @pytest.mark.parametrize("case", sorted(UNREADABLE))
    async def test_symbol_states_raise_the_classified_error(self, case: str) -> None:
        feed, _ = feed_for(UNREADABLE[case])
        with pytest.raises(ListingFeedUnavailable) as raised:
            await feed.symbol_states()
        assert raised.value.feed == "symbols"

    @pytest.mark.parametrize("coins", [None, {"a": 1}, "x", 5])
    async def test_new_coins_not_a_list(self, coins: object) -> None:
        feed, _ = feed_for(json_reply({"code": 0, "data": {"newCoins": coins}}))
        with pytest.raises(ListingFeedUnavailable, match="newCoins"):
            await feed.calendar()

    async def test_new_coins_missing(self) -> None:
        feed, _ = feed_for(json_reply({"code": 0, "data": {"coins": []}}))
        with pytest.raises(ListingFeedUnavailable, match="newCoins is missing"):
            await feed.calendar()

    @pytest.mark.parametrize("symbols", [None, "x", 5])
    async def test_symbols_neither_object_nor_list(self, symbols: object) -> None:
        feed, _ = feed_for(json_reply({"code": 0, "data": {"symbols": symbols}}))
        with pytest.raises(ListingFeedUnavailable, match="symbols"):
            await feed.symbol_states()

    async def test_the_feed_works_again_after_a_failure(self) -> None:
        replies = iter([httpx.Response(502, text="bad gateway"), httpx.Response(200, json=calendar_payload(coin()))])
        feed, _ = feed_for(lambda r: next(replies))
        with pytest.raises(ListingFeedUnavailable):
            await feed.calendar()
        assert [e.coin_id for e in await feed.calendar()] == ["c-1"]


# --- configuration -------------------------------------------------------------------------------


class TestConfiguration:
    async def test_the_environment_is_not_read_here(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """MEXC_WEB_URL is read once, by entrypoints/config.py, and passed in."""
        monkeypatch.setenv("MEXC_WEB_URL", "http://ignored.test")
        feed = MexcListingFeed(httpx.AsyncClient(transport=httpx.MockTransport(json_reply({}))))
        assert feed.web_url == "https://www.mexc.com"

    async def test_base_url_passed_in(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=calendar_payload())

        feed = MexcListingFeed(httpx.AsyncClient(transport=httpx.MockTransport(handler)), "http://127.0.0.1:9/",
                               clock=ManualClock(NOW))
        assert feed.web_url == "http://127.0.0.1:9"
        await feed.calendar()
        assert str(seen[0].url).startswith("http://127.0.0.1:9/api/operation/new_coin_calendar?timestamp=")

    def test_default_base_url(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("MEXC_WEB_URL", raising=False)
        feed = MexcListingFeed(httpx.AsyncClient(transport=httpx.MockTransport(json_reply({}))))
        assert feed.web_url == "https://www.mexc.com"

    async def test_explicit_url_wins_and_trailing_slash_is_trimmed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MEXC_WEB_URL", "http://ignored.test")
        feed, seen = feed_for(json_reply({"data": {"symbols": []}}), web_url="https://mirror.test/")
        await feed.symbol_states()
        assert str(seen[0].url) == "https://mirror.test" + SYMBOLS_PATH


def test_payload_fixture_is_plain_json() -> None:
    # Guard for the helpers above: what the mock serves is what MEXC would send as text.
    assert json.loads(json.dumps(calendar_payload(coin())))["data"]["newCoins"][0]["vcoinId"] == "c-1"
