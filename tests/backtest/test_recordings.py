"""Recording files: the bundled synthetic set loads and is what the generator makes; a bad file is refused
in one line naming the file and the place."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.paper.recordings import BUNDLED_RECORDINGS, RecordingDirectory, load_recording, parse_recording
from application.errors import ConfigurationError
from tools.make_recordings import write_all


def good() -> dict[str, Any]:
    return {
        "symbol": "NEWUSDT",
        "launch_at": "2026-11-25T10:00:00Z",
        "quote_amount": "50",
        "quantity_scale": 2,
        "prices": [{"t": "0", "price": "0.5"}, {"t": "0.2", "price": "0.51"}, {"t": "60", "price": "0.48"}],
    }


def refusal(raw: bytes, source: str = "bad.json") -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_recording(raw, source)
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert message.startswith(f"recording {source}: ")
    return message


class TestBundled:
    def test_loads_every_file(self) -> None:
        recordings = RecordingDirectory(BUNDLED_RECORDINGS).recordings()
        assert 12 <= len(recordings) <= 20
        assert len({r.symbol.code for r in recordings}) == len(recordings)
        for rec in recordings:
            span = rec.prices[-1].at - rec.prices[0].at
            assert timedelta(minutes=30) <= span <= timedelta(minutes=120), rec.source
            # sub-second sampling right after launch
            assert rec.prices[1].at - rec.prices[0].at < timedelta(seconds=1), rec.source

    def test_every_file_says_it_is_synthetic_and_the_shapes_are_covered(self) -> None:
        docs = [json.loads(p.read_text()) for p in sorted(BUNDLED_RECORDINGS.glob("*.json"))]
        assert all(d["synthetic"] is True and "SYNTHETIC" in d["description"] for d in docs)
        shapes = {d["shape"] for d in docs}
        assert {"pump_and_dump", "slow_bleed", "steady_climb", "flat", "spike_collapse", "gap_down"} <= shapes

    def test_the_shapes_look_like_their_names(self) -> None:
        by_shape: dict[str, list[list[Decimal]]] = {}
        for path in sorted(BUNDLED_RECORDINGS.glob("*.json")):
            shape = json.loads(path.read_text())["shape"]
            prices = [p.price for p in load_recording(path).prices]
            by_shape.setdefault(shape, []).append([p / prices[0] for p in prices])
        for path_ in by_shape["pump_and_dump"]:
            assert max(path_) > Decimal("1.5") and path_[-1] < 1
        for path_ in by_shape["steady_climb"]:
            assert path_[-1] > Decimal("1.5")
        for path_ in by_shape["flat"]:
            assert Decimal("0.95") < min(path_) and max(path_) < Decimal("1.05")
        for path_ in by_shape["gap_down"]:
            assert path_[5] < Decimal("0.9") and max(path_[1:]) < 1
        for path_ in by_shape["spike_collapse"]:
            assert max(path_[:60]) > Decimal("1.3") and path_[-1] < Decimal("0.5")
        for path_ in by_shape["slow_bleed"]:
            assert path_[-1] < Decimal("0.75")

    def test_the_generator_reproduces_the_bundled_files_byte_for_byte(self, tmp_path: Path) -> None:
        written = write_all(tmp_path)
        bundled = sorted(BUNDLED_RECORDINGS.glob("*.json"))
        assert [p.name for p in written] == [p.name for p in bundled]
        for new, old in zip(written, bundled, strict=True):
            assert new.read_bytes() == old.read_bytes(), new.name


class TestRefused:
    def test_a_good_one_parses(self) -> None:
        rec = parse_recording(json.dumps(good()).encode(), "ok.json")
        assert rec.symbol.code == "NEWUSDT" and rec.quote_amount == Decimal(50)
        assert [p.at - rec.launch_at for p in rec.prices] == [timedelta(0), timedelta(milliseconds=200),
                                                             timedelta(seconds=60)]

    @pytest.mark.parametrize(
        ("mutate", "expected"),
        [
            (lambda d: d["prices"][1].update(price="-1"), "prices[1].price: must be positive, got -1"),
            (lambda d: d["prices"][2].update(t="0.1"), "prices[2].t: times must strictly increase"),
            (lambda d: d["prices"][0].update(t="-1"), "prices[0].t: seconds after launch must not be negative"),
            (lambda d: d["prices"][1].update(price="NaN"), "prices[1].price: must be a finite number"),
            (lambda d: d["prices"][1].update(price=0.51), "prices[1].price: Expected `str`, got `float`"),
            (lambda d: d["prices"][1].update(price="abc"), "prices[1].price: not a decimal number: 'abc'"),
            (lambda d: d.update(quote_amount=50), "quote_amount: Expected `str`, got `int`"),
            (lambda d: d.update(prices=[]), "prices: a recording needs at least one price"),
            (lambda d: d.update(quote_amount="0"), "quote_amount: must be positive"),
            (lambda d: d.update(quote_amount="0.001"), "quote_amount: 0.001 buys nothing"),
            (lambda d: d.update(symbol="NEW-USDT"), "symbol: "),
            (lambda d: d.update(launch_at="2026-11-25T10:00:00"), "launch_at: time must carry a time zone"),
            (lambda d: d.update(quantity_scale=40), "quantity_scale: must be between 0 and 18"),
            (lambda d: d.pop("launch_at"), "missing required field `launch_at`"),
            (lambda d: d.update(extra=1), "unknown field `extra`"),
        ],
    )
    def test_one_line_naming_file_and_place(self, mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
        doc = good()
        mutate(doc)
        assert expected in refusal(json.dumps(doc).encode())

    def test_not_json(self) -> None:
        assert "not valid JSON" in refusal(b"{\"symbol\": ")

    def test_a_directory_with_one_bad_file_is_refused_whole_naming_it(self, tmp_path: Path) -> None:
        (tmp_path / "a.json").write_text(json.dumps(good()))
        bad = good()
        bad["prices"][1]["price"] = "0"
        (tmp_path / "b.json").write_text(json.dumps(bad))
        with pytest.raises(ConfigurationError, match=r"b\.json: prices\[1\]\.price: must be positive"):
            RecordingDirectory(tmp_path).recordings()

    def test_missing_or_empty_directory(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="no \\*.json recordings"):
            RecordingDirectory(tmp_path).recordings()
        with pytest.raises(ConfigurationError, match="not a directory"):
            RecordingDirectory(tmp_path / "nope").recordings()
