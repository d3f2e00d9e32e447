"""The cockpit in a terminal (issue 15): `sniper status`, `sniper positions`, `sniper targets`,
`sniper close`, and the filters of `sniper history`.

Tables fit 100 columns, aligned (history entries are wrapped to 100 columns on a terminal, one line
each into a pipe); colour only on a terminal, never with NO_COLOR set (no-color.org)
or TERM=dumb. `--json` prints what the HTTP API answers for the same question (its schemas), so
a script reads one shape from either. Reads go to the trade history (DATABASE_URL); prices come
from MEXC only when SNIPER_MARKET=mexc (a replay's prices live in its worker).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import textwrap
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TextIO

import msgspec

from adapters.clock import SystemClock
from adapters.projections.memory import InMemoryReadModels
from application.errors import AccountUnavailable, ConfigurationError
from application.ports import AgentStatus, EventStore, MarketData
from application.use_cases.positions import ClosePosition, PositionClosure
from application.use_cases.queries import GetTraderStatus, PricedPosition, PricePositions, TraderStatus
from application.views import TargetView
from domain.events import Recorded
from entrypoints.config import Settings

WIDTH = 100
GAP = "  "


# --- colour ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Palette:
    """ANSI colour, or none: `on` only for a terminal without NO_COLOR (see palette_for)."""

    on: bool

    def paint(self, text: str, code: str | None) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on and code and text else text


GOOD, BAD, WARN, BOLD, DIM = "32", "31", "33", "1", "2"


def is_terminal(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def palette_for(out: TextIO, env: Mapping[str, str] | None = None) -> Palette:
    env = os.environ if env is None else env
    if env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return Palette(False)
    return Palette(is_terminal(out))


def signed_colour(value: Decimal | None) -> str | None:
    if value is None or value == 0:
        return None
    return GOOD if value > 0 else BAD


# --- tables ---------------------------------------------------------------------------------------

Cell = str | tuple[str, str | None]  # text, or (text, colour)


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    right: bool = False  # numbers are right-aligned
    flex: bool = False  # may be cut to make the table fit


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def table(columns: Sequence[Column], rows: Iterable[Sequence[Cell]], palette: Palette, width: int = WIDTH,
          indent: str = "") -> list[str]:
    """Aligned lines no wider than `width`: the widest flexible column gives way first. Colour is
    put on after the padding, so it never moves a column."""
    cells = [[c if isinstance(c, tuple) else (c, None) for c in row] for row in rows]
    widths = [max([len(col.title), *(len(r[i][0]) for r in cells)]) for i, col in enumerate(columns)]
    budget = width - len(indent) - len(GAP) * (len(columns) - 1)
    while sum(widths) > budget:
        flexible = [i for i, col in enumerate(columns) if col.flex and widths[i] > 8]
        if not flexible:
            flexible = [i for i in range(len(columns)) if widths[i] > 4]
        if not flexible:
            break
        widest = max(flexible, key=lambda i: widths[i])
        widths[widest] -= min(sum(widths) - budget, widths[widest] - (8 if columns[widest].flex else 4))

    def line(row: Sequence[tuple[str, str | None]], header: bool = False) -> str:
        parts = []
        for (text, colour), col, w in zip(row, columns, widths, strict=True):
            shown = clip(text, w)
            padded = shown.rjust(w) if col.right else shown.ljust(w)
            parts.append(palette.paint(padded, BOLD if header else colour))
        return (indent + GAP.join(parts)).rstrip()

    return [line([(c.title, None) for c in columns], header=True), *(line(r) for r in cells)]


def wrapped(label: str, text: str, width: int = WIDTH, label_width: int = 11) -> list[str]:
    """`label` then `text`, wrapped to `width` with the text's column kept."""
    lead = label.ljust(label_width)
    return textwrap.wrap(text, width=width, initial_indent=lead, subsequent_indent=" " * label_width,
                         break_long_words=True, break_on_hyphens=False) or [lead.rstrip()]


def amount(value: Decimal | None, *, sign: bool = False, places: int = 4) -> str:
    """A figure for a person: at most `places` decimals, trailing zeros dropped ("-" when unknown)."""
    if value is None:
        return "-"
    shown = value.quantize(Decimal(1).scaleb(-places))
    text = format(shown.normalize(), "f") if shown != 0 else "0"
    return f"+{text}" if sign and shown > 0 else text


# --- reading --------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def trade_history(settings: Settings) -> AsyncIterator[EventStore]:
    """The trade history, read only (a missing SQLite file is refused, never created)."""
    from entrypoints.container import history_container

    container = history_container(settings)
    try:
        yield await container.get(EventStore)
    finally:
        await container.close()


