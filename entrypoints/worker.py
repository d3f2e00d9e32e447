"""`sniper worker`: the background worker running the agents under the supervisor.

Order of things: reach the store and shared services, reconcile with the exchange (retrying
until it answers: nothing trades before the worker agrees with the exchange on every order
it sent), then run the agents until SIGTERM/SIGINT (or the end of a replay, or --for). A stop
lets snipes and ticks in flight finish within SNIPER_STOP_GRACE_SECONDS.

Markets: `replay` (default) plays the scenario on the paper exchange on an accelerated clock,
each run in its own namespace like the demo; `mexc` follows MEXC's calendar and prices and
fills on paper, or on MEXC itself with SNIPER_LIVE=1 and keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import secrets
import signal
import socket
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TextIO

from dishka import AsyncContainer
from redis.exceptions import RedisError

from adapters.clock import AcceleratedClock, SystemClock
from adapters.memory import InMemoryScheduler
from adapters.mexc.price_stream import MexcPriceStream
from adapters.mexc.streams import MexcMarketStream
from adapters.paper.recordings import BUNDLED_RECORDINGS, RecordingDirectory
from adapters.paper.scenario import Scenario, load_scenario
from adapters.redis import RedisAgentStatusBoard, redis_client
from adapters.scheduling import JobPolicy, JobRunner, Periodic, SaqScheduler, cron_of, job_queue
from adapters.telemetry.otel import OtelTelemetry
from application.agents import (
    CalendarAgent,
    DueJobs,
    PatternDiscoveryAgent,
    PriceStreamAgent,
    ReconciliationAgent,
    RiskManagerAgent,
    SafetyMonitorAgent,
    SimulationAgent,
    StrategyAgent,
)
from application.ai import EnrichListing, ListingBrief, analysis_stream
from application.alerts import Notifier
from application.errors import ConfigurationError, ExchangeError
from application.ports import (
    AgentStatus,
    AgentStatusBoard,
    Cache,
    Clock,
    EventStore,
    ListingFeed,
    LockService,
    MarketData,
    PriceStream,
    Scheduler,
    TraderDirectory,
    WallClock,
)
from application.price_polling import PollCadence, PollPlan
from application.supervisor import AgentSpec, Supervisor, SupervisorPolicy
from application.telemetry import Telemetry
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.backtest import BacktestRequest, RunBacktest
from application.use_cases.listings import EXECUTE_SNIPE, DetectReadyStates, SyncCalendar
from application.use_cases.monitor import MonitorSafety, SafetyLimits
from application.use_cases.positions import ManagePositions
from application.use_cases.reconcile import ReconcileWithExchange, ReconciliationReport
from application.use_cases.safety import ActivateEmergencyStop
from application.use_cases.snipe import ExecuteSnipe
from application.views import ListingView
from domain.listing import ANNOUNCED_CONFIDENCE
from entrypoints.ai import build_enrichment, require_sdks
from entrypoints.config import Settings
from entrypoints.container import TradingMode, mexc_trading_container, paper_trading_container
from entrypoints.demo import build_report, display_user, follow_run, namespaced, render_report
from entrypoints.notifications import run_notifier, trade_notifier
from entrypoints.observability import start_metrics_server
from entrypoints.timeline import line

logger = logging.getLogger(__name__)

# The strategy agent looks for due snipes this often (in the worker's clock).
_STRATEGY_TICK = timedelta(milliseconds=50)
_RECONCILE_RETRY_FIRST = timedelta(seconds=1)
_RECONCILE_RETRY_MAX = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class WorkerExtras:
    """Optional collaborators: AI enrichment and a backtest to simulate. (Alerts and telemetry
    come from the container, configured by the environment.)"""

    enrich: Callable[[ListingView], Awaitable[object]] | None = None
    simulate: Callable[[], Awaitable[str]] | None = None
    simulate_every: timedelta = timedelta(hours=1)


@dataclass(slots=True)
class WorkerRun:
    run_id: str
    reconciliation: ReconciliationReport | None = None
    events: int = 0
    stopped_by: str = ""


def worker_id(settings: Settings) -> str:
    return settings.sniper_worker_id or f"{socket.gethostname()}-{os.getpid()}"


async def run_worker(
    settings: Settings,
    out: TextIO,
    *,
    duration: timedelta | None = None,
    extras: WorkerExtras = WorkerExtras(),
    stop_signals: bool = True,
    run_id: str | None = None,
) -> WorkerRun:
    if extras.enrich is None:
        require_sdks(settings)  # an AI key without its SDK: one line before anything starts
    run = WorkerRun(run_id or secrets.token_hex(3))
    scenario: Scenario | None = None
    clock: Clock
    if settings.sniper_market == "replay":
        scenario = namespaced(load_scenario(settings.scenario_path), run.run_id)
        clock = AcceleratedClock(scenario.start, settings.sniper_replay_speed)
        container = paper_trading_container(settings, scenario, clock)
        where = f"replay of {scenario.name!r} at {settings.sniper_replay_speed:g}x, run {run.run_id}, paper fills"
    else:
        if settings.sniper_live and settings.operator_keys is None:
            raise ConfigurationError("SNIPER_LIVE=1 needs MEXC_API_KEY and MEXC_SECRET_KEY")
        if settings.redis_url is not None:
            _shared_poll_slots(settings)  # refused before anything is reached or recorded
        clock = SystemClock(launch_priority=settings.sniper_launch_priority)
        mode = TradingMode.LIVE if settings.sniper_live else TradingMode.PAPER
        container = mexc_trading_container(settings, mode, clock)
        where = "MEXC market, " + ("LIVE orders" if settings.sniper_live else "paper fills")
    me = worker_id(settings)
    label = (lambda u: display_user(u, run.run_id)) if scenario is not None else (lambda u: u)
    try:
        await container.get(LockService)  # reach shared services before anything is written
        store = await container.get(EventStore)
        board = await container.get(AgentStatusBoard)
        book = await container.get(TradeBook)
        # Logged once the store and Redis answered: a start that fails there is one line, not two.
        from entrypoints.logs import package_version

        logging.getLogger("sniper").info("sniper %s: worker starting (%s: %s)", package_version(), me, where)
        out.write(f"mexc-sniper worker {me}: {where}\n")
        if scenario is not None:
            first = await follow_run(book, store, scenario, run.run_id, out)
        else:
            first = await store.last_position()
            book.position = 0
        stop = asyncio.Event()
        printer = asyncio.create_task(_print_events(store, first, out, label, stop))
        # Traders' notifications: their own task (a hanging channel never holds up a snipe).
        notifier_scope = trade_notifier(settings, store, clock, me)
        notifier = await notifier_scope.__aenter__()
        notifying = asyncio.create_task(run_notifier(notifier, stop)) if notifier is not None else None
        try:
            run.reconciliation = await _reconcile_first(await container.get(ReconcileWithExchange), clock, out, stop)
            if run.reconciliation is None:
                run.stopped_by = "stopped during start-up reconciliation"
                return run
            enrichment = None
            if extras.enrich is None:
                enrichment = build_enrichment(settings, store, clock, await container.get(Cache),
                                              await container.get(Telemetry))
                extras = dataclasses.replace(extras, enrich=_enrich_with(enrichment, store, clock, settings))
            metrics = None
            if settings.sniper_metrics_port:
                metrics = start_metrics_server(await container.get(OtelTelemetry), settings.sniper_metrics_port)
                out.write(f"metrics on :{metrics.port}/metrics\n")
            jobs = contextlib.AsyncExitStack()
            durable: SaqScheduler | None = None
            if settings.redis_url is not None and settings.sniper_market == "mexc":
                # Production: snipes are durable jobs in Redis (SAQ), each run by one worker, and the
                # deployment-wide polls are periodic jobs, each slot run by one worker. Not for a
                # replay: SAQ keeps wall-clock time, a replay runs on an accelerated clock.
                shared_polls = _shared_poll_slots(settings)
                queue = await jobs.enter_async_context(job_queue(settings.redis_url.reveal(), settings.redis_prefix))
                durable = SaqScheduler(queue, policies={EXECUTE_SNIPE: _snipe_job_policy(settings)})
            prices: MexcPriceStream | None = None
            if settings.sniper_market == "mexc":
                market_stream = MexcMarketStream(settings.mexc_ws_url)
                await jobs.enter_async_context(market_stream)
                prices = MexcPriceStream(market_stream)
            supervisor = await _supervisor(container, settings, clock, board, extras, me, durable, prices)
            if durable is not None:
                execute = await container.get(ExecuteSnipe)
                periodic = [
                    Periodic(name, every, functools.partial(supervisor.round, name), timeout=_SHARED_ROUND_TIMEOUT)
                    for name, every in shared_polls.items()
                ]
                grace = timedelta(seconds=settings.sniper_stop_grace_seconds)
                runner = JobRunner(queue, {EXECUTE_SNIPE: execute}, periodic, grace=grace, worker_id=me)
                await runner.start()
                jobs.push_async_callback(runner.stop)
                out.write("snipes are durable jobs on SAQ (Redis): each runs on one worker; "
                          f"{', '.join(shared_polls)} run once per slot across workers\n")
            # The control bot, under its deployment-wide lease.
            if settings.telegram_bot_token and not settings.telegram_webhook_secret:
                jobs.push_async_callback(await _start_telegram_bot(container, settings, out))
            stoppers = _install_stops(supervisor, run, stop_signals)
            if duration is not None:
                stoppers.append(asyncio.create_task(_stop_after(supervisor, run, duration)))
            if scenario is not None:
                stoppers.append(asyncio.create_task(_stop_at_replay_end(supervisor, run, clock, scenario)))
            try:
                await supervisor.run()
            finally:
                await jobs.aclose()  # the job runner lets a snipe in flight finish within the grace
                for task in stoppers:
                    task.cancel()
                _remove_signal_handlers(stop_signals)
                if enrichment is not None:
                    await enrichment.close()
                if metrics is not None:
                    metrics.close()
        finally:
            stop.set()
            await printer
            if notifying is not None:
                await notifying
            await notifier_scope.__aexit__(None, None, None)
        await book.catch_up(store)
        last = await store.last_position()
        run.events = last - first
        out.write(f"worker stopped ({run.stopped_by or 'done'}); {run.events} events recorded this run\n")
        if scenario is not None:
            out.write(render_report(build_report(book, run.run_id, first, last)) + "\n")
        return run
    finally:
        await container.close()


def _enrich_with(enrichment: EnrichListing, store: EventStore, clock: Clock, settings: Settings):  # noqa: ANN202
    """The pattern agent's enrichment of one listing: a brief from what the trade book knows."""

    async def enrich(view: ListingView) -> object:
        lead = view.launch_at - clock.now()
        # Once per listing, and only before its launch: a restarted agent or worker must not pay
        # the providers again for listings already analysed or already trading.
        if lead <= timedelta(0) or await store.load(analysis_stream(view.coin_id)):
            return None
        pattern, confidence = ("ready", Decimal("0.95")) if view.ready else ("announced", ANNOUNCED_CONFIDENCE)
        in_window = timedelta(0) <= lead <= settings.timing.lead_window
        return await enrichment(ListingBrief(view.coin_id, view.symbol, view.ticker, view.launch_at, lead, pattern,
                                             confidence, in_window))

    return enrich


