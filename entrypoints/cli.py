"""The `sniper` command.

Errors of configuration, input or lookup end the program with one line on stderr that
names the problem, and a non-zero exit code; nothing is written before the input is known
to be good.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from pathlib import Path
from typing import TextIO

from adapters.eventstore.database import StoreUnavailable
from adapters.paper.scenario import load_scenario
from application.errors import ApplicationError, ConfigurationError, NotFound
from application.use_cases.queries import GetAuditTrail, GetTargetHistory
from domain.errors import DomainError
from entrypoints.config import load_settings, log_settings
from entrypoints.container import history_container
from entrypoints.demo import run_demo

EXIT_USAGE = 2
EXIT_FAILED = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sniper",
                                     description="Snipe new MEXC spot listings (paper trading by default).")
    parser.add_argument("-V", "--version", action="version", version=f"sniper {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="replay a listing scenario in accelerated time on the paper exchange")
    demo.add_argument("--scenario", type=Path, help="scenario file (default: SNIPER_SCENARIO or the bundled demo)")
    demo.add_argument("--run-id", help="namespace for this run (default: random)")

    history = sub.add_parser("history", help="print recorded events: one target's, or all (filtered by --user, "
                                             "--symbol, --since)")
    which = history.add_mutually_exclusive_group()
    which.add_argument("target_id", nargs="?", help="a target id such as t-1a2b3c4d5e6f")
    which.add_argument("--all", action="store_true",
                       help="every event in the store, in order (the default with a filter)")
    from entrypoints.cockpit import add_cockpit_arguments, add_history_filters

    add_history_filters(history)
    add_cockpit_arguments(sub)

    snipe = sub.add_parser("snipe", help="snipe one pair now or at a time (paper unless --live)")
    snipe.add_argument("symbol", help="the pair, e.g. NEWUSDT")
    snipe.add_argument("--quote-amount", required=True, help="how much quote asset to spend, e.g. 10.01")
    snipe.add_argument("--at", help="launch time, ISO 8601 with a zone (default: now)")
    snipe.add_argument("--exit-strategy", help="exit plan name (default: the trader's)")
    snipe.add_argument("--max-price", help="the highest price to pay, e.g. 0.0123: an IMMEDIATE_OR_CANCEL limit buy "
                                           "at it instead of a market buy (default: the trader's setting, else none)")
    snipe.add_argument("--live", action="store_true", help="send a REAL order to MEXC (needs MEXC_API_KEY/SECRET)")

    sub.add_parser("reconcile", help="settle the snipes and exits an earlier run left unfinished, by asking the "
                                     "exchange (LIVE with MEXC keys, else paper); exit 1 unless all is accounted for")

    mexc = sub.add_parser("mexc", help="MEXC account tools")
    mexc_sub = mexc.add_subparsers(dest="mexc_command", required=True, metavar="TOOL")
    check = mexc_sub.add_parser("check", help="read-only calls and order/test with your keys; trades nothing")
    check.add_argument("--symbol", default="BTCUSDT", help="pair for order/test (default BTCUSDT)")

    worker = sub.add_parser("worker", help="run the agents (calendar, pattern discovery, strategy, risk manager, "
                                           "safety monitor, reconciliation) until SIGTERM; paper unless SNIPER_LIVE=1")
    worker.add_argument("--for", dest="duration", type=float, metavar="SECONDS",
                        help="stop after this many seconds (default: until SIGTERM, or the end of a replay)")
    agents = sub.add_parser("agents", help="the workers' agents and their last heartbeats (needs REDIS_URL); "
                                           "exit 1 when one is down or stale")
    agents.add_argument("--worker", help="only this worker's agents (SNIPER_WORKER_ID)")
    halt = sub.add_parser("halt", help="emergency stop: refuse new orders and cancel open ones, for one user or all")
    halt.add_argument("--reason", required=True, help="why (recorded, shown to whoever clears it)")
    resume = sub.add_parser("resume", help="clear an emergency stop")
    for p in (halt, resume):
        who = p.add_mutually_exclusive_group()
        who.add_argument("--user", help="the user whose trading stops (default SNIPER_USER)")
        who.add_argument("--global", dest="everyone", action="store_true", help="every user")
    sub.add_parser("telegram", help="run the Telegram control bot alone until SIGTERM (TELEGRAM_BOT_TOKEN; "
                                    "`sniper worker` runs it too when the token is set)")
    sub.add_parser("migrate", help="bring the database schema (DATABASE_URL) to this version; safe to repeat")
    sub.add_parser("config", help="list every environment variable with its default and current value")
    serve = sub.add_parser("serve", help="run the multi-user HTTP API (OpenAPI at /schema) until SIGTERM")
    serve.add_argument("--host", help="listen address (default SNIPER_HTTP_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default SNIPER_HTTP_PORT, 8080)")
    from entrypoints.init import add_init_arguments

    add_init_arguments(sub.add_parser("init", help="write docker/.env, which docker/compose.yaml reads, with a fresh "
                                                   "ENCRYPTION_KEY (mode 0600; never replaces one without --force)"))
    from entrypoints.keys import add_keys_arguments

    add_keys_arguments(sub.add_parser("keys", help="credential encryption keys: `rotate` re-encrypts every stored "
                                                   "credential under ENCRYPTION_KEY, `new` prints a fresh key"))

    from entrypoints.backtest import add_backtest_arguments

    add_backtest_arguments(sub.add_parser("backtest", help="run the exit strategies over recorded listings; "
                                                           "print P&L, hit rate and drawdown; write an equity chart"))
    return parser


def _version() -> str:
    from entrypoints.logs import package_version

    return package_version()


# Commands that run until stopped: they log at INFO unless SNIPER_LOG_LEVEL says otherwise.
LONG_RUNNING = frozenset({"serve", "worker", "telegram"})


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        code = _run(argv, out, err)
        out.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`sniper history | head -1`): what it wanted was printed. Stop quietly,
        # with stdout pointed at /dev/null so the interpreter's last flush does not fail again.
        if out is sys.stdout:
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return 0


def _run(argv: list[str] | None, out: TextIO, err: TextIO) -> int:
    args = _parser().parse_args(argv)
    try:
        from entrypoints.logs import configure_logging

        configure_logging(log_settings(), long_running=args.command in LONG_RUNNING)
        if args.command == "demo":
            return _demo(args, out)
        if args.command == "history":
            return _history(args, out)
        if args.command in ("status", "positions", "targets", "close"):
            from entrypoints.cockpit import run_cockpit_command

            return run_cockpit_command(args, load_settings(), out)
        if args.command == "config":
            return _config(out)
        if args.command == "serve":
            return _serve(args, out)
        if args.command == "migrate":
            return _migrate(out)
        if args.command == "snipe":
            return _snipe(args, out, err)
        if args.command == "reconcile":
            return _reconcile(out)
        if args.command == "mexc":
            return _mexc_check(args, out)
        if args.command == "worker":
            return _worker(args, out)
        if args.command == "agents":
            return _agents(args, out)
        if args.command == "telegram":
            from entrypoints.telegram import run_telegram

            asyncio.run(run_telegram(load_settings(), out))
            return 0
        if args.command in ("halt", "resume"):
            return _halt(args, out)
        if args.command == "init":
            from entrypoints.init import run_init

            return run_init(args, out)
        if args.command == "keys":
            from entrypoints.keys import run_keys_command

            return run_keys_command(args, out)
        if args.command == "backtest":
            from entrypoints.backtest import run_backtest_command

            return run_backtest_command(args, out)
    except StoreUnavailable as exc:  # from any command that opens the store
        err.write(f"sniper: DATABASE_URL: {exc}\n")
        return EXIT_USAGE
    except ConfigurationError as exc:
        err.write(f"sniper: {exc}\n")
        return EXIT_USAGE
    except NotFound as exc:
        err.write(f"sniper: {exc}\n")
        return EXIT_FAILED
    except (ApplicationError, DomainError) as exc:
        err.write(f"sniper: {type(exc).__name__}: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.write("sniper: interrupted\n")
        return 130
    return EXIT_USAGE


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    settings = load_settings()
    scenario = load_scenario(args.scenario or settings.scenario_path)
    run_id = args.run_id or secrets.token_hex(3)
    if not run_id.isalnum() or len(run_id) > 12:
        raise ConfigurationError(f"--run-id must be 1-12 letters or digits, got {run_id!r}")
    asyncio.run(run_demo(settings, scenario, run_id, out))
    return 0


def _history(args: argparse.Namespace, out: TextIO) -> int:
    from entrypoints.cockpit import history_filter, history_lines, is_terminal

    settings = load_settings()
    keep = history_filter(args)
    if args.target_id is None and not args.all and keep == type(keep)():
        raise ConfigurationError("sniper history needs a target id, --all, or a filter (--user, --symbol, --since)")

    async def run() -> int:
        container = history_container(settings)
        try:
            if args.target_id is None:
                events = await (await container.get(GetAuditTrail))()
            else:
                events = await (await container.get(GetTargetHistory))(args.target_id)
        finally:
            await container.close()
        shown = 0
        for text in history_lines(events, keep, wrap=is_terminal(out)):
            out.write(text + "\n")
            shown += 1
        if not shown:
            out.write("no events recorded yet\n" if not events else "no events match\n")
        return 0

    return asyncio.run(run())


def _snipe(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from entrypoints.manual import SnipeInterrupted, parse_snipe_command, run_manual_snipe

    settings = load_settings()
    command = parse_snipe_command(args.symbol, args.quote_amount, args.at, args.live, args.exit_strategy, settings,
                                  max_price=args.max_price)
    try:
        outcome = asyncio.run(run_manual_snipe(settings, command, out))
    except SnipeInterrupted as exc:
        err.write(f"sniper: interrupted: {exc}\n")
        return 130
    return 0 if outcome.result.value == "filled" else EXIT_FAILED


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from entrypoints.http.serve import serve

    settings = load_settings()
    if args.port is not None and not (1 <= args.port <= 65_535):
        raise ConfigurationError(f"--port must be between 1 and 65535, got {args.port}")
    asyncio.run(serve(settings, out, host=args.host, port=args.port))
    return 0


def _worker(args: argparse.Namespace, out: TextIO) -> int:
    from datetime import timedelta

    from entrypoints.worker import run_worker

    settings = load_settings()
    if args.duration is not None and not (0 < args.duration <= 30 * 86_400):
        raise ConfigurationError(f"--for must be between 0 and 30 days in seconds, got {args.duration:g}")
    duration = None if args.duration is None else timedelta(seconds=args.duration)
    asyncio.run(run_worker(settings, out, duration=duration))
    return 0


def _agents(args: argparse.Namespace, out: TextIO) -> int:
    from datetime import UTC, datetime

    from entrypoints.worker import read_agent_statuses, render_agent_statuses

    statuses = asyncio.run(read_agent_statuses(load_settings()))
    if args.worker:
        statuses = [s for s in statuses if s.worker_id == args.worker]
    if not statuses:
        out.write("no agent has reported yet" + (f" for worker {args.worker}" if args.worker else "") + "\n")
        return EXIT_FAILED
    now = datetime.now(UTC)
    out.write(render_agent_statuses(statuses, now) + "\n")
    return 0 if all(s.is_current(now) for s in statuses) else EXIT_FAILED


def _halt(args: argparse.Namespace, out: TextIO) -> int:
    from entrypoints.manual import run_emergency_stop

    settings = load_settings()
    scope = "global" if args.everyone else (args.user or settings.sniper_user)
    reason = args.reason if args.command == "halt" else None
    if reason is not None and not reason.strip():
        raise ConfigurationError("--reason must say why")
    return asyncio.run(run_emergency_stop(settings, scope, reason, out))


def _reconcile(out: TextIO) -> int:
    from entrypoints.manual import run_reconcile

    settings = load_settings()
    report = asyncio.run(run_reconcile(settings, out))
    return 0 if report.clean else EXIT_FAILED


def _mexc_check(args: argparse.Namespace, out: TextIO) -> int:
    from domain.values import Symbol
    from entrypoints.manual import run_mexc_check

    settings = load_settings()
    try:
        symbol = Symbol.parse(args.symbol)
    except DomainError as exc:
        raise ConfigurationError(str(exc)) from None
    checks = asyncio.run(run_mexc_check(settings, symbol, out))
    return 0 if all(c.ok for c in checks) else EXIT_FAILED


def _migrate(out: TextIO) -> int:
    from adapters.eventstore.migrate import upgrade
    from adapters.eventstore.sqlalchemy_store import open_engine

    settings = load_settings()
    if settings.store_url == "memory://":
        out.write("memory:// keeps nothing: there is no schema to migrate\n")
        return 0

    async def run() -> tuple[str | None, str]:
        engine = await open_engine(settings.store_url)
        try:
            return await upgrade(engine)
        finally:
            await engine.dispose()

    before, after = asyncio.run(run())
    if before == after:
        out.write(f"schema already at {after}\n")
    else:
        out.write(f"schema migrated from {before or 'nothing'} to {after}\n")
    return 0


def _config(out: TextIO) -> int:
    from entrypoints.config import describe

    out.write(describe())  # checks every variable first: a bad value fails here with its name
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
