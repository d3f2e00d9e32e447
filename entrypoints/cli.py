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

from adapters.paper.scenario import load_scenario
from application.errors import ApplicationError, ConfigurationError, NotFound
from application.use_cases.queries import GetAuditTrail, GetTargetHistory
from domain.errors import DomainError
from entrypoints.config import ENV_VARS, load_settings
from entrypoints.container import history_container
from entrypoints.demo import run_demo
from entrypoints.timeline import line

EXIT_USAGE = 2
EXIT_FAILED = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sniper", description="Snipe new MEXC spot listings (paper trading by default).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="replay a listing scenario in accelerated time on the paper exchange")
    demo.add_argument("--scenario", type=Path, help="scenario file (default: SNIPER_SCENARIO or the bundled demo)")
    demo.add_argument("--run-id", help="namespace for this run (default: random)")

    history = sub.add_parser("history", help="print recorded events: one target's, or all")
    which = history.add_mutually_exclusive_group(required=True)
    which.add_argument("target_id", nargs="?", help="a target id such as t-1a2b3c4d5e6f")
    which.add_argument("--all", action="store_true", help="every event in the store, in order")

    sub.add_parser("migrate", help="bring the database schema (DATABASE_URL) to this version; safe to repeat")
    sub.add_parser("config", help="list every environment variable with its default and current value")
    return parser


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args, out)
        if args.command == "history":
            return _history(args, out)
        if args.command == "config":
            return _config(out)
        if args.command == "migrate":
            return _migrate(out)
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
    settings = load_settings()

    async def run() -> int:
        container = history_container(settings)
        try:
            if args.all:
                events = await (await container.get(GetAuditTrail))()
            else:
                events = await (await container.get(GetTargetHistory))(args.target_id)
        finally:
            await container.close()
        symbols: dict[str, str] = {}
        for rec in events:
            out.write(f"#{rec.position:<6} {rec.occurred_at:%Y-%m-%d} {line(rec, symbols=symbols)}\n")
        if not events:
            out.write("no events recorded yet\n")
        return 0

    return asyncio.run(_translate_store_errors(run()))


async def _translate_store_errors(work):  # noqa: ANN001, ANN202
    try:
        return await work
    except OSError as exc:
        raise ConfigurationError(f"cannot open the trade history: {exc}") from None


def _migrate(out: TextIO) -> int:
    from adapters.eventstore.migrate import upgrade
    from adapters.eventstore.sqlalchemy_store import make_engine

    settings = load_settings()
    if settings.database_url == "memory://":
        out.write("memory:// keeps nothing: there is no schema to migrate\n")
        return 0

    async def run() -> tuple[str | None, str]:
        engine = make_engine(settings.database_url)
        try:
            return await upgrade(engine)
        finally:
            await engine.dispose()

    before, after = asyncio.run(_translate_store_errors(run()))
    if before == after:
        out.write(f"schema already at {after}\n")
    else:
        out.write(f"schema migrated from {before or 'nothing'} to {after}\n")
    return 0


def _config(out: TextIO) -> int:
    import os

    load_settings()  # validates: a bad value fails here with its name
    for var in ENV_VARS:
        current = os.environ.get(var.name)
        shown = "(default)" if current is None else ("***" if "PASSWORD" in var.name else current)
        out.write(f"{var.name}={var.default}\n    {var.meaning}\n    current: {shown}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