async def _reconcile_first(
    reconcile: ReconcileWithExchange, clock: Clock, out: TextIO, stop: asyncio.Event
) -> ReconciliationReport | None:
    """Nothing trades until this has run once: retried while the exchange does not answer."""
    backoff = _RECONCILE_RETRY_FIRST
    while not stop.is_set():
        try:
            report = await reconcile()
        except (ExchangeError, OSError) as exc:
            out.write(f"start-up reconciliation failed ({exc}); retrying in {backoff.total_seconds():g} s\n")
            await asyncio.sleep(backoff.total_seconds())
            backoff = min(backoff * 2, _RECONCILE_RETRY_MAX)
            continue
        out.write(
            f"start-up reconciliation: {len(report.snipes)} snipe(s) resumed, {len(report.exits_settled)} exit(s) "
            f"settled, {len(report.unaccounted_orders)} order(s) not ours, "
            f"{len(report.snipes_unresolved) + len(report.exits_unresolved)} unresolved"
            + (" - clean" if report.clean else " - NOT clean, the reconciliation agent will retry") + "\n"
        )
        return report
    return None


# A shared round's job outlives the supervisor's own tick timeout, so the supervisor, not SAQ,
# ends a stuck round (and alerts).
_SHARED_ROUND_TIMEOUT = SupervisorPolicy().tick_timeout + timedelta(seconds=30)


