"""A replay file the parser accepts is one the run can play: scenarios and recordings outside the
bounds (README, "Replay scenario format") are refused in one line, like any malformed file,
instead of overflowing a date or a decimal mid-run or never finishing."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.paper.recordings import BUNDLED_RECORDINGS, parse_recording
from adapters.paper.scenario import parse_scenario
from application.errors import ConfigurationError
from entrypoints.cli import main
from tests.adapters.paper_support import listing, put, scenario_dict, trader

FOREVER = [{"name": "forever", "take_profits": [{"gain_percent": "50", "sell_percent": "100"}],
            "stop_loss_percent": "10", "max_hold_seconds": 10**15}]

# The cases: each used to crash the run (OverflowError, decimal.Overflow), play
# nonsense or never finish.
UNPLAYABLE: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "launch in 9999", put(["listings", 0, "launch_at"], "9999-12-31T23:59:59Z"),
        "listings[0].launch_at: must be from 2000-01-01"
    ),
    ("start in year 1", put(["start"], "0001-01-01T00:00:00Z"), "start: must be from 2000-01-01"),
    (
        "tiny price", put(["listings", 0, "prices", 0, "price"], "1E-999999"),
        "listings[0].prices[0].price: must be between 1E-12 and 1E+9"
    ),
    (
        "huge price", put(["listings", 0, "prices", 0, "price"], "1e30"),
        "listings[0].prices[0].price: must be between 1E-12 and 1E+9"
    ),
    ("end in 9999", put(["end"], "9999-12-31T00:00:00Z"), "end: must be from 2000-01-01"),
    (
        "t = 1e30", put(["listings", 0, "prices", 2, "t"], "1e30"),
        "listings[0].prices[2].t: must be between 0 and 604800"
    ),
    (
        "max hold 10**15 s", lambda d: d["traders"][0].update(exit_plans=FOREVER, exit_strategy="forever"),
        "traders[0]: exit plan 'forever': max hold"
    ),
]

OUT_OF_BOUNDS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "announced in 2100", put(["listings", 0, "announced_at"], "2100-01-01T00:00:00Z"),
        "listings[0].announced_at: must be from"
    ),
    (
        "state in 1999", put(["listings", 0, "states", 0, "at"], "1999-12-31T23:59:59Z"),
        "listings[0].states[0].at: must be from"
    ),
    ("a span of more than a week", put(["end"], "2026-12-02T08:00:01Z"), "end: at most 7 days after start"),
    ("an end in 2099", put(["end"], "2099-01-01T00:00:00Z"), "end: at most 7 days after start"),
    (
        "a price just under the floor", put(["listings", 0, "prices", 1, "price"], "0.00000000000099"),
        "listings[0].prices[1].price: must be between"
    ),
    (
        "a price just over the cap", put(["listings", 0, "prices", 1, "price"], "1000000000.01"),
        "listings[0].prices[1].price: must be between"
    ),
    (
        "a price path past a week", put(["listings", 0, "prices", 2, "t"], "604800.001"),
        "listings[0].prices[2].t: must be between 0 and 604800"
    ),
    (
        "a huge minimum notional", put(["listings", 0, "min_notional"], "1E+30"),
        "listings[0].min_notional: must be between 0 and 1E+9"
    ),
    (
        "a huge quote amount", put(["traders", 0, "quote_amount"], "1E+999999"),
        "traders[0].quote_amount: must be between 0 and 1E+9"
    ),
    (
        "a huge risk limit", put(["traders", 0], trader(risk={"max_quote_per_snipe": "1E+40"})),
        "traders[0].risk.max_quote_per_snipe: must be between"
    ),
    (
        "a huge position count", put(["traders", 0], trader(risk={"max_concurrent_positions": 10**30})),
        "traders[0].risk.max_concurrent_positions: must be between 0 and 1000"
    ),
    (
        "a huge state code", put(["listings", 0, "states", 0, "sts"], 10**30),
        "listings[0].states[0]: state codes must be between 0 and 99"
    ),
]


def _refusal(doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_scenario(json.dumps(doc).encode(), "test.json")
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    return message


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in UNPLAYABLE + OUT_OF_BOUNDS],
                         ids=[c[0] for c in UNPLAYABLE + OUT_OF_BOUNDS])
def test_the_parser_refuses_what_the_run_cannot_play(mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
    doc = scenario_dict()
    mutate(doc)
    assert _refusal(doc).startswith(f"scenario test.json: {expected}")


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in UNPLAYABLE], ids=[c[0] for c in UNPLAYABLE])
def test_sniper_demo_refuses_it_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
    doc = scenario_dict()
    mutate(doc)
    scenario, db = tmp_path / "bad.json", tmp_path / "history.db"
    scenario.write_text(json.dumps(doc))
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    code, out, err = demo_within(scenario, seconds=60)
    assert code == 2, err[-2000:]
    assert err.count("\n") == 1 and err.startswith(f"sniper: scenario {scenario}: {expected}"), err
    assert out == "" and not db.exists()


def demo_within(scenario: Path, seconds: float) -> tuple[int, str, str]:
    """`sniper demo --scenario FILE` in process, on a daemon thread: a run that never ends fails
    the test after a generous wait instead of hanging it."""
    out, err = io.StringIO(), io.StringIO()
    result: list[int | BaseException] = []

    def run() -> None:
        try:
            result.append(main(["demo", "--scenario", str(scenario)], out=out, err=err))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            result.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(seconds)
    assert result, f"sniper demo still running after {seconds:g} s"
    assert isinstance(result[0], int), f"sniper demo raised {result[0]!r}"
    return result[0], out.getvalue(), err.getvalue()


def test_a_scenario_at_the_bounds_plays_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The widest prices, amounts and scales the parser accepts: the quantity a big amount buys
    of the cheapest coin has more digits than Decimal's default 28."""
    edge = listing(price_scale=18, quantity_scale=18,
                   prices=[{"t": "0", "price": "0.000000000001"}, {"t": "60", "price": "0.000000000002"},
                           {"t": "120", "price": "1000000000"}])
    rich = trader(quote_amount="1000000000", risk={
        "max_quote_per_snipe": "1000000000", "max_daily_loss": "1000000000",
        "max_total_exposure": "1000000000", "max_concurrent_positions": 1000,
    })
    scenario = tmp_path / "edge.json"
    scenario.write_text(json.dumps(scenario_dict([edge], [rich])))
    monkeypatch.setenv("DATABASE_URL", "memory://")
    code, out, err = demo_within(scenario, seconds=120)
    assert code == 0, err
    assert "FILLED" in out and "TOTAL" in out


