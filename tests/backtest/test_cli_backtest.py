"""`sniper backtest` end to end on the bundled recordings, and its refusals (one line, non-zero)."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.paper.recordings import BUNDLED_RECORDINGS
from domain.exit_plans import PRESETS
from entrypoints.cli import main

SVG = "{http://www.w3.org/2000/svg}"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["backtest", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def table_rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("strategy"))
    rows = {}
    for line in lines[header + 2:]:
        if line.startswith("equity chart:"):
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    return rows


def test_bundled_recordings_print_the_table_and_write_the_chart(tmp_path: Path) -> None:
    chart = tmp_path / "bt.html"
    code, out, err = run("--chart", str(chart))
    assert (code, err) == (0, "")
    assert re.split(r"\s{2,}", out.splitlines()[1]) == [
        "strategy", "trades", "P&L", "hit rate", "max drawdown", "avg hold"
    ]
    rows = table_rows(out)
    recordings = len(list(BUNDLED_RECORDINGS.glob("*.json")))
    assert list(rows) == list(PRESETS)
    for name, (trades, pnl, hit, drawdown, hold) in rows.items():
        assert trades == str(recordings), name
        assert re.fullmatch(r"[+-]?\d+\.\d{4}", pnl), pnl
        assert re.fullmatch(r"\d+\.\d%", hit), hit
        assert re.fullmatch(r"\d+\.\d{4} \(\d+\.\d{2}%\)", drawdown), drawdown
        assert re.fullmatch(r"(\d+h\d{2}m|\d+m\d{2}s)", hold), hold
    assert out.rstrip().endswith(f"equity chart: {chart}")
    root = ET.fromstring(chart.read_text(encoding="utf-8").split("\n", 1)[1])
    equity = [p.get("data-strategy") for p in root.iter(f"{SVG}path") if p.get("class") == "equity"]
    assert equity == list(PRESETS)


def test_repeated_runs_print_and_draw_the_same(tmp_path: Path) -> None:
    first = run("--chart", str(tmp_path / "a.html"))
    second = run("--chart", str(tmp_path / "b.html"))
    assert first[1].replace("a.html", "") == second[1].replace("b.html", "")
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_chosen_strategies_own_plans_and_fee_rate(tmp_path: Path) -> None:
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps([{"name": "quick", "take_profits": [{"gain_percent": "3", "sell_percent": "100"}],
                                  "stop_loss_percent": "2"}]))
    code, out, err = run("--strategy", "quick", "scalping", "--plans", str(plans), "--fee-rate", "0",
                         "--chart", str(tmp_path / "c.html"))
    assert (code, err) == (0, "")
    assert list(table_rows(out)) == ["quick", "scalping"]
    _, fee_out, _ = run("--strategy", "scalping", "--fee-rate", "0.002", "--chart", str(tmp_path / "d.html"))
    # dearer fills, less profit
    assert Decimal(table_rows(fee_out)["scalping"][1]) < Decimal(table_rows(out)["scalping"][1])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--fee-rate", "abc"], "--fee-rate is not a number"),
        (["--fee-rate", "0.5"], "--fee-rate must be at least 0 and below 0.1"),
        (["--fee-rate", "-0.001"], "--fee-rate must be at least 0"),
        (["--strategy", "yolo"], "--strategy: unknown exit strategy 'yolo'"),
        (["--capital", "0"], "--capital must be positive"),
        (["--recordings", "/nonexistent/recs"], "recordings /nonexistent/recs: not a directory"),
        (
            ["--chart", "/nonexistent/dir/x.html"],
            "--chart /nonexistent/dir/x.html: not a file in an existing directory"
        ),
        (["--plans", "/nonexistent/plans.json"], "--plans /nonexistent/plans.json: cannot be read"),
        (["--plans", "PLANS:[{\"name\": \"balanced\", \"take_profits\": [], \"stop_loss_percent\": \"5\"}]"],
         "preset names are reserved"),
        (["--plans", "PLANS:[{\"name\": \"x\", \"take_profits\": [], \"stop_loss_percent\": \"500\"}]"],
         "[0]: exit plan 'x': stop-loss must be in (0, 100)%"),
        (["--plans", "PLANS:{"], "--plans "),
        # Issue 12: the bounds a trader may set, each named.
        (["--plans", "PLANS:[{\"name\": \"x\", \"take_profits\": [], \"stop_loss_percent\": \"5\"}]"],
         "[0]: exit plan 'x': 0 take-profit levels; give 1 to 5"),
        (["--plans", "PLANS:[{\"name\": \"x\", \"take_profits\": ["
          + ", ".join(f'{{"gain_percent": "{g}", "sell_percent": "10"}}' for g in range(10, 80, 10))
          + "], \"stop_loss_percent\": \"5\"}]"],
         "[0]: exit plan 'x': 7 take-profit levels; give 1 to 5"),
        (["--plans", "PLANS:[{\"name\": \"x\", \"take_profits\": [{\"gain_percent\": \"1001\", "
          "\"sell_percent\": \"0.5\"}], \"stop_loss_percent\": \"5\"}]"],
         "[0]: exit plan 'x': take-profit gain 1001% is outside 0.5-1000%; take-profit share 0.5% is outside 1-100%"),
    ],
)
def test_bad_arguments_one_line_non_zero(argv: list[str], expected: str, tmp_path: Path) -> None:
    if argv[0] == "--plans" and argv[1].startswith("PLANS:"):
        (tmp_path / "plans.json").write_text(argv[1].removeprefix("PLANS:"))
        argv = ["--plans", str(tmp_path / "plans.json")]
    code, out, err = run(*argv) if "--chart" in argv else run(*argv, "--chart", str(tmp_path / "x.html"))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sniper: ") and expected in err, err
    assert out == ""
    assert not (tmp_path / "x.html").exists()


def test_a_malformed_recording_is_one_line_and_nothing_runs(tmp_path: Path) -> None:
    recs = tmp_path / "recs"
    recs.mkdir()
    for src in sorted(BUNDLED_RECORDINGS.glob("*.json"))[:3]:
        (recs / src.name).write_bytes(src.read_bytes())
    broken = json.loads((recs / sorted(p.name for p in recs.iterdir())[1]).read_text())
    broken["prices"][7]["price"] = "-0.5"
    (recs / "zz-broken.json").write_text(json.dumps(broken))
    code, out, err = run("--recordings", str(recs), "--chart", str(tmp_path / "x.html"))
    assert code == 2 and out == ""
    assert err == f"sniper: recording {recs / 'zz-broken.json'}: prices[7].price: must be positive, got -0.5\n"
    assert "Traceback" not in err
    assert not (tmp_path / "x.html").exists()


