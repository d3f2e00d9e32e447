"""`sniper demo`: the worker's loop over a replay scenario, in accelerated (virtual) time.

Each run plays in its own namespace (`<coin>.<run>`, `<user>.<run>`), so runs never
collide in one store and a rerun prints the same story.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TextIO

import msgspec

from adapters.clock import ManualClock
from adapters.memory import InMemoryScheduler
from adapters.paper.exchange import PaperExchange
from adapters.paper.scenario import Scenario
from application import repository
from application.ports import EventStore, LockService
from application.trade_book import TradeBook
from application.use_cases.listings import EXECUTE_SNIPE, DetectReadyStates, SyncCalendar
from application.use_cases.positions import ManagePositions
from application.use_cases.snipe import ExecuteSnipe
from domain.position import position_id_for
from domain.safety import GLOBAL_SCOPE, SafetySwitch, safety_stream
from entrypoints.config import Settings
from entrypoints.container import paper_trading_container
from entrypoints.timeline import fmt, line, signed


@dataclass(frozen=True, slots=True)
class PnlRow:
    user_id: str
    symbol: str
    target_id: str
    outcome: str
    cost: Decimal
    proceeds: Decimal
    fees: Decimal
    realised_pnl: Decimal
    exits: str
    note: str


@dataclass(frozen=True, slots=True)
class DemoReport:
    run_id: str
    rows: list[PnlRow]
    events: int
    first_position: int
    last_position: int

    @property
    def realised_pnl(self) -> Decimal:
        return sum((r.realised_pnl for r in self.rows), Decimal(0))


def namespaced(scenario: Scenario, run_id: str) -> Scenario:
    listings = [msgspec.structs.replace(spec, coin_id=f"{spec.coin_id}.{run_id}") for spec in scenario.listings]
    traders = [msgspec.structs.replace(t, user_id=f"{t.user_id}.{run_id}") for t in scenario.traders]
    return msgspec.structs.replace(scenario, listings=listings, traders=traders)


def display_user(user_id: str, run_id: str) -> str:
    return user_id.removesuffix(f".{run_id}")


async def follow_run(book: TradeBook, store: EventStore, scenario: Scenario, run_id: str, out: TextIO) -> int:
    """Point the book of a replay run at this run's events only (its traders are new users, so
    nothing earlier is theirs), with the emergency stops already in force: the global one, and a
    person's stop of a trader the run stands in for (`sniper halt --user alice` holds for
    `alice.<run>`). Each is said in the output. Returns where the run's events begin."""
    first = await store.last_position()
    book.position = first
    suffix = f".{run_id}"
    book.stop_aliases = lambda user_id: (user_id.removesuffix(suffix),) if user_id.endswith(suffix) else ()
    people = sorted({display_user(t.user_id, run_id) for t in scenario.traders})
    for scope in (GLOBAL_SCOPE, *people):
        switch = await repository.find(store, SafetySwitch, safety_stream(scope))
        if switch is not None and switch.active:
            book.stops[scope] = switch.reason or ""
            whom = "every trader" if scope == GLOBAL_SCOPE else f"{scope} ({scope}{suffix} here)"
            out.write(f"emergency stop ({scope}) is ACTIVE: {switch.reason}; this run holds it for {whom} "
                      f"(`sniper resume{' --global' if scope == GLOBAL_SCOPE else f' --user {scope}'}` clears it)\n")
    return first


