"""Replay scenarios: the bundled demo loads; every malformed input is one line naming its place."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import adapters.paper
from adapters.paper.scenario import load_scenario, open_time, parse_scenario, symbol_of
from application.errors import ConfigurationError
from domain.values import Symbol
from tests.adapters.paper_support import build_scenario, listing, put, scenario_dict, trader

DEMO = Path(adapters.paper.__file__).parent / "scenarios" / "demo.json"


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _refusal(raw: bytes, source: str = "test.json") -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_scenario(raw, source)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    return message


class TestBundledDemo:
    def test_demo_json_parses_whole(self) -> None:
        scenario = parse_scenario(DEMO.read_bytes(), str(DEMO))
        assert scenario.name == "demo"
        assert [s.coin_id for s in scenario.listings] == ["pump-1001", "dump-1002", "moon-1003", "ghost-1004"]
        assert scenario.taker_fee == Decimal("0.0005")
        assert all(s.launch_at.tzinfo is not None for s in scenario.listings)

    def test_demo_traders_become_settings(self) -> None:
        settings = {s.user_id: s for s in load_scenario(DEMO).trader_settings()}
        assert set(settings) == {"alice", "bob"}
        assert settings["alice"].quote_amount == Decimal("50")
        assert settings["alice"].risk.max_concurrent_positions == 2
        assert settings["alice"].risk.max_daily_loss == Decimal("40")
        assert settings["bob"].only_tickers == frozenset({"PUMP"})
        assert settings["bob"].wants("PUMP", "USDT") and not settings["bob"].wants("DUMP", "USDT")

    def test_open_time_adds_the_open_delay(self) -> None:
        pump = load_scenario(DEMO).listings[0]
        assert open_time(pump) == datetime(2026, 11, 25, 10, 0, 0, 45_000, tzinfo=UTC)
        assert symbol_of(pump) == Symbol("PUMP", "USDT")

    def test_listing_lookup_by_symbol(self) -> None:
        scenario = load_scenario(DEMO)
        found = scenario.listing(Symbol("DUMP", "USDT"))
        assert found is not None and found.coin_id == "dump-1002"
        assert scenario.listing(Symbol("NOPE", "USDT")) is None


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("unknown field", put(["listings", 0, "colour"], "red"), "listings[0]:", "colour"),
    ("unknown top-level field", put(["speed"], 3), "top level:", "speed"),
    ("coin id is an int", put(["listings", 0, "coin_id"], 1001), "listings[0].coin_id:", "Expected `str`, got `int`"),
    (
        "negative price", put(["listings", 0, "prices", 1, "price"], "-0.6"), "listings[0].prices[1].price:",
        "must be positive"
    ),
    (
        "zero price", put(["listings", 0, "prices", 0, "price"], "0"), "listings[0].prices[0].price:",
        "must be positive"
    ),
    (
        "prices out of order",
        put(
            ["listings", 0, "prices"], [{"t": "0", "price": "1"}, {"t": "60", "price": "1"}, {"t": "30", "price": "1"}]
        ),
        "listings[0].prices[2].t:",
        "time order",
    ),
    (
        "naive launch time", put(["listings", 0, "launch_at"], "2026-11-25T10:00:00"), "listings[0].launch_at:",
        "time zone"
    ),
    ("naive start", put(["start"], "2026-11-25T08:00:00"), "start:", "time zone"),
    (
        "naive state time", put(["listings", 0, "states", 1, "at"], "2026-11-25T09:00:00"),
        "listings[0].states[1].at:", "time zone"
    ),
    (
        "launch before announcement",
        put(["listings", 0, "launch_at"], "2026-11-25T07:59:59Z"),
        "listings[0].launch_at:",
        "after announced_at",
    ),
    (
        "launch at announcement", put(["listings", 0, "launch_at"], "2026-11-25T08:00:00Z"), "listings[0].launch_at:",
        "after"
    ),
    (
        "duplicate coin id",
        put(["listings"], [listing(), listing(ticker="OTHER")]),
        "listings[1].coin_id:",
        "appears twice",
    ),
    (
        "duplicate symbol",
        put(["listings"], [listing(), listing(coin_id="new-2")]),
        "listings[1].ticker:",
        "NEWUSDT appears twice",
    ),
    (
        "duplicate user", put(["traders"], [trader(), trader(quote_amount="20")]), "traders[1].user_id:",
        "'alice' appears twice"
    ),
    (
        "unknown exit strategy", put(["traders", 0, "exit_strategy"], "yolo"), "traders[0]:",
        "unknown exit strategy 'yolo'"
    ),
    ("empty listings", put(["listings"], []), "listings:", "at least one listing"),
    ("listing without prices", put(["listings", 0, "prices"], []), "listings[0].prices:", "at least one price"),
    (
        "non-positive quote amount", put(["traders", 0, "quote_amount"], "0"), "traders[0].quote_amount:",
        "must be positive"
    ),
    ("end before start", put(["end"], "2026-11-25T07:00:00Z"), "end:", "after start"),
    ("lower-case ticker", put(["listings", 0, "ticker"], "new"), "listings[0].ticker:", "upper-case"),
    (
        "states out of order", put(["listings", 0, "states", 2, "at"], "2026-11-25T08:30:00Z"),
        "listings[0].states[2].at:", "time order"
    ),
    ("negative price time", put(["listings", 0, "prices", 0, "t"], "-1"), "listings[0].prices[0].t:", "negative"),
    ("fee out of range", put(["taker_fee"], "0.5"), "taker_fee:", "between 0 and 0.1"),
    (
        "not-a-number price", put(["listings", 0, "prices", 1, "price"], "NaN"), "listings[0].prices[1].price:",
        "finite"
    ),
    (
        "infinite price", put(["listings", 0, "prices", 1, "price"], "Infinity"), "listings[0].prices[1].price:",
        "finite"
    ),
    ("not-a-number quote amount", put(["traders", 0, "quote_amount"], "NaN"), "traders[0].quote_amount:", "finite"),
    ("not-a-number fee", put(["taker_fee"], "NaN"), "taker_fee:", "finite"),
    (
        "bad custom exit plan",
        put(["traders", 0, "exit_plans"], [{"name": "mine", "stop_loss_percent": "5",
                                             "take_profits": [{"gain_percent": "10", "sell_percent": "150"}]}]),
        "traders[0]:",
        "take-profit share",
    ),
]


class TestMalformedScenarios:
    @pytest.mark.parametrize(("mutate", "where", "what"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
    def test_each_problem_is_one_line_naming_its_place(
        self, mutate: Callable[[dict[str, Any]], None], where: str, what: str,
    ) -> None:
        doc = scenario_dict()
        mutate(doc)
        message = _refusal(_encode(doc))
        assert message.startswith(f"scenario test.json: {where}"), message
        assert what in message

    def test_the_unmutated_base_is_valid(self) -> None:
        # Guards the table above: each row fails for its own mutation only.
        scenario = parse_scenario(_encode(scenario_dict()), "test.json")
        assert scenario.listings[0].coin_id == "new-1"

    @pytest.mark.parametrize("raw", [b'{"name": "x",, }', b"not json at all", b'{"name": "x", "start": '])
    def test_invalid_json(self, raw: bytes) -> None:
        message = _refusal(raw)
        assert message.startswith("scenario test.json: not valid JSON:")

    def test_invalid_json_names_the_byte(self) -> None:
        assert "byte" in _refusal(b'{"name": "x",, }')

    def test_several_problems_are_summarised_on_one_line(self) -> None:
        doc = scenario_dict(traders=[trader(quote_amount="-1", exit_strategy="yolo")])
        message = _refusal(_encode(doc))
        assert message.startswith("scenario test.json: traders[0].quote_amount: must be positive")
        assert message.endswith("(and 1 more)")

    def test_a_missing_required_field_is_named(self) -> None:
        doc = scenario_dict()
        del doc["listings"][0]["launch_at"]
        message = _refusal(_encode(doc))
        assert message.startswith("scenario test.json: listings[0]:")
        assert "launch_at" in message

    def test_aware_times_in_other_zones_are_accepted(self) -> None:
        scenario = build_scenario([listing(launch_at="2026-11-25T12:00:00+02:00")])
        assert scenario.listings[0].launch_at == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
        assert scenario.listings[0].launch_at.utcoffset() == timedelta(hours=2)


class TestLoadScenario:
    def test_missing_file(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.json"
        with pytest.raises(ConfigurationError) as info:
            load_scenario(missing)
        message = str(info.value)
        assert "\n" not in message
        assert str(missing) in message and "cannot be read" in message

    def test_a_directory_is_not_a_scenario(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="cannot be read"):
            load_scenario(tmp_path)

    def test_file_errors_name_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(scenario_dict(listings=[])))
        with pytest.raises(ConfigurationError) as info:
            load_scenario(path)
        assert str(info.value).startswith(f"scenario {path}: listings:")

    def test_a_valid_file_loads(self, tmp_path: Path) -> None:
        path = tmp_path / "ok.json"
        path.write_text(json.dumps(scenario_dict()))
        assert load_scenario(path).name == "test"
