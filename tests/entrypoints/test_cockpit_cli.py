"""Issue 15 in a terminal: `sniper status`, `positions`, `targets` (tables within 100 columns,
colour on a terminal only, NO_COLOR honoured, --json), `sniper close`, the filters of `sniper
history`, and a reader that goes away (`sniper history | head -1`: no traceback, exit 0)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.clock import ManualClock
from adapters.eventstore.migrate import ensure_schema
from adapters.eventstore.sqlalchemy_store import SqlEventStore, open_engine
from application.trade_book import TradeBook
from application.use_cases.safety import ActivateEmergencyStop
from entrypoints.cli import main
from tests.fakes.mexc_http import FakeMexcServer, FakeSymbol
from tests.http.support import seed_position
from tests.mexc.support import on_own_loop

ROOT = Path(__file__).resolve().parents[2]
SNIPER = Path(sys.executable).with_name("sniper")
DAY = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a fixed day: nothing here depends on today's


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(*argv: str, out: io.StringIO | None = None) -> tuple[int, str, str]:
    out = out if out is not None else io.StringIO()
    err = io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


async def _seed(url: str) -> dict[str, str]:
    engine = await open_engine(url)
    try:
        await ensure_schema(engine, initialise_empty=True)
        store = SqlEventStore(engine)
        _, alice_new = await seed_position(store, "alice", "NEW", DAY)
        _, alice_old = await seed_position(store, "alice", "OLDCOINLONGNAME1", DAY - timedelta(days=3))
        _, bob_new = await seed_position(store, "bob", "NEW", DAY)
        stop = ActivateEmergencyStop(store, _NoOrders(), ManualClock(DAY + timedelta(hours=1)), TradeBook())
        await stop("bob", "a very long reason " * 8, "bob")
        return {"alice_new": alice_new, "alice_old": alice_old, "bob_new": bob_new}
    finally:
        await engine.dispose()


async def _seed_many(url: str, count: int) -> None:
    engine = await open_engine(url)
    try:
        await ensure_schema(engine, initialise_empty=True)
        store = SqlEventStore(engine)
        for i in range(count):
            await seed_position(store, "alice", f"C{i}", DAY)
    finally:
        await engine.dispose()


class _NoOrders:
    async def open_orders(self, symbol=None) -> list:  # noqa: ANN001
        return []


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A trade history in SQLite: alice's two open positions, bob's, and bob's emergency stop."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'cockpit.db'}"
    ids = asyncio.run(_seed(url))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SNIPER_USER", "alice")
    for name in ("NO_COLOR", "TERM", "SNIPER_MARKET", "SNIPER_LIVE", "REDIS_URL", "MEXC_API_KEY", "MEXC_SECRET_KEY",
                 "MEXC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return {"url": url, **ids}


def assert_fits(text: str) -> None:
    assert all(len(line) <= 100 for line in text.splitlines()), max(text.splitlines(), key=len)


class TestStatus:
    def test_answers_halted_holdings_and_pnl_in_one_command(self, history: dict[str, str]) -> None:
        code, out, err = run("status")
        assert (code, err) == (0, ""), err
        assert out.startswith("alice at ")
        assert "trading    not halted" in out and "holding    2 open positions, 20.02 still invested" in out
        assert history["alice_new"] in out and history["alice_old"] in out and history["bob_new"] not in out
        assert "REDIS_URL is unset" in out
        assert "\x1b[" not in out  # not a terminal: no colour
        assert_fits(out)

    def test_a_halted_user_sees_who_stopped_it_and_when(self, history: dict[str, str]) -> None:
        code, out, _ = run("status", "--user", "bob")
        assert code == 0
        assert "trading    HALTED: emergency stop pressed by bob at 2026-11-25 11:00:00 UTC: a very long" in out
        assert_fits(out)

    def test_json_is_the_apis_shape(self, history: dict[str, str]) -> None:
        code, out, _ = run("status", "--user", "bob", "--json")
        body = json.loads(out)
        assert code == 0 and body["halted"] is True and body["stops"][0]["by"] == "bob"
        assert [p["position_id"] for p in body["open_positions"]] == [history["bob_new"]]
        assert body["open_positions"][0]["current_price"] is None  # a replay's prices are not here
        assert body["open_exposure"] == "10.01"

    def test_colour_on_a_terminal_and_never_with_no_color(self, history: dict[str, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
        code, out, _ = run("status", "--user", "bob", out=Terminal())
        assert code == 0 and "\x1b[31m" in out  # HALTED in red
        monkeypatch.setenv("NO_COLOR", "1")
        code, out, _ = run("status", "--user", "bob", out=Terminal())
        assert code == 0 and "\x1b[" not in out and "HALTED" in out


class TestPositionsAndTargets:
    def test_positions_table_and_json(self, history: dict[str, str]) -> None:
        code, out, _ = run("positions")
        lines = out.splitlines()
        assert code == 0 and lines[0].split() == ["position", "symbol", "status", "held", "entry", "price",
                                                  "unrealised", "realised", "exits"]
        assert len(lines) == 3 and all(history["bob_new"] not in line for line in lines)
        assert_fits(out)
        # every row's columns start where the header's do
        starts = [lines[0].index("held") + len("held")]
        assert all(line[starts[0] - 1] != " " for line in lines[1:]), out
        body = json.loads(run("positions", "--json", "--user", "bob")[1])
        assert [(p["position_id"], p["status"], p["remaining"]) for p in body] == [(history["bob_new"], "open", "20")]

    def test_targets_table_and_json(self, history: dict[str, str]) -> None:
        code, out, _ = run("targets")
        assert code == 0 and out.splitlines()[0].startswith("target") and "NEWUSDT" in out
        assert_fits(out)
        body = json.loads(run("targets", "--json")[1])
        assert sorted(t["symbol"] for t in body) == ["NEWUSDT", "OLDCOINLONGNAME1USDT"]
        assert all(t["status"] == "watching" and t["live"] is False for t in body)
        assert run("targets", "--user", "nobody")[1] == "no snipe targets\n"


class TestHistoryFilters:
    def test_user_symbol_and_since(self, history: dict[str, str]) -> None:
        code, out, _ = run("history", "--user", "bob", out=Terminal())
        assert code == 0 and "EMERGENCY STOP by bob" in out and history["alice_new"] not in out
        assert_fits(out)  # wrapped on a terminal...
        code, piped, _ = run("history", "--user", "bob")
        assert [line.startswith("#") for line in piped.splitlines()] == [True] * 3  # ...one line each into a pipe
        code, out, _ = run("history", "--symbol", "oldcoinlongname1usdt")
        assert code == 0 and history["alice_old"] in out and history["alice_new"] not in out
        code, out, _ = run("history", "--all", "--since", "2026-11-25")
        assert code == 0 and history["alice_old"] not in out and history["alice_new"] in out
        code, out, _ = run("history", "--user", "alice", "--since", "2026-11-25T10:00:01Z")
        assert (code, out) == (0, "no events match\n")

    def test_bad_filters_are_one_line_and_exit_2(self, history: dict[str, str]) -> None:
        assert run("history", "--since", "yesterday") == (
            2, "", "sniper: --since must be a date, an ISO time or an age such as 12h or 7d, got 'yesterday'\n")
        code, _, err = run("history")
        assert code == 2 and err.count("\n") == 1 and "a target id, --all, or a filter" in err

    def test_a_closed_pipe_prints_no_traceback_and_exits_0(self, tmp_path: Path) -> None:
        """`sniper history --all | head -1`: the installed command in a real pipe, with more history
        than a pipe holds (64 KiB), so it is still writing when `head` has gone."""
        url = f"sqlite+aiosqlite:///{tmp_path / 'long.db'}"
        asyncio.run(_seed_many(url, 400))  # 800 events, about 90 KiB of history
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "REDIS_URL", "SNIPER_MARKET")}
        sniper = subprocess.Popen([str(SNIPER), "history", "--all"], cwd=ROOT, env={**env, "DATABASE_URL": url},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert sniper.stdout is not None and sniper.stderr is not None
        head = subprocess.Popen(["head", "-1"], stdin=sniper.stdout, stdout=subprocess.PIPE, text=True)
        sniper.stdout.close()  # only `head` reads it now: when it exits, the pipe is closed
        first, _ = head.communicate(timeout=120)
        errors = sniper.stderr.read().decode()
        assert (sniper.wait(timeout=120), errors) == (0, "")
        assert first.startswith("#1 ") and len(first.splitlines()) == 1

    @pytest.mark.parametrize("command", [["history", "--all"], ["status"], ["positions"], ["targets"]])
    def test_every_view_stops_quietly_when_the_reader_went_away(self, history: dict[str, str],
                                                              command: list[str]) -> None:
        assert run(*command, out=ClosedPipe()) == (0, "", "")


class ClosedPipe(io.StringIO):
    """A stdout whose reader went away: every write fails as a closed pipe does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.fixture