async def run_demo(settings: Settings, scenario: Scenario, run_id: str, out: TextIO) -> DemoReport:
    world = namespaced(scenario, run_id)
    clock = ManualClock(world.start)
    container = paper_trading_container(settings, world, clock)
    try:
        await container.get(LockService)  # reach shared services before writing anything
        store = await container.get(EventStore)
        paper = await container.get(PaperExchange)
        scheduler = await container.get(InMemoryScheduler)
        sync_calendar = await container.get(SyncCalendar)
        detect_ready = await container.get(DetectReadyStates)
        execute_snipe = await container.get(ExecuteSnipe)
        manage = await container.get(ManagePositions)
        book = await container.get(TradeBook)

        out.write(f"mexc-sniper demo: scenario {scenario.name!r}, run {run_id}, paper exchange, "
                  f"{settings_store(settings)}\n")
        first = await follow_run(book, store, world, run_id, out)
        printed = first
        symbols: dict[str, str] = {}
        label = lambda u: display_user(u, run_id)  # noqa: E731
        out.write(f"{scenario.description}\n\n" if scenario.description else "\n")

        async def flush() -> None:
            nonlocal printed
            for rec in await store.read_all(after=printed):
                out.write(line(rec, label, symbols) + "\n")
                printed = rec.position or printed

        next_calendar = next_states = world.start
        last_tick_at = world.start - timedelta(microseconds=1)
        while clock.now() <= world.end:
            now = clock.now()
            if now >= next_calendar:
                await sync_calendar()
                next_calendar = now + timedelta(seconds=settings.sniper_calendar_poll_seconds)
            if now >= next_states:
                await detect_ready()
                next_states = now + timedelta(seconds=settings.sniper_state_poll_seconds)
            due = [job for job in scheduler.take_due(clock.now()) if job.kind == EXECUTE_SNIPE]
            if due:
                # In the order the targets were created, not by target id (random per run): the
                # turns the snipes take, and so the timeline, are the same in every run.
                await book.catch_up(store)
                created = {target_id: i for i, target_id in enumerate(book.targets)}
                due.sort(key=lambda job: (job.run_at, created.get(job.key, len(created))))
                # Snipes of the same launch run side by side, as the worker runs them.
                await clock.run_together(execute_snipe(job.key) for job in due)
            for tick in paper.ticks_between(last_tick_at, clock.now()):
                await manage.on_tick(tick)
            last_tick_at = clock.now()
            await flush()
            upcoming = [next_calendar, next_states, world.end + timedelta(microseconds=1)]
            if (next_run := scheduler.next_run_at()) is not None:
                upcoming.append(next_run)
            if ticks := paper.ticks_between(last_tick_at, world.end):
                upcoming.append(ticks[0].at)
            clock.set(max(min(upcoming), clock.now()))

        await book.catch_up(store)
        report = build_report(book, run_id, first, await store.last_position())
        out.write("\n" + render_report(report) + "\n")
        return report
    finally:
        await container.close()


def settings_store(settings: Settings) -> str:
    url = settings.store_url
    if url.startswith("sqlite"):
        return f"history in {url.split(':///', 1)[1]}"
    if url == "memory://":
        return "history in memory (not kept)"
    return "history in Postgres"


def build_report(book: TradeBook, run_id: str, first: int, last: int) -> DemoReport:
    rows = []
    for target in sorted(book.targets.values(), key=lambda t: (t.launch_at, t.user_id)):
        if not target.user_id.endswith(f".{run_id}"):
            continue
        pos = book.positions.get(position_id_for(target.target_id))
        if pos is None:
            rows.append(PnlRow(display_user(target.user_id, run_id), target.symbol, target.target_id, target.status,
                               Decimal(0), Decimal(0), Decimal(0), Decimal(0), "", target.reason or ""))
            continue
        exits = " ".join(_short_exit(e) for e in pos.exits)
        outcome = "closed" if pos.status == "closed" else f"open ({fmt(pos.remaining)} left)"
        rows.append(PnlRow(display_user(target.user_id, run_id), target.symbol, target.target_id, outcome,
                           pos.cost, pos.proceeds, pos.fees, pos.realised_pnl, exits, ""))
    return DemoReport(run_id, rows, last - first, first, last)


def _short_exit(name: str) -> str:
    return {"TakeProfitHit": "TP", "StopLossHit": "SL", "TrailingStopHit": "TS", "MaxHoldTimeReached": "TIME",
            "EmergencyExitFilled": "EMERGENCY", "ManualExitFilled": "MANUAL"}.get(name, name)


def render_report(report: DemoReport) -> str:
    header = ("user", "symbol", "target", "outcome", "cost", "proceeds", "fees", "realised P&L", "exits / reason")
    body = [
        (r.user_id, r.symbol, r.target_id, r.outcome,
         fmt(r.cost, 4) if r.cost else "-", fmt(r.proceeds, 4) if r.proceeds else "-",
         fmt(r.fees, 4) if r.fees else "-", signed(r.realised_pnl) if r.cost else "-",
         r.exits or _clip(r.note, 60))
        for r in report.rows
    ]
    total = sum((r.realised_pnl for r in report.rows), Decimal(0))
    cost = sum((r.cost for r in report.rows), Decimal(0))
    body.append(("TOTAL", "", "", "", fmt(cost, 4), "", "", signed(total), ""))
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    numeric = {4, 5, 6, 7}

    def render(row: tuple) -> str:
        cells = enumerate(zip(row, widths, strict=True))
        return "  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w) for i, (c, w) in cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = ["Final P&L (USDT, exact; fees included in P&L)", render(header), rule, *map(render, body[:-1]), rule,
             render(body[-1])]
    lines.append(f"{report.events} events recorded (positions {report.first_position + 1}..{report.last_position}); "
                 f"`sniper history TARGET_ID` shows one target's history.")
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