@contextlib.asynccontextmanager
async def market_prices(settings: Settings) -> AsyncIterator[MarketData | None]:
    """MEXC's public prices with SNIPER_MARKET=mexc (one attempt per read: a status must not
    hang on an unreachable MEXC); None for a replay."""
    if settings.sniper_market != "mexc":
        yield None
        return
    from adapters.mexc.exchange import MexcExchange
    from adapters.mexc.rest import MexcRestClient

    client = MexcRestClient("", "", settings.mexc_base_url, read_attempts=1, order_lane=False, timeout=3.0)
    try:
        yield MexcExchange(client)
    finally:
        await client.aclose()


async def agent_statuses(settings: Settings) -> tuple[list[AgentStatus], str | None]:
    """The workers' heartbeats, or why there are none to show."""
    if settings.redis_url is None:
        return [], "no heartbeats here: REDIS_URL is unset (a worker then keeps them in its process)"
    from entrypoints.worker import read_agent_statuses

    try:
        statuses = await read_agent_statuses(settings)
    except ConfigurationError as exc:
        return [], str(exc)
    return statuses, None if statuses else "no agent has reported yet"


async def read_status(settings: Settings, user_id: str) -> tuple[TraderStatus, str | None]:
    clock = SystemClock()
    async with trade_history(settings) as store, market_prices(settings) as market:
        status = await GetTraderStatus(InMemoryReadModels(store), store, clock, prices=PricePositions(market, clock))(
            user_id)
    agents, note = await agent_statuses(settings)
    return TraderStatus(status.user_id, status.stops, status.open_positions, status.realised_today,
                        status.realised_total, status.unrealised, status.open_exposure, agents, status.as_of), note


async def read_positions(settings: Settings, user_id: str, open_only: bool) -> list[PricedPosition]:
    clock = SystemClock()
    async with trade_history(settings) as store, market_prices(settings) as market:
        views = await InMemoryReadModels(store).positions(user_id, open_only=open_only)
        priced = {p.position.position_id: p for p in await PricePositions(market, clock)(views)}
    return [priced.get(v.position_id, PricedPosition(v, None, None)) for v in views]


async def read_targets(settings: Settings, user_id: str) -> list[TargetView]:
    async with trade_history(settings) as store:
        return await InMemoryReadModels(store).targets(user_id)


# --- rendering ------------------------------------------------------------------------------------

def _json(value: object) -> str:
    return msgspec.json.encode(value).decode() + "\n"


def status_json(status: TraderStatus) -> str:
    from entrypoints.http.schemas import StatusOut

    return _json(StatusOut.of(status, datetime.now(UTC)))


def render_status(status: TraderStatus, palette: Palette, agents_note: str | None, now: datetime) -> list[str]:
    lines = [palette.paint(f"{status.user_id} at {status.as_of.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC", BOLD)]
    if status.stops:
        for stop in status.stops:
            for i, text in enumerate(wrapped("trading", f"HALTED: {stop.describe()}")):
                lines.append(palette.paint(text, BAD) if i == 0 else text)
    else:
        lines.append("trading    " + palette.paint("not halted", GOOD))
    pnl = (f"today {palette.paint(amount(status.realised_today, sign=True), signed_colour(status.realised_today))}"
           f"  total {palette.paint(amount(status.realised_total, sign=True), signed_colour(status.realised_total))}"
           f"  unrealised {palette.paint(amount(status.unrealised, sign=True), signed_colour(status.unrealised))}")
    lines.append(f"P&L        {pnl}")
    count = len(status.open_positions)
    lines.append(f"holding    {count} open position{'s' if count != 1 else ''}, "
                 f"{amount(status.open_exposure)} still invested")
    if status.open_positions:
        lines += table(POSITION_COLUMNS, [position_row(p) for p in status.open_positions], palette, indent="  ")
    lines.append("agents")
    if status.agents:
        lines += table(AGENT_COLUMNS, [agent_row(a, now) for a in status.agents], palette, indent="  ")
    else:
        lines += wrapped("", agents_note or "none", label_width=2)
    return lines


POSITION_COLUMNS = (
    Column("position"), Column("symbol"), Column("status", flex=True), Column("held", right=True),
    Column("entry", right=True), Column("price", right=True), Column("unrealised", right=True),
    Column("realised", right=True), Column("exits", flex=True),
)


def position_row(p: PricedPosition) -> list[Cell]:
    v = p.position
    status_colour = DIM if v.status == "closed" else None
    return [
        v.position_id, v.symbol, (v.status, status_colour), amount(v.remaining, places=8),
        amount(v.entry_price, places=8),
        amount(p.current_price, places=8), (amount(p.unrealised_pnl, sign=True), signed_colour(p.unrealised_pnl)),
        (amount(v.realised_pnl, sign=True), signed_colour(v.realised_pnl)), " ".join(_short_exit(e) for e in v.exits),
    ]


