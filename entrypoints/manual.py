"""`sniper snipe`, `sniper reconcile` and `sniper mexc check`: a trader's manual commands against MEXC.

`sniper snipe` is paper trading unless --live is given: market data comes from MEXC (or
whatever MEXC_BASE_URL points at), fills are on paper. With --live, and only then, a real
order goes to MEXC, and it needs MEXC_API_KEY and MEXC_SECRET_KEY.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TextIO

from adapters.clock import SystemClock
from adapters.mexc.errors import Unreachable
from adapters.mexc.rest import MexcRestClient
from application import repository
from application.errors import AmbiguousOutcome, ApplicationError, ConcurrencyConflict, ConfigurationError
from application.ports import EventStore
from application.use_cases.reconcile import ReconcileWithExchange, ReconciliationReport
from application.use_cases.safety import ActivateEmergencyStop, ClearEmergencyStop
from application.use_cases.snipe import ExecuteSnipe, SnipeOutcome
from application.use_cases.targets import CreateSnipeTarget, NewSnipe
from domain.errors import DomainError
from domain.events import Cause
from domain.target import SnipeTarget, TargetStatus, entry_price_cap, target_stream
from domain.values import Symbol, to_decimal
from entrypoints.config import Settings
from entrypoints.container import TradingMode, mexc_trading_container
from entrypoints.timeline import line


@dataclass(frozen=True, slots=True)
class SnipeCommand:
    symbol: Symbol
    quote_amount: Decimal
    at: datetime | None
    live: bool
    exit_strategy: str | None
    max_price: Decimal | None = None  # the entry's price cap (None: the trader's default, else a market buy)


def parse_snipe_command(symbol: str, quote_amount: str, at: str | None, live: bool, exit_strategy: str | None,
                        settings: Settings, max_price: str | None = None) -> SnipeCommand:
    """Check everything before anything is opened or written."""
    try:
        sym = Symbol.parse(symbol)
        amount = to_decimal(quote_amount, "--quote-amount")
    except DomainError as exc:
        raise ConfigurationError(str(exc)) from None
    if amount <= 0:
        raise ConfigurationError(f"--quote-amount must be positive, got {quote_amount}")
    try:
        cap = entry_price_cap(max_price, "--max-price")
    except DomainError as exc:
        raise ConfigurationError(str(exc)) from None
    moment = None
    if at is not None and at != "now":
        try:
            moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(f"--at must be an ISO time such as 2026-11-25T10:00:00Z, got {at!r}") from None
        if moment.tzinfo is None:
            raise ConfigurationError(f"--at must carry a time zone (e.g. ...Z or +01:00), got {at!r}")
    if live and not settings.operator_keys:
        raise ConfigurationError("--live needs MEXC_API_KEY and MEXC_SECRET_KEY; without them only paper trading runs")
    return SnipeCommand(sym, amount, moment, live, exit_strategy, cap)


class SnipeInterrupted(Exception):
    """`sniper snipe` was interrupted (Ctrl-C); the message says what was left and what to do."""


async def run_manual_snipe(settings: Settings, command: SnipeCommand, out: TextIO) -> SnipeOutcome:
    clock = SystemClock(launch_priority=settings.sniper_launch_priority)
    mode = TradingMode.LIVE if command.live else TradingMode.PAPER
    container = mexc_trading_container(settings, mode, clock)
    store: EventStore | None = None
    target_id: str | None = None
    try:
        found: EventStore = await container.get(EventStore)  # typed: dishka's get() of a Protocol is Any
        store = found
        create = await container.get(CreateSnipeTarget)
        # Before trading: agree with the exchange on whatever an earlier run left unfinished.
        write_reconciliation(await (await container.get(ReconcileWithExchange))(resume_before_launch=False), out)
        execute = await container.get(ExecuteSnipe)
        unreachable = await mexc_unreachable(settings)
        launch = command.at or clock.now()
        when = f"{launch:%Y-%m-%d %H:%M:%S.%f}"[:-3]  # milliseconds
        cap = "" if command.max_price is None else f" at most {command.max_price} each"
        out.write(
            f"{'LIVE' if command.live else 'paper'} snipe of {command.symbol} for {command.quote_amount} "
            f"{command.symbol.quote}{cap} at {when} UTC via {settings.mexc_base_url}\n"
        )
        if unreachable is not None:
            out.write(f"warning: {unreachable}; the snipe goes on, and fails unless MEXC answers before its window "
                      "closes\n")
        target_id = await create(NewSnipe(
            settings.sniper_user, command.symbol, launch, command.quote_amount, command.exit_strategy,
            live=command.live, max_entry_price=command.max_price,
        ))
        # The executor records "market buy submitted" as soon as it has its lease, then waits for the
        # launch; started here at once, a snipe hours away would sit `executing` for hours, and an
        # interruption could no longer cancel it. So it starts SNIPER_PREPARE_AHEAD_SECONDS before
        # the launch, as the worker starts it; until then the target is only scheduled.
        await clock.sleep_until(launch - settings.timing.prepare_ahead)
        outcome = await execute(target_id)
        symbols: dict[str, str] = {}
        for rec in await store.load(target_stream(target_id)):
            out.write(line(rec, symbols=symbols) + "\n")
        out.write(f"{outcome.result.value}: {outcome.detail}\n")
        if outcome.fill is not None:
            out.write("The position is recorded; the worker manages its exits (`sniper history "
                      f"{target_id}` shows it).\n")
        return outcome
    except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this task
        if store is None:
            raise SnipeInterrupted("nothing was recorded") from None
        left = await _left_by_interruption(store, target_id, f"cli:{settings.sniper_user}", clock)
        raise SnipeInterrupted(left) from None
    finally:
        await container.close()


async def _left_by_interruption(store: EventStore, target_id: str | None, by: str, clock: SystemClock) -> str:
    """After Ctrl-C: cancel the target while no order can have left, else say what is left."""
    if target_id is None:
        return "no snipe target was created"
    for _ in range(3):  # a worker may record on the target meanwhile: read it again
        target = await repository.get(store, SnipeTarget, target_stream(target_id))
        if target.status not in (TargetStatus.WATCHING, TargetStatus.READY, TargetStatus.SCHEDULED):
            break
        target.cancel("interrupted before its order was sent", by, Cause(clock.now(), target_id))
        try:
            await repository.save(store, target)
        except ConcurrencyConflict:
            continue
        return f"snipe target {target_id} cancelled by {by}; no order was sent"
    if target.status is TargetStatus.EXECUTING:
        until = "its deadline" if target.deadline_at is None else utc_moment(target.deadline_at)
        return (f"snipe target {target_id} is left executing: its market buy may have left. "
                f"Run `sniper reconcile` to settle it: it records the fill if the order landed, else sends it "
                f"while the snipe window is open (until {until}; `sniper halt` first "
                "refuses that) or records it failed")
    return f"snipe target {target_id} is {target.status.value}" + (f": {target.failure}" if target.failure else "")


async def mexc_unreachable(settings: Settings) -> str | None:
    """Why MEXC cannot be reached (DNS, refused, timeout, TLS), from one ping; None when it answers.
    A snipe's own calls would find out too, but only after their retries, in a reply about
    something else."""
    async with MexcRestClient("", "", settings.mexc_base_url, read_attempts=1, order_lane=False) as client:
        try:
            await client.ping()
        except (Unreachable, AmbiguousOutcome) as exc:
            return str(exc).removeprefix("GET /api/v3/ping: ").removesuffix("; not sent").removesuffix(
                "; the request may have been processed")
        except ApplicationError:
            return None  # MEXC answered (with an error the snipe's own calls will report)
    return None


def utc_moment(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def write_reconciliation(report: ReconciliationReport, out: TextIO) -> None:
    """One line per snipe resolved, exit settled or left open, stranger order and problem."""
    for snipe in report.snipes:
        out.write(f"reconciled snipe {snipe.target_id}: {snipe.result.value} ({snipe.detail})\n")
    for target_id in report.snipes_unresolved:
        out.write(f"warning: snipe {target_id} is still executing: its order is unresolved\n")
    for view in report.snipes_pending:
        launch = utc_moment(view.execute_at or view.launch_at)
        if view.status == "scheduled":
            out.write(f"scheduled snipe {view.target_id}: {view.symbol} for {view.user_id}, launch {launch}; "
                      "no order sent yet\n")
        else:
            out.write(f"scheduled snipe {view.target_id}: {view.symbol} for {view.user_id}, launch {launch}; "
                      "recorded as submitted, but no order can leave before its launch: its executor sends it then "
                      "(if that process has stopped, run `sniper reconcile` again once the launch has come)\n")
    for position_id in report.exits_settled:
        out.write(f"settled exit of position {position_id}\n")
    for position_id in report.exits_unresolved:
        out.write(f"warning: exit of position {position_id} is still unresolved\n")
    for order in report.unaccounted_orders:
        out.write(f"warning: open order {order.client_order_id} on {order.symbol} is not ours; left alone\n")
    for problem in report.problems:
        out.write(f"warning: could not reconcile {problem}\n")


async def run_reconcile(settings: Settings, out: TextIO) -> ReconciliationReport:
    """`sniper reconcile`: agree with the exchange on every order an earlier run may have sent.
    LIVE (the real MEXC account) when the keys are set, else paper. No new snipe is started,
    but one left executing is resumed as ExecuteSnipe resumes it: a fill found by its client
    order id is recorded, and an order that never left is sent if its window is still open.
    Snipes whose launch has not come are listed as scheduled, never waited for."""
    mode = TradingMode.LIVE if settings.operator_keys else TradingMode.PAPER
    container = mexc_trading_container(settings, mode, SystemClock())
    try:
        out.write(f"reconciling the trade history with {'MEXC' if mode is TradingMode.LIVE else 'paper'} "
                  f"via {settings.mexc_base_url}\n")
        report = await (await container.get(ReconcileWithExchange))(resume_before_launch=False)
        write_reconciliation(report, out)
        out.write("clean: every order is accounted for\n" if report.clean else "NOT clean: see the warnings above\n")
        return report
    finally:
        await container.close()


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


async def run_mexc_check(settings: Settings, symbol: Symbol, out: TextIO) -> list[Check]:
    """Read-only calls and one `order/test` (validated by MEXC, never matched)."""
    keys = settings.operator_keys
    if keys is None:
        raise ConfigurationError("sniper mexc check needs MEXC_API_KEY and MEXC_SECRET_KEY")
    checks: list[Check] = []
    unreachable = False
    async with MexcRestClient(keys.api_key, keys.secret_key, settings.mexc_base_url,
                              recv_window_ms=settings.mexc_recv_window_ms) as client:

        async def step(name: str, work) -> None:  # noqa: ANN001
            nonlocal unreachable
            if unreachable:
                # Every call would fail the same way (and a timeout takes its time): say so once.
                checks.append(Check(name, False, "not tried: MEXC could not be reached (see above)"))
                out.write(f"[skip] {name}: {checks[-1].detail}\n")
                return
            try:
                detail = await work()
                checks.append(Check(name, True, detail))
            except (ApplicationError, DomainError) as exc:
                checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))
                unreachable = isinstance(exc, (Unreachable, AmbiguousOutcome))
            mark = "ok  " if checks[-1].ok else "FAIL"
            out.write(f"[{mark}] {name}: {checks[-1].detail}\n")

        async def ping() -> str:
            await client.ping()
            return f"{settings.mexc_base_url} answers"

        async def clock() -> str:
            sync = await client.sync_clock()
            return f"offset {sync.offset_ms} ms to exchange time (best round trip {sync.rtt_ns / 1e6:.2f} ms)"

        async def info() -> str:
            symbols = await client.exchange_info()
            return f"{len(symbols)} symbols listed"

        async def api_symbols() -> str:
            return f"{len(await client.default_symbols())} symbols tradable by API"

        async def account() -> str:
            held = {a: b for a, b in (await client.balances()).items() if b.free or b.locked}
            return f"keys accepted; {len(held)} assets held"

        async def order_test() -> str:
            await client.test_order(symbol.code, "BUY", "MARKET", quote_order_qty=Decimal("10"))
            return f"a market buy of 10 {symbol.quote} on {symbol} validates (order/test, nothing traded)"

        for name, work in (("ping", ping), ("clock", clock), ("exchangeInfo", info), ("defaultSymbols", api_symbols),
                           ("account", account), ("order/test", order_test)):
            await step(name, work)
    return checks


async def run_emergency_stop(settings: Settings, scope: str, reason: str | None, out: TextIO) -> int:
    """`sniper halt` / `sniper resume`: a person's emergency stop, per user or global. Halting
    records the stop first (every worker refuses new orders from then on), then cancels the
    open orders of the account: the MEXC one when the keys are set, else paper. Both are
    idempotent: halting an active stop says since when it holds, resuming with none says so."""
    mode = TradingMode.LIVE if settings.operator_keys else TradingMode.PAPER
    container = mexc_trading_container(settings, mode, SystemClock())
    by = f"cli:{settings.sniper_user}"
    try:
        if reason is None:
            if await (await container.get(ClearEmergencyStop))(scope, by):
                out.write(f"emergency stop ({scope}) cleared: trading may resume\n")
            else:
                out.write(f"no emergency stop ({scope}) was active: nothing to clear\n")
            return 0
        result = await (await container.get(ActivateEmergencyStop))(scope, reason, by)
        if result.already_active_since is not None:
            out.write(f"emergency stop ({scope}) already ACTIVE since {utc_moment(result.already_active_since)}: "
                      f"{result.reason}; nothing new recorded\n")
        else:
            out.write(f"emergency stop ({scope}) ACTIVE: {reason}\n")
        out.write(f"{len(result.cancelled_orders)} open order(s) cancelled on {mode.value}\n")
        for failure in result.cancel_failures:
            out.write(f"  NOT cancelled: {failure}\n")
        return 0 if not result.cancel_failures else 1
    finally:
        await container.close()