def _shared_poll_slots(settings: Settings) -> dict[str, timedelta]:
    """The shared agents and their intervals, each checked to make whole periodic-job slots."""
    polls = {
        "calendar": ("SNIPER_CALENDAR_POLL_SECONDS", timedelta(seconds=settings.sniper_calendar_poll_seconds)),
        "pattern-discovery": ("SNIPER_STATE_POLL_SECONDS", timedelta(seconds=settings.sniper_state_poll_seconds)),
        "reconciliation": ("SNIPER_RECONCILE_POLL_SECONDS", timedelta(seconds=settings.sniper_reconcile_poll_seconds)),
    }
    for name, (var, every) in polls.items():
        try:
            cron_of(every)
        except ValueError:
            raise ConfigurationError(
                f"{var}={every.total_seconds():g}: with REDIS_URL on MEXC, the {name} poll runs once per slot "
                "across workers, so its interval must divide a minute (1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30 s), "
                "an hour (whole minutes) or a day (whole hours)"
            ) from None
    return {name: every for name, (_, every) in polls.items()}


def _snipe_job_policy(settings: Settings) -> JobPolicy:
    t = settings.timing
    # A run lasts from prepare_ahead before launch to the deadline, plus confirming the fill.
    longest = t.prepare_ahead + t.snipe_window + timedelta(seconds=30)
    return JobPolicy(timeout=timedelta(seconds=max(60, int(longest.total_seconds()) + 1)), attempts=3,
                     head_start=timedelta(seconds=2))


