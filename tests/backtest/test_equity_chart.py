"""The equity chart: well-formed, self-contained, one step path per strategy, labels escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from adapters.reports.equity_chart import render_equity_chart, write_equity_chart
from application.use_cases.backtest import BacktestRequest, RunBacktest
from domain.exit_plans import ExitPlan, TakeProfitLevel
from tests.backtest.support import LAUNCH, ListSource, recording

SVG = "{http://www.w3.org/2000/svg}"
D = Decimal


def report(custom: dict[str, ExitPlan] | None = None, strategies: tuple[str, ...] = ()):  # noqa: ANN201
    source = ListSource(
        recording([(0, "1.00"), (10, "1.10"), (30, "1.20")], symbol="WINUSDT"),
        recording([(0, "1.00"), (5, "0.80")], symbol="LOSSUSDT", launch_at=LAUNCH + timedelta(hours=1)),
    )
    return RunBacktest(source)(BacktestRequest(strategies, custom or {}, D("0.001")))


def paths(html: str) -> list[ET.Element]:
    root = ET.fromstring(html.split("\n", 1)[1])  # past the doctype
    return [p for p in root.iter(f"{SVG}path") if p.get("class") == "equity"]


def test_one_path_per_strategy_and_nothing_external(tmp_path: Path) -> None:
    rep = report()
    out = write_equity_chart(rep, tmp_path / "chart.html")
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    found = paths(html)
    assert [p.get("data-strategy") for p in found] == [s.name for s in rep.strategies]
    assert not re.search(r"<script|<link|https?://(?!www\.w3\.org/)", html)


def test_the_path_steps_through_every_equity_point() -> None:
    rep = report(strategies=("conservative",))
    (path,) = paths(render_equity_chart(rep))
    commands = re.findall(r"[MHV]", path.get("d", ""))
    # a move to the first point, then a horizontal and a vertical step for each trade
    assert commands == ["M"] + ["H", "V"] * (len(rep.strategies[0].equity_curve) - 1)
    ys = [Decimal(v) for v in re.findall(r"V (\S+)", path.get("d", ""))]
    # +14.785 first (higher on screen: smaller y), then the loss takes it below where it started
    start_y = Decimal(path.get("d", "").split()[2])
    assert ys[0] < start_y < ys[1]


def test_labels_are_escaped() -> None:
    odd = ExitPlan('<b>&"x"</b>', (TakeProfitLevel(D(10), D(100)),), D(5))
    html = render_equity_chart(report({odd.name: odd}, (odd.name,)), title="<script>alert(1)</script>")
    assert "<b>" not in html and "<script>" not in html
    assert "&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;" in html
    assert [p.get("data-strategy") for p in paths(html)] == ['<b>&"x"</b>']


def test_no_trades_still_writes_a_valid_page() -> None:
    rep = RunBacktest(ListSource())(BacktestRequest(("balanced",)))
    assert paths(render_equity_chart(rep)) == []
