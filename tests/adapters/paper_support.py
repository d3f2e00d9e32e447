"""Scenario builders for tests of the paper exchange and of the use cases that run on it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.paper.scenario import Scenario, parse_scenario

ANNOUNCED = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
READY_AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
LAUNCH = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

BASE_LISTING: dict[str, Any] = {
    "coin_id": "new-1",
    "ticker": "NEW",
    "full_name": "New Coin",
    "announced_at": "2026-11-25T08:00:00Z",
    "launch_at": "2026-11-25T10:00:00Z",
    "price_scale": 4,
    "quantity_scale": 2,
    "min_notional": "1",
    "states": [
        {"at": "2026-11-25T08:00:00Z", "sts": 1, "st": 1, "tt": 1},
        {"at": "2026-11-25T09:00:00Z", "sts": 2, "st": 1, "tt": 1},
        {"at": "2026-11-25T09:30:00Z", "sts": 2, "st": 2, "tt": 4},
    ],
    "prices": [
        {"t": "0", "price": "0.5"},
        {"t": "60", "price": "0.6"},
        {"t": "120", "price": "0.44"},
    ],
}

BASE_TRADER: dict[str, Any] = {"user_id": "alice", "quote_amount": "10", "exit_strategy": "balanced"}


def listing(**overrides: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_LISTING)
    spec.update(overrides)
    return spec


def trader(**overrides: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_TRADER)
    spec.update(overrides)
    return spec


def scenario_dict(
    listings: list[dict[str, Any]] | None = None, traders: list[dict[str, Any]] | None = None, **overrides: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "test",
        "start": "2026-11-25T08:00:00Z",
        "end": "2026-11-25T11:00:00Z",
        "taker_fee": "0.0005",
        "listings": listings if listings is not None else [listing()],
        "traders": traders if traders is not None else [trader()],
    }
    doc.update(overrides)
    return doc


def build_scenario(
    listings: list[dict[str, Any]] | None = None, traders: list[dict[str, Any]] | None = None, **overrides: Any,
) -> Scenario:
    return parse_scenario(json.dumps(scenario_dict(listings, traders, **overrides)).encode(), "test.json")


def iso(moment: datetime) -> str:
    """A scenario's time: ISO 8601, UTC as Z."""
    return moment.isoformat().replace("+00:00", "Z")


def one_listing_file(
    path: Path, *, name: str, ticker: str, user_id: str, start: datetime, launch: datetime, end: datetime,
) -> Path:
    """A scenario file for a replay process (SNIPER_SCENARIO): `user_id` snipes one listing of
    `ticker` (coin `<ticker>-1`, "<Ticker> Coin") with 10 USDT; it is ready from the start and
    trades at 0.5 throughout."""
    doc = {
        "name": name,
        "start": iso(start),
        "end": iso(end),
        "traders": [{"user_id": user_id, "quote_amount": "10", "exit_strategy": "balanced"}],
        "listings": [{
            "coin_id": f"{ticker.lower()}-1", "ticker": ticker, "full_name": f"{ticker.title()} Coin",
            "announced_at": iso(start), "launch_at": iso(launch), "price_scale": 4, "quantity_scale": 2,
            "states": [{"at": iso(start), "sts": 2, "st": 2, "tt": 4}],
            "prices": [{"t": "0", "price": "0.5"}, {"t": str(int((end - start).total_seconds())), "price": "0.5"}],
        }],
    }
    path.write_text(json.dumps(doc))
    return path


def put(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to a scenario document: the value at `path` (keys and list indexes) set to `value`."""
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return mutate