class _NothingDue:
    """Due jobs come from the durable queue's runner, not from the strategy agent."""

    def take_due(self, now: datetime) -> list:  # noqa: ANN201
        return []


async def _supervisor(container, settings: Settings, clock: Clock, board: AgentStatusBoard,  # noqa: ANN001
                      extras: WorkerExtras, me: str, durable: SaqScheduler | None = None,
                      prices: PriceStream | None = None) -> Supervisor:
    s = settings
    price_poll = timedelta(milliseconds=s.sniper_price_poll_ms)
    store = await container.get(EventStore)
    book = await container.get(TradeBook)
    scheduler = await container.get(InMemoryScheduler)
    market = await container.get(MarketData)
    traders = await container.get(TraderDirectory)
    timing = await container.get(SnipeTiming)
    sync = await container.get(SyncCalendar)
    detect = await container.get(DetectReadyStates)
    jobs: DueJobs = scheduler
    schedule: Scheduler = scheduler
    if durable is not None:
        detect = DetectReadyStates(store, await container.get(ListingFeed), traders, durable, clock, book, timing)
        jobs, schedule = _NothingDue(), durable
    execute = await container.get(ExecuteSnipe)
    manage = await container.get(ManagePositions)
    reconcile = await container.get(ReconcileWithExchange)
    activate = await container.get(ActivateEmergencyStop)
    notifier = await container.get(Notifier)
    telemetry = await container.get(Telemetry)
    monitor = MonitorSafety(store, market, traders, activate, clock, book,
                            SafetyLimits(s.sniper_error_burst, timedelta(seconds=s.sniper_error_window_seconds),
                                         s.sniper_price_collapse_percent), notifier)
    supervisor: Supervisor

    def spawn(work, name: str):  # noqa: ANN001, ANN202
        return supervisor.spawn(work, name)

    # On MEXC the REST prices of young positions are read faster, and those the WebSocket keeps
    # fresh not at all (application/price_polling.py). A replay reads every price each SNIPER_PRICE_POLL_MS.
    young = timedelta(milliseconds=s.sniper_young_price_poll_ms), timedelta(seconds=s.sniper_young_position_seconds)
    plan = PollPlan(clock, PollCadence(price_poll, *young)) if s.sniper_market == "mexc" else None
    # Intervals are in the worker's clock: a replay's accelerated time stretches them alike,
    # but the strategy agent must not spin: never more often than every 50 ms of real time.
    speed = getattr(clock, "speed", 1.0)
    shared = durable is not None  # the deployment-wide polls: SAQ runs each slot on one worker
    specs = [
        AgentSpec("calendar", lambda: CalendarAgent(sync), timedelta(seconds=s.sniper_calendar_poll_seconds),
                  shared=shared),
        AgentSpec("pattern-discovery", lambda: PatternDiscoveryAgent(detect, store, book, spawn, extras.enrich),
                  timedelta(seconds=s.sniper_state_poll_seconds), shared=shared),
        AgentSpec("strategy", lambda: StrategyAgent(execute, jobs, schedule, store, book, clock, timing, spawn),
                  _STRATEGY_TICK * max(1.0, speed)),
        AgentSpec("risk-manager", lambda: RiskManagerAgent(manage, market, traders, store, book, clock, notifier, plan),
                  price_poll if plan is None else plan.cadence.round_every),
        AgentSpec("safety-monitor", lambda: SafetyMonitorAgent(monitor),
                  timedelta(seconds=s.sniper_safety_poll_seconds)),
        AgentSpec("reconciliation", lambda: ReconciliationAgent(reconcile, clock, notifier),
                  timedelta(seconds=s.sniper_reconcile_poll_seconds), shared=shared),
    ]
    if prices is not None:
        specs.append(AgentSpec("price-stream", lambda: PriceStreamAgent(manage, prices, store, book, plan=plan),
                               timedelta(0)))
    simulate = extras.simulate or _bundled_backtest(
        lambda: snipe_near(store, book, scheduler, clock, lambda: supervisor.in_flight))
    specs.append(AgentSpec("simulation", lambda: SimulationAgent(simulate), extras.simulate_every))
    policy = SupervisorPolicy(stop_grace=timedelta(seconds=s.sniper_stop_grace_seconds))
    supervisor = Supervisor(specs, clock, board, notifier, telemetry, me, policy,
                            wall_clock=await container.get(WallClock), clock_speed=speed)
    return supervisor


