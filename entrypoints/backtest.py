"""`sniper backtest`: run the exit strategies over recorded listings, print a table, write a chart.

Every input is checked before anything runs (recordings, strategy names, fee rate, chart path);
a bad one ends the command with one line naming it (exit 2).
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import msgspec

from adapters.paper.recordings import BUNDLED_RECORDINGS, RecordingDirectory
from adapters.paper.scenario import ExitPlanSpec
from adapters.reports.equity_chart import write_equity_chart
from application.errors import ConfigurationError
from application.use_cases.backtest import BacktestReport, BacktestRequest, RunBacktest, StrategyResult
from domain.errors import DomainError, UnknownExitStrategy
from domain.exit_plans import PRESETS, ExitPlan, TakeProfitLevel, within_bounds
from domain.values import to_decimal
from entrypoints.timeline import signed

DEFAULT_CHART = Path("backtest.html")


def add_backtest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recordings", type=Path, default=None,
                        help="directory of listing recordings, *.json (default: the bundled synthetic set)")
    parser.add_argument("--strategy", action="extend", nargs="+", default=[], metavar="NAME",
                        help="exit strategy to run (a preset or a plan from --plans); repeatable; default: all")
    parser.add_argument("--plans", type=Path, default=None, metavar="FILE",
                        help="JSON list of your own exit plans, in the scenario's exit_plans format")
    parser.add_argument("--fee-rate", default="0.0005", metavar="R",
                        help="taker fee per fill as a fraction of its value (default 0.0005 = 0.05%%)")
    parser.add_argument("--capital", default=None, metavar="AMOUNT",
                        help="starting capital for drawdown in percent "
                             "(default: the sum of the recordings' quote amounts)")
    parser.add_argument("--chart", type=Path, default=DEFAULT_CHART, metavar="PATH",
                        help="where to write the equity chart, HTML with inline SVG (default backtest.html)")


def run_backtest_command(args: argparse.Namespace, out: TextIO) -> int:
    fee_rate = _decimal_option("--fee-rate", args.fee_rate)
    if not (Decimal(0) <= fee_rate < Decimal("0.1")):
        raise ConfigurationError(
            f"--fee-rate must be at least 0 and below 0.1 (a fraction: 0.001 = 0.1%), got {args.fee_rate}"
        )
    capital = None if args.capital is None else _decimal_option("--capital", args.capital)
    if capital is not None and capital <= 0:
        raise ConfigurationError(f"--capital must be positive, got {args.capital}")
    chart: Path = args.chart
    if chart.is_dir() or not chart.parent.is_dir():
        raise ConfigurationError(f"--chart {chart}: not a file in an existing directory")
    custom = load_exit_plans(args.plans) if args.plans is not None else {}
    request = BacktestRequest(tuple(args.strategy), custom, fee_rate, capital)
    source = RecordingDirectory(args.recordings or BUNDLED_RECORDINGS)
    try:
        report = RunBacktest(source)(request)
    except UnknownExitStrategy as exc:
        raise ConfigurationError(f"--strategy: {exc}") from None
    out.write(render_table(report) + "\n")
    try:
        write_equity_chart(report, chart)
    except OSError as exc:
        raise ConfigurationError(f"--chart {chart}: cannot be written: {exc.strerror or exc}") from None
    out.write(f"equity chart: {chart}\n")
    return 0


def _decimal_option(option: str, text: str) -> Decimal:
    try:
        return to_decimal(text, option)
    except DomainError as exc:
        raise ConfigurationError(str(exc)) from None


def load_exit_plans(path: Path) -> dict[str, ExitPlan]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"--plans {path}: cannot be read: {exc.strerror or exc}") from None
    try:
        specs = msgspec.json.decode(raw, type=list[ExitPlanSpec])
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigurationError(f"--plans {path}: {exc}") from None
    plans: dict[str, ExitPlan] = {}
    for i, p in enumerate(specs):
        if p.name in PRESETS:
            raise ConfigurationError(f"--plans {path}: [{i}]: {p.name!r} is a preset's name; preset names are reserved")
        try:
            plans[p.name] = within_bounds(ExitPlan(
                p.name, tuple(TakeProfitLevel(lv.gain_percent, lv.sell_percent) for lv in p.take_profits),
                p.stop_loss_percent, p.trailing_stop_percent, p.max_hold_seconds,
            ))
        except DomainError as exc:
            raise ConfigurationError(f"--plans {path}: [{i}]: {exc}") from None
    return plans


def _hold(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, sec = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def _percent(fraction: Decimal | None) -> str:
    return "-" if fraction is None else f"{(fraction * 100).quantize(Decimal('0.1'))}%"


def _row(s: StrategyResult) -> tuple[str, ...]:
    drawdown = f"{s.max_drawdown.quantize(Decimal('0.0001'))} ({s.max_drawdown_percent.quantize(Decimal('0.01'))}%)"
    return (s.name, str(len(s.trades)), signed(s.total_pnl), _percent(s.hit_rate), drawdown, _hold(s.average_hold))


def render_table(report: BacktestReport) -> str:
    header = ("strategy", "trades", "P&L", "hit rate", "max drawdown", "avg hold")
    body = [_row(s) for s in report.strategies]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def render(row: tuple[str, ...]) -> str:
        cells = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in cells).rstrip()

    lines = [
        f"Backtest over {report.recordings} recorded listings; fee {report.fee_rate} of each fill; "
        f"P&L in the quote asset, fees included; drawdown % of peak equity, starting from {report.starting_capital}",
        render(header),
        "  ".join("-" * w for w in widths),
        *map(render, body),
    ]
    return "\n".join(lines)