def _short_exit(name: str) -> str:
    return {"TakeProfitHit": "TP", "StopLossHit": "SL", "TrailingStopHit": "TS", "MaxHoldTimeReached": "TIME",
            "EmergencyExitFilled": "EMERGENCY", "ManualExitFilled": "MANUAL", "DustWrittenOff": "DUST"}.get(name, name)


AGENT_COLUMNS = (Column("worker", flex=True), Column("agent"), Column("state"), Column("last beat", right=True),
                 Column("restarts", right=True), Column("detail", flex=True))


def agent_row(s: AgentStatus, now: datetime) -> list[Cell]:
    state = "ok" if s.is_current(now) else ("stale" if s.healthy else "DOWN")
    return [s.worker_id, s.name, (state, GOOD if state == "ok" else BAD),
            f"{max(0, int((now - s.last_beat_at).total_seconds()))} s ago", str(s.restarts), s.detail]


def positions_json(positions: list[PricedPosition]) -> str:
    from entrypoints.http.schemas import PositionOut

    return _json([PositionOut.priced(p) for p in positions])


def render_positions(positions: list[PricedPosition], palette: Palette) -> list[str]:
    if not positions:
        return ["no positions"]
    return table(POSITION_COLUMNS, [position_row(p) for p in positions], palette)


TARGET_COLUMNS = (
    Column("target"), Column("symbol"), Column("status"), Column("launch (UTC)"), Column("amount", right=True),
    Column("exit plan", flex=True), Column("mode"), Column("reason", flex=True),
)


def target_row(t: TargetView) -> list[Cell]:
    colour = {"filled": GOOD, "failed": BAD, "expired": DIM, "cancelled": DIM}.get(t.status)
    launch = f"{t.launch_at.astimezone(UTC):%Y-%m-%d %H:%M}" if t.launch_at.tzinfo else "-"
    return [t.target_id, t.symbol, (t.status, colour), launch, amount(t.quote_amount, places=8), t.exit_strategy,
            ("LIVE", WARN) if t.live else "paper", t.reason or ""]


def targets_json(targets: list[TargetView]) -> str:
    from entrypoints.http.schemas import TargetOut

    return _json([TargetOut.of(t) for t in targets])


def render_targets(targets: list[TargetView], palette: Palette) -> list[str]:
    if not targets:
        return ["no snipe targets"]
    return table(TARGET_COLUMNS, [target_row(t) for t in targets], palette)


# --- closing by hand ------------------------------------------------------------------------------

async def run_close(settings: Settings, user_id: str, position_id: str) -> PositionClosure:
    """A market sell of what the position holds, as `sniper worker` would sell it: at MEXC's prices
    on paper, or on MEXC itself for a live position with SNIPER_LIVE=1. A replay's positions have no
    market here (their prices live in the replay's worker): refused with why."""
    if settings.sniper_market != "mexc":
        raise AccountUnavailable("no market to sell on: SNIPER_MARKET=replay keeps its prices in the replay's "
                                 "worker (its exit plan closes the position); with SNIPER_MARKET=mexc it sells at "
                                 "MEXC's prices")
    from application.ports import ExchangeAccounts
    from entrypoints.container import TradingMode, mexc_trading_container

    clock = SystemClock()
    mode = TradingMode.LIVE if settings.sniper_live else TradingMode.PAPER
    container = mexc_trading_container(settings, mode, clock)
    try:
        store = await container.get(EventStore)
        close = ClosePosition(store, await container.get(ExchangeAccounts), clock,
                              market=await container.get(MarketData))
        return await close(user_id, position_id, requested_by=f"cli:{settings.sniper_user}")
    finally:
        await container.close()


def render_closure(c: PositionClosure, palette: Palette) -> list[str]:
    v = c.position
    sold = (f"sold {amount(c.sold, places=8)} {v.symbol} at {amount(c.price, places=8)}" if c.sold > 0
            else "nothing sold by hand")
    pnl = f"realised P&L {amount(c.realised_pnl, sign=True)} {v.quote_asset}"
    if c.state == "closing":
        detail = c.detail or "the sell is out, its outcome not known yet"
        text, colour = f"position {v.position_id}: CLOSING: {detail}", WARN
    elif c.already:
        text, colour = f"position {v.position_id} was {c.state} already: {sold}; {pnl}", None
    else:
        text, colour = f"position {v.position_id} {c.state.upper()}: {sold}; {pnl}", signed_colour(c.realised_pnl)
    lines = textwrap.wrap(text, width=WIDTH, subsequent_indent="  ", break_on_hyphens=False)
    lines[0] = palette.paint(lines[0], colour)
    if c.detail and c.state != "closing":
        lines += wrapped("  note", c.detail, label_width=8)
    return lines