_SNIPE_QUIET = timedelta(minutes=2)


async def snipe_near(store: EventStore, book: TradeBook, scheduler: InMemoryScheduler, clock: Clock,
                     in_flight: Callable[[], int]) -> bool:
    """Whether a snipe is in flight here, or due or executing on any worker within _SNIPE_QUIET:
    this worker's own scheduler, and the trade history, which holds what every worker scheduled
    (in SAQ mode the snipe jobs run on whichever worker takes them)."""
    if in_flight():
        return True
    now = clock.now()
    due = scheduler.next_run_at()
    if due is not None and due - now < _SNIPE_QUIET:
        return True
    await book.catch_up(store)
    return any(
        t.status == "executing" or (t.execute_at is not None and abs(t.execute_at - now) < _SNIPE_QUIET)
        for t in book.targets_in({"scheduled", "executing"})
    )


def _bundled_backtest(near: Callable[[], Awaitable[bool]]):  # noqa: ANN202
    """The simulation agent's work: the exit strategies over the bundled recordings, on a
    thread. It costs about a second of CPU, so it never runs near a snipe: the GIL it holds
    could delay an order by milliseconds."""

    async def simulate() -> str:
        if await near():
            return "deferred: a snipe is in flight or due soon"
        report = await asyncio.to_thread(RunBacktest(RecordingDirectory(BUNDLED_RECORDINGS)), BacktestRequest())
        best = max(report.strategies, key=lambda r: r.total_pnl)
        return (f"backtest over {report.recordings} recordings: best {best.name} {best.total_pnl:+.2f} "
                f"(hit rate {best.hit_rate or 0:.0%}, max drawdown {best.max_drawdown:.2f})")

    return simulate


