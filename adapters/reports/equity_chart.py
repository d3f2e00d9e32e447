"""The backtest equity chart: one self-contained HTML file with an inline SVG.

No script, no stylesheet or font from elsewhere: it opens offline in any browser. The document is
also well-formed XML, so tools (and tests) can parse it. Each strategy's cumulative realised P&L is
drawn as a step line (equity only moves when a trade closes), one `<path class="equity">` each.
Coordinates are computed in Decimal, like the amounts they plot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from html import escape
from pathlib import Path

from application.use_cases.backtest import BacktestReport, StrategyResult

WIDTH, HEIGHT = 960, 480
LEFT, RIGHT, TOP, BOTTOM = 90, 20, 20, 50
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
TWO = Decimal("0.01")


def write_equity_chart(report: BacktestReport, path: Path, title: str = "Backtest equity curves") -> Path:
    """Write the chart; returns the path written. OSError is the caller's to translate."""
    path.write_text(render_equity_chart(report, title), encoding="utf-8")
    return path


def _x(value: Decimal) -> str:
    return format(value.quantize(TWO, rounding=ROUND_HALF_EVEN), "f")


def _money(amount: Decimal, places: str = "0.0001") -> str:
    q = amount.quantize(Decimal(places), rounding=ROUND_HALF_EVEN)
    if q.is_zero():
        return format(abs(q), "f")  # never "-0.00"
    return f"+{q}" if q > 0 else format(q, "f")


def _seconds(delta: timedelta) -> Decimal:
    return Decimal(delta // timedelta(microseconds=1)) / Decimal(1_000_000)


class _Frame:
    """Maps (time, P&L) onto the plot area."""

    def __init__(self, strategies: tuple[StrategyResult, ...]) -> None:
        points = [p for s in strategies for p in s.equity_curve]
        self.start: datetime | None = min((p.at for p in points), default=None)
        end = max((p.at for p in points), default=None)
        span = _seconds(end - self.start) if self.start is not None and end is not None else Decimal(0)
        self.span = span if span > 0 else Decimal(1)
        low = min([Decimal(0), *(p.pnl for p in points)])
        high = max([Decimal(0), *(p.pnl for p in points)])
        if high == low:
            high, low = low + 1, low - 1
        pad = (high - low) / 20
        self.low, self.high = low - pad, high + pad
        self.plot_w = Decimal(WIDTH - LEFT - RIGHT)
        self.plot_h = Decimal(HEIGHT - TOP - BOTTOM)

    def x(self, at: datetime) -> Decimal:
        if self.start is None:  # not reached: x() is only called for a chart with points
            raise RuntimeError("an equity chart without a start")
        return LEFT + _seconds(at - self.start) * self.plot_w / self.span

    def y(self, pnl: Decimal) -> Decimal:
        return TOP + (self.high - pnl) * self.plot_h / (self.high - self.low)

    def y_ticks(self, count: int = 5) -> list[Decimal]:
        """Round values (1, 2 or 5 times a power of ten apart) inside the plotted range."""
        raw = (self.high - self.low) / count
        power = Decimal(1).scaleb(raw.adjusted())
        step = next(m * power for m in (Decimal(1), Decimal(2), Decimal(5), Decimal(10)) if m * power >= raw)
        tick = (self.low / step).to_integral_value(rounding=ROUND_CEILING) * step
        ticks = []
        while tick <= self.high:
            ticks.append(tick)
            tick += step
        return ticks


def _step_path(strategy: StrategyResult, frame: _Frame) -> str:
    curve = strategy.equity_curve
    first = curve[0]
    parts = [f"M {_x(frame.x(first.at))} {_x(frame.y(first.pnl))}"]
    for point in curve[1:]:
        parts.append(f"H {_x(frame.x(point.at))} V {_x(frame.y(point.pnl))}")
    return " ".join(parts)


def render_equity_chart(report: BacktestReport, title: str = "Backtest equity curves") -> str:
    frame = _Frame(report.strategies)
    svg: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
        'fill="#fafafa" stroke="#cccccc"/>',
    ]
    for tick in frame.y_ticks():
        y = _x(frame.y(tick))
        svg.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#e4e4e4"/>')
        svg.append(f'<text x="{LEFT - 6}" y="{y}" text-anchor="end" dominant-baseline="middle" '
                   f'font-size="11">{escape(_money(tick, "0.01"))}</text>')
    zero = _x(frame.y(Decimal(0)))
    svg.append(f'<line x1="{LEFT}" y1="{zero}" x2="{WIDTH - RIGHT}" y2="{zero}" stroke="#888888" '
               'stroke-dasharray="4 3"/>')
    if frame.start is not None:
        for fraction, anchor in ((Decimal(0), "start"), (Decimal("0.5"), "middle"), (Decimal(1), "end")):
            at = frame.start + timedelta(seconds=int(frame.span * fraction))
            svg.append(f'<text x="{_x(frame.x(at))}" y="{HEIGHT - BOTTOM + 18}" text-anchor="{anchor}" '
                       f'font-size="11">{escape(f"{at.astimezone(UTC):%Y-%m-%d %H:%M}")}</text>')
    svg.append(f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) // 2}" y="{HEIGHT - 8}" text-anchor="middle" '
               'font-size="12">time of trade close (UTC)</text>')
    svg.append(f'<text x="14" y="{TOP + (HEIGHT - TOP - BOTTOM) // 2}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 14 {TOP + (HEIGHT - TOP - BOTTOM) // 2})">cumulative realised P&amp;L</text>')
    legend: list[str] = []
    for index, strategy in enumerate(report.strategies):
        colour = PALETTE[index % len(PALETTE)]
        name = escape(strategy.name)
        if strategy.equity_curve:
            svg.append(f'<path class="equity" data-strategy="{name}" d="{_step_path(strategy, frame)}" fill="none" '
                       f'stroke="{colour}" stroke-width="2">'
                       f'<title>{name}: {escape(_money(strategy.total_pnl))}</title></path>')
        legend.append(
            f'<li><span class="swatch" style="background:{colour}"></span>{name}: '
            f'{escape(_money(strategy.total_pnl))}</li>'
        )
    svg.append("</svg>")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">',
        "<head>",
        '<meta charset="utf-8"/>',
        f"<title>{escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:24px;color:#222}ul{list-style:none;padding:0}"
        "li{margin:2px 0}.swatch{display:inline-block;width:14px;height:4px;margin:0 8px 3px 0;"
        "vertical-align:middle}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{report.recordings} recorded listings, taker fee {escape(format(report.fee_rate, 'f'))} of each fill, "
        "P&amp;L in the quote asset. "
        f"Starting capital for drawdown: {escape(format(report.starting_capital, 'f'))}.</p>",
        *svg,
        '<ul class="legend">',
        *legend,
        "</ul>",
        "</body>",
        "</html>",
        "",
    ])