# --- history filters ------------------------------------------------------------------------------

def parse_since(value: str, now: datetime) -> datetime:
    """`--since`: an ISO date or time (UTC unless it says otherwise), or an age such as 30m, 12h, 7d."""
    text = value.strip()
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if len(text) >= 2 and text[-1].lower() in units and text[:-1].isdigit():
        return now - timedelta(**{units[text[-1].lower()]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise ConfigurationError(
                f"--since must be a date, an ISO time or an age such as 12h or 7d, got {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    user_id: str | None = None
    symbol: str | None = None
    since: datetime | None = None

    def keeps(self, rec: Recorded, symbol: str) -> bool:
        if self.user_id is not None and rec.user_id not in (self.user_id, "global"):
            return False
        if self.symbol is not None and symbol.upper() != self.symbol.upper():
            return False
        return self.since is None or rec.occurred_at >= self.since


def history_lines(events: Iterable[Recorded], keep: HistoryFilter, wrap: bool = True) -> Iterable[str]:
    """One entry per event kept; with `wrap` (a terminal) wrapped to 100 columns, continuations
    indented. Into a pipe or a file each event stays one line, for grep and scripts."""
    from entrypoints.timeline import line

    symbols: dict[str, str] = {}
    for rec in events:
        text = line(rec, symbols=symbols)  # notes the stream's symbol for the events that do not name it
        symbol = "" if rec.stream_id.startswith("safety-") else symbols.get(rec.stream_id, "")
        if not keep.keeps(rec, symbol):
            continue
        entry = f"#{rec.position:<6} {rec.occurred_at:%Y-%m-%d} {text}"
        if not wrap:
            yield entry
            continue
        yield from textwrap.wrap(entry, width=WIDTH, subsequent_indent=" " * 8, break_long_words=True,
                                 break_on_hyphens=False)


# --- the commands -------------------------------------------------------------------------------

COMMANDS = frozenset({"status", "positions", "targets", "close"})


def add_cockpit_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser("status", help="am I halted (since when, by whom), what do I hold, what did I make "
                                           "today, the agents' health")
    positions = sub.add_parser("positions", help="positions with their P&L (open ones at the current price with "
                                                 "SNIPER_MARKET=mexc)")
    positions.add_argument("--open", dest="open_only", action="store_true", help="only the positions not closed")
    targets = sub.add_parser("targets", help="snipe targets and their state")
    for p in (status, positions, targets):
        p.add_argument("--user", help="whose (default SNIPER_USER)")
        p.add_argument("--json", action="store_true", help="print JSON, as the HTTP API answers it")
    close = sub.add_parser("close", help="close a position now: a market sell of what it holds (paper at MEXC's "
                                         "prices, or live with SNIPER_LIVE=1); refused under a person's emergency stop")
    close.add_argument("position_id", help="a position id such as p-1a2b3c4d5e6f")
    close.add_argument("--user", help="whose position (default SNIPER_USER)")


def add_history_filters(history: argparse.ArgumentParser) -> None:
    history.add_argument("--user", help="only this user's events (and global emergency stops)")
    history.add_argument("--symbol", help="only events about this pair, e.g. NEWUSDT")
    history.add_argument("--since", help="only events from then on: a date, an ISO time, or an age such as 12h or 7d")


def history_filter(args: argparse.Namespace) -> HistoryFilter:
    since = parse_since(args.since, datetime.now(UTC)) if args.since else None
    return HistoryFilter(args.user or None, args.symbol or None, since)


def run_cockpit_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import asyncio

    palette = palette_for(out)
    user_id = (args.user or settings.sniper_user).strip()
    if not user_id:
        raise ConfigurationError("--user must name a user")
    if args.command == "status":
        status, note = asyncio.run(read_status(settings, user_id))
        text = status_json(status) if args.json else "\n".join(
            render_status(status, palette, note, datetime.now(UTC))) + "\n"
    elif args.command == "positions":
        found = asyncio.run(read_positions(settings, user_id, args.open_only))
        text = positions_json(found) if args.json else "\n".join(render_positions(found, palette)) + "\n"
    elif args.command == "targets":
        targets = asyncio.run(read_targets(settings, user_id))
        text = targets_json(targets) if args.json else "\n".join(render_targets(targets, palette)) + "\n"
    else:
        closure = asyncio.run(run_close(settings, user_id, args.position_id))
        text = "\n".join(render_closure(closure, palette)) + "\n"
    out.write(text)
    return 0