def mexc() -> Iterator[FakeMexcServer]:
    """The MEXC fake on its own loop in a thread (the command runs its own asyncio.run)."""
    with on_own_loop(FakeMexcServer(symbols=[FakeSymbol("NEWUSDT", "NEW", price=Decimal("0.6"))])) as fake:
        yield fake


class TestClose:
    def test_close_sells_on_paper_at_mexcs_price_once(self, history: dict[str, str], mexc: FakeMexcServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SNIPER_MARKET", "mexc")
        monkeypatch.setenv("MEXC_BASE_URL", mexc.base_url)
        code, out, err = run("close", history["alice_new"])
        assert (code, err) == (0, ""), err
        assert out == f"position {history['alice_new']} CLOSED: sold 20 NEWUSDT at 0.6; realised P&L +1.984 USDT\n"
        code, out, _ = run("close", history["alice_new"])
        assert code == 0 and out.startswith(f"position {history['alice_new']} was closed already: sold 20 ")
        assert json.loads(run("positions", "--json")[1])[0]["exits"] == ["ManualExitFilled"]

    def test_open_positions_are_priced_at_mexcs_last_price(self, history: dict[str, str], mexc: FakeMexcServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SNIPER_MARKET", "mexc")
        monkeypatch.setenv("MEXC_BASE_URL", mexc.base_url)
        body = json.loads(run("status", "--json")[1])
        new = [p for p in body["open_positions"] if p["symbol"] == "NEWUSDT"][0]
        assert (new["current_price"], new["unrealised_pnl"]) == ("0.6", "1.99")  # 20 x 0.6 - 10.01
        old = [p for p in body["open_positions"] if p["symbol"] != "NEWUSDT"][0]
        assert old["current_price"] is None  # not listed on MEXC: left unpriced, no failure
        code, out, _ = run("status")
        assert code == 0 and "unrealised +1.99" in out

    def test_refusals_are_one_line(self, history: dict[str, str], mexc: FakeMexcServer,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
        code, _, err = run("close", history["alice_new"])  # a replay: no market here
        assert code == 1 and err.count("\n") == 1 and "no market to sell on" in err
        monkeypatch.setenv("SNIPER_MARKET", "mexc")
        monkeypatch.setenv("MEXC_BASE_URL", mexc.base_url)
        code, _, err = run("close", history["bob_new"])  # bob's, asked as alice
        assert (code, err) == (1, f"sniper: unknown position id: {history['bob_new']}\n")
        code, _, err = run("close", history["bob_new"], "--user", "bob")  # under bob's own stop
        assert code == 1 and "emergency stop pressed by bob at 2026-11-25 11:00:00 UTC" in err
        assert err.count("\n") == 1
