"""`sniper demo` end to end on the embedded default (SQLite file, paper exchange).

A demo run costs seconds of CPU, so the tests that only read one share it: one run through
`run_demo` and one through the command line, each into a SQLite file of this module's own. A test
that writes (a second run, `sniper history`) does so on a copy of that file, made with SQLite's
backup API."""

from __future__ import annotations

import asyncio
import io
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.paper.scenario import load_scenario
from application.trade_book import TradeBook
from domain.events import SnipeOrderFilled
from domain.position import Position, position_id_for, position_stream
from domain.target import SnipeTarget, target_stream
from entrypoints.cli import main
from entrypoints.config import BUNDLED_SCENARIO, load_settings
from entrypoints.demo import DemoReport, PnlRow, display_user, render_report, run_demo


def _use_store(monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    for name in ("SNIPER_SCENARIO", "SNIPER_STATE_POLL_SECONDS", "SNIPER_CALENDAR_POLL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _use_store(monkeypatch, tmp_path / "history.db")


def _copy_store(source: Path, target: Path) -> None:
    """`source` as it is, into `target` (the test's own store), through SQLite's backup API."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


async def _demo(run_id: str) -> tuple[DemoReport, str]:
    out = io.StringIO()
    report = await run_demo(load_settings(), load_scenario(BUNDLED_SCENARIO), run_id, out)
    return report, out.getvalue()


@pytest.fixture(scope="module")
def demo_a1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoReport, str, Path]]:
    """The bundled demo run once (run id a1) into a fresh store of its own: (report, output, store)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        path = _use_store(monkeypatch, tmp_path_factory.mktemp("demo-a1") / "history.db")
        report, text = asyncio.run(_demo("a1"))
    yield report, text, path


@pytest.fixture(scope="module")
def cli_demo_f6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, str, Path]]:
    """`sniper demo --run-id f6` run once into a fresh store of its own: (exit code, stdout, stderr, store)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        path = _use_store(monkeypatch, tmp_path_factory.mktemp("demo-f6") / "history.db")
        code, out, err = _cli("demo", "--run-id", "f6")
    yield code, out, err, path


async def test_demo_snipes_every_kind_of_listing(demo_a1: tuple[DemoReport, str, Path]) -> None:
    report, text, db = demo_a1
    outcomes = {(r.user_id, r.symbol): r for r in report.rows}
    assert outcomes[("alice", "PUMPUSDT")].exits == "TP TP TP"
    assert outcomes[("alice", "PUMPUSDT")].outcome == "closed"
    assert outcomes[("bob", "PUMPUSDT")].exits == "TP TP"
    assert outcomes[("alice", "DUMPUSDT")].exits == "SL"
    assert outcomes[("alice", "DUMPUSDT")].realised_pnl < 0
    assert outcomes[("alice", "MOONUSDT")].outcome == "failed"
    assert "risk limits" in outcomes[("alice", "MOONUSDT")].note
    assert outcomes[("alice", "GHOSTUSDT")].outcome == "expired"
    # The timeline shows the retry on "not yet open" and the table closes the output.
    assert "4 attempts" in text
    assert "REFUSED by risk limits" in text
    assert "EXPIRED" in text
    assert text.rstrip().splitlines()[-1].endswith("shows one target's history.")
    assert db.exists()


async def test_rebuilding_every_aggregate_gives_what_the_demo_printed(demo_a1: tuple[DemoReport, str, Path]) -> None:
    report, text, db = demo_a1
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    store = SqlEventStore(engine)
    try:
        rows = []
        for printed in report.rows:
            target = SnipeTarget.rehydrate(
                target_stream(printed.target_id), await store.load(target_stream(printed.target_id))
            )
            assert target.symbol is not None and target.symbol.code == printed.symbol
            history = await store.load(position_stream(position_id_for(printed.target_id)))
            if not history:
                assert printed.outcome == target.status.value
                rows.append(PnlRow(display_user(target.user_id, "a1"), target.symbol.code, target.target_id,
                                   target.status.value, Decimal(0), Decimal(0), Decimal(0), Decimal(0), "",
                                   target.failure or ""))
                continue
            pos = Position.rehydrate(position_stream(position_id_for(printed.target_id)), history)
            assert pos.status.value == "closed"
            exits = " ".join({"TakeProfitHit": "TP", "StopLossHit": "SL"}[type(r.event).__name__]
                             for r in history if type(r.event).__name__ in ("TakeProfitHit", "StopLossHit"))
            rows.append(PnlRow(display_user(pos.user_id, "a1"), pos.symbol.code if pos.symbol else "", target.target_id,
                               "closed", pos.total_cost, pos.proceeds, pos.fees, pos.realised_pnl, exits, ""))
        rebuilt = DemoReport("a1", rows, report.events, report.first_position, report.last_position)
        # Same numbers, exactly, and the same table as printed.
        assert [(r.cost, r.proceeds, r.fees, r.realised_pnl, r.outcome) for r in rebuilt.rows] == [
            (r.cost, r.proceeds, r.fees, r.realised_pnl, r.outcome) for r in report.rows
        ]
        assert render_report(rebuilt) in text
        # And a trade book folded from scratch agrees with the aggregates.
        book = TradeBook()
        await book.catch_up(store)
        assert sum((p.realised_pnl for p in book.positions.values()), Decimal(0)) == report.realised_pnl
    finally:
        await engine.dispose()


async def test_exact_decimals_through_a_full_snipe(demo_a1: tuple[DemoReport, str, Path]) -> None:
    """Bob buys PUMP for 10.01 USDT at 0.00009512 and exits on the conservative ladder."""
    report, _, db = demo_a1
    bob = next(r for r in report.rows if r.user_id == "bob")
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    store = SqlEventStore(engine)
    try:
        events = [r.event for r in await store.load(target_stream(bob.target_id))]
        fill = next(e for e in events if isinstance(e, SnipeOrderFilled))
        assert fill.price == Decimal("0.00009512")
        assert fill.quantity == Decimal("105235")  # floor(10.01 / 0.00009512)
        assert fill.quote_spent == Decimal("10.0099532")
        assert fill.fee == Decimal("0.0050049766")
        pos = Position.rehydrate(position_stream(position_id_for(bob.target_id)),
                                 await store.load(position_stream(position_id_for(bob.target_id))))
    finally:
        await engine.dispose()
    assert pos.total_cost == Decimal("10.0149581766")
    assert pos.proceeds == Decimal("6.0299082") + Decimal("6.0300228")  # 52617 and 52618 at 0.0001146
    expected = (Decimal("6.0299082") + Decimal("6.0300228") - Decimal("0.0030149541") - Decimal("0.0030150114")
                - Decimal("10.0149581766"))
    assert pos.realised_pnl == expected == Decimal("2.0389428579")
    assert bob.realised_pnl == expected


async def test_reruns_tell_the_same_story_in_one_store(db: Path, demo_a1: tuple[DemoReport, str, Path]) -> None:
    first, _, first_store = demo_a1
    _copy_store(first_store, db)  # the store as the first run left it
    second, _ = await _demo("e5")
    assert [(r.user_id, r.symbol, r.outcome, r.realised_pnl) for r in first.rows] == [
        (r.user_id, r.symbol, r.outcome, r.realised_pnl) for r in second.rows
    ]
    assert second.first_position == first.last_position


# --- the command line: errors are one line, non-zero, and write nothing ----------------------------


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_demo_prints_timeline_and_table(cli_demo_f6: tuple[int, str, str, Path]) -> None:
    code, out, err, _ = cli_demo_f6
    assert code == 0, err
    assert "FILLED" in out and "Final P&L" in out and "TOTAL" in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"name": "x", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "listings": [], "bogus": 1}',
         "bogus"),
        (b'{"name": "x", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "listings": []}',
         "at least one listing"),
    ],
)
def test_malformed_scenario_is_one_line_and_writes_nothing(
    db: Path, tmp_path: Path, content: bytes, expected: str,
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    code, out, err = _cli("demo", "--scenario", str(bad))
    assert code != 0
    assert err.count("\n") == 1 and str(bad) in err and expected in err
    assert out == ""
    assert not db.exists()


def test_bad_env_value_is_one_line_and_writes_nothing(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNIPER_STATE_POLL_SECONDS", "often")
    code, out, err = _cli("demo")
    assert code != 0
    assert err.count("\n") == 1 and "SNIPER_STATE_POLL_SECONDS" in err and "'often'" in err
    assert not db.exists()


def test_bad_database_url_is_refused(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/x")
    code, _, err = _cli("demo")
    assert code != 0 and err.count("\n") == 1 and "DATABASE_URL" in err


def test_unknown_target_id_is_one_line_and_changes_nothing(db: Path, cli_demo_f6: tuple[int, str, str, Path]) -> None:
    assert cli_demo_f6[0] == 0
    _copy_store(cli_demo_f6[3], db)
    before = db.read_bytes()
    code, out, err = _cli("history", "t-000000000000")
    assert code != 0
    assert err == "sniper: unknown target id: t-000000000000\n"
    assert db.read_bytes() == before


def test_history_without_a_store_creates_none(db: Path) -> None:
    code, _, err = _cli("history", "--all")
    assert code != 0 and err.count("\n") == 1 and "no trade history" in err
    assert not db.exists()


def test_history_prints_one_target_in_order(db: Path, cli_demo_f6: tuple[int, str, str, Path]) -> None:
    _, out, _, store = cli_demo_f6
    _copy_store(store, db)
    target_id = next(part for part in out.split() if part.startswith("t-"))
    code, history, err = _cli("history", target_id)
    assert code == 0, err
    lines = history.splitlines()
    positions = [int(line.split()[0].lstrip("#")) for line in lines]
    assert positions == sorted(positions) and len(lines) >= 4
    assert "created" in lines[0]
    code, everything, _ = _cli("history", "--all")
    assert code == 0 and len(everything.splitlines()) > len(lines)


@pytest.mark.redis
async def test_demo_with_redis_takes_its_leases_there(
    db: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str,
) -> None:
    import redis.asyncio as aioredis

    prefix = f"sniper-demo-{secrets.token_hex(3)}"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_PREFIX", prefix)
    report, _ = await _demo("r9")
    assert [r.outcome for r in report.rows].count("closed") == 3
    client = aioredis.Redis.from_url(redis_url)
    try:
        fences = [k async for k in client.scan_iter(match=f"{prefix}:fence:*")]
        assert len(fences) == 4  # one fenced lease per executed snipe (3 bought, 1 refused)
        epochs = [k async for k in client.scan_iter(match=f"{prefix}:fence-epoch:*")]
        assert len(epochs) == 4  # each counter's epoch beside it
        for key in fences + epochs:
            await client.delete(key)
    finally:
        await client.aclose()


def test_unreachable_redis_is_one_line_and_writes_nothing(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    code, _, err = _cli("demo", "--run-id", "z1")
    assert code != 0 and err.count("\n") == 1 and "REDIS_URL cannot be reached" in err
    assert not db.exists()