# --- recordings (sniper backtest) -------------------------------------------------------------

def good_recording() -> dict[str, Any]:
    return {"symbol": "NEWUSDT", "launch_at": "2026-11-25T10:00:00Z", "quote_amount": "50",
            "prices": [{"t": "0", "price": "0.5"}, {"t": "60", "price": "0.48"}]}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (put(["launch_at"], "9999-12-31T23:59:59Z"), "launch_at: must be from 2000-01-01"),
        (put(["launch_at"], "0001-01-01T00:00:00Z"), "launch_at: must be from 2000-01-01"),
        (put(["prices", 0, "price"], "1E-999999"), "prices[0].price: must be between 1E-12 and 1E+9"),
        (put(["prices", 1, "price"], "1e30"), "prices[1].price: must be between 1E-12 and 1E+9"),
        (put(["prices", 1, "t"], "1e30"), "prices[1].t: more than a week after launch"),
        (put(["quote_amount"], "1E+999999"), "quote_amount: must be between 0 and 1E+9"),
    ],
    ids=["launch in 9999", "launch in year 1", "tiny price", "huge price", "t = 1e30", "huge quote amount"],
)
def test_a_recording_out_of_bounds_is_refused(mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
    doc = good_recording()
    mutate(doc)
    with pytest.raises(ConfigurationError) as info:
        parse_recording(json.dumps(doc).encode(), "bad.json")
    assert str(info.value).startswith(f"recording bad.json: {expected}"), str(info.value)


def test_sniper_backtest_refuses_a_recording_in_9999_in_one_line(tmp_path: Path) -> None:
    recs = tmp_path / "recs"
    recs.mkdir()
    src = sorted(BUNDLED_RECORDINGS.glob("*.json"))[0]
    (recs / src.name).write_bytes(src.read_bytes())
    late = json.loads(src.read_text())
    late["launch_at"] = "9999-12-31T23:00:00Z"
    (recs / "zz-late.json").write_text(json.dumps(late))
    out, err = io.StringIO(), io.StringIO()
    code = main(["backtest", "--recordings", str(recs), "--chart", str(tmp_path / "x.html")], out=out, err=err)
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue().count("\n") == 1
    assert err.getvalue().startswith(f"sniper: recording {recs / 'zz-late.json'}: launch_at: must be from 2000-01-01")
    assert not (tmp_path / "x.html").exists()