def _install_stops(supervisor: Supervisor, run: WorkerRun, stop_signals: bool) -> list[asyncio.Task[None]]:
    if stop_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            def on_signal(name: str = sig.name) -> None:
                if not supervisor.stopping:
                    run.stopped_by = f"{name}: finishing work in flight"
                    logger.warning("%s received: finishing %d piece(s) of work in flight", name, supervisor.in_flight)
                supervisor.stop()
            loop.add_signal_handler(sig, on_signal)
    return []


def _remove_signal_handlers(stop_signals: bool) -> None:
    if stop_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _stop_after(supervisor: Supervisor, run: WorkerRun, duration: timedelta) -> None:
    await asyncio.sleep(duration.total_seconds())
    run.stopped_by = run.stopped_by or f"ran for {duration.total_seconds():g} s"
    supervisor.stop()


async def _stop_at_replay_end(supervisor: Supervisor, run: WorkerRun, clock: Clock, scenario: Scenario) -> None:
    await clock.sleep_until(scenario.end)
    run.stopped_by = run.stopped_by or "end of the replay"
    supervisor.stop()


async def _print_events(store: EventStore, after: int, out: TextIO, label, stop: asyncio.Event) -> None:  # noqa: ANN001
    """Print each event as it is recorded (what an operator watching the worker wants to see)."""
    symbols: dict[str, str] = {}
    printed = after
    while True:
        stopping = stop.is_set()
        try:
            for rec in await store.read_all(after=printed):
                out.write(line(rec, label, symbols) + "\n")
                printed = rec.position or printed
            out.flush()
        except Exception:  # noqa: BLE001 - printing is a view: never stop the worker for it
            logger.warning("could not print recorded events", exc_info=True)
        if stopping:
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


async def _start_telegram_bot(
    container: AsyncContainer, settings: Settings, out: TextIO,
) -> Callable[[], Awaitable[None]]:
    """Start the Telegram bot beside the agents; what stops it. A bot that fails is logged and the
    worker trades on: Telegram is a cockpit, never in the way of a snipe."""
    from entrypoints.telegram import run_bot

    stop = asyncio.Event()
    task = asyncio.create_task(run_bot(container, settings, stop, out), name="telegram-bot")

    async def stop_bot() -> None:
        stop.set()
        try:
            await task
        except Exception:  # noqa: BLE001 - reported here, never raised into the worker's stop
            logger.exception("telegram bot stopped with an error")

    return stop_bot


# --- `sniper agents`: the heartbeats, for operators and container health checks ------------

async def read_agent_statuses(settings: Settings) -> list[AgentStatus]:
    """The heartbeats every worker published to Redis."""
    if settings.redis_url is None:
        raise ConfigurationError(
            "agent heartbeats are shared through Redis: set REDIS_URL (without it a worker keeps them in its process)"
        )
    client = redis_client(settings.redis_url.reveal())
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            raise ConfigurationError(f"REDIS_URL cannot be reached: {exc}") from None
        return await RedisAgentStatusBoard(client, settings.redis_prefix).statuses()
    finally:
        await client.aclose()


def render_agent_statuses(statuses: list[AgentStatus], now: datetime) -> str:
    header = ("worker", "agent", "state", "last beat", "restarts", "detail")
    rows = [
        (s.worker_id, s.name, "ok" if s.is_current(now) else ("stale" if s.healthy else "DOWN"),
         f"{max(0, int((now - s.last_beat_at).total_seconds()))} s ago", str(s.restarts), s.detail[:80])
        for s in statuses
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows])
