"""Checkpointed SQL projections (SQLite file and Postgres) against the in-memory trade book.

The reference is the TradeBook folded over the same events (via InMemoryReadModels): the
SQL read models must give equal views, with the exact decimal digits.
"""

from __future__ import annotations

import asyncio
import copy
import io
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.memory import InMemoryEventStore
from adapters.eventstore.migrate import upgrade
from adapters.eventstore.schema import (
    proj_checkpoints,
    proj_daily_pnl,
    proj_emergency_stops,
    proj_positions,
    proj_targets,
    proj_trades,
)
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.paper.scenario import load_scenario
from adapters.projections import PROJECTION, InMemoryReadModels, SqlProjector, SqlReadModels, run_projector
from adapters.projections import sql as projection_module
from application import repository
from application.ports import EventStore, ReadModels
from application.trade_book import UNKNOWN_LAUNCH_AT, TradeBook
from application.views import BUY, SELL
from domain.events import Cause, Recorded, SnipeFailed
from domain.exit_plans import PRESETS
from domain.position import ExitDecision, ExitReason, Position
from domain.safety import SafetySwitch
from domain.values import Symbol, quantize_money
from entrypoints.config import BUNDLED_SCENARIO, load_settings
from entrypoints.demo import run_demo

D = Decimal
DAY1 = datetime(2026, 11, 26, 23, 58, tzinfo=UTC)
DAY2 = datetime(2026, 11, 27, 0, 3, tzinfo=UTC)
PROJECTION_TABLES = (proj_checkpoints, proj_targets, proj_positions, proj_trades, proj_daily_pnl, proj_emergency_stops)


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    return request.getfixturevalue("fresh_postgres_database")


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    try:
        await upgrade(eng)
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture(scope="session")
def demo_history(tmp_path_factory: pytest.TempPathFactory) -> list[Recorded]:
    """The bundled demo's trade history, recorded once (SQLite), unpositioned: append it anywhere."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"

    async def record() -> list[Recorded]:
        await run_demo(load_settings({"DATABASE_URL": url}), load_scenario(BUNDLED_SCENARIO), "h1", io.StringIO())
        eng = make_engine(url)
        try:
            return await SqlEventStore(eng).read_all()
        finally:
            await eng.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:  # its own loop, away from the tests' loops
        history = pool.submit(lambda: asyncio.run(record())).result(timeout=60)
    return [replace(r, position=None) for r in history]


@pytest.fixture
async def store(engine: AsyncEngine, demo_history: list[Recorded]) -> SqlEventStore:
    """The demo's history in this test's database."""
    sql_store = SqlEventStore(engine)
    await sql_store.append(demo_history)
    return sql_store


# --- helpers --------------------------------------------------------------------------------

def cause(at: datetime) -> Cause:
    return Cause(at, "projection-test")


async def record_extras(store: EventStore, user: str = "carol") -> int:
    """Events the demo does not have: odd decimals, exits on two days, stops, an orphan target.
    Returns how many events were appended."""
    stored: list[Recorded] = []
    pos = Position.open(
        "t-extra-" + user, user, Symbol("XTRA", "USDT"), D("0.00009512"), D("21435.12"), D("2.0389428579"),
        D("0.0010194714"), "USDT", 2, PRESETS["balanced"], cause(DAY1),
    )
    stored += await repository.save(store, pos)
    pos.submit_exit(ExitDecision(ExitReason.TAKE_PROFIT, 0, D("10000"), D("0.00011415")), cause(DAY1))
    pos.record_exit_fill(D("0.00011415"), D("10000"), D("0.00057075"), cause(DAY1 + timedelta(seconds=30)))
    stored += await repository.save(store, pos)
    pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, D("11435.12"), D("0.00007999")), cause(DAY2))
    pos.record_exit_fill(D("0.00007999"), D("11435.12"), D("0.000457347"), cause(DAY2))
    stored += await repository.save(store, pos)

    halt_all = await repository.find(store, SafetySwitch, "safety-global") or SafetySwitch.for_scope("global")
    halt_all.activate("exchange maintenance", "ops", cause(DAY1))
    stored += await repository.save(store, halt_all)
    halt_all.clear("ops", cause(DAY2))
    stored += await repository.save(store, halt_all)
    halt_user = SafetySwitch.for_scope(user)
    halt_user.activate("daily loss limit", "safety monitor", cause(DAY2))
    stored += await repository.save(store, halt_user)

    # An event of a target the history never created: the book keeps a placeholder.
    orphan = SnipeFailed(f"t-orphan-{user}", "lost")
    stored += await store.append([Recorded(f"target-t-orphan-{user}", 1, DAY2, "", "c", orphan)])
    return len(stored)


def reference(store: EventStore) -> InMemoryReadModels:
    return InMemoryReadModels(store, TradeBook(), catch_up_on_read=False)


def users_of(book: TradeBook) -> set[str]:
    return (
        {t.user_id for t in book.targets.values()}
        | {p.user_id for p in book.positions.values()}
        | {t.user_id for t in book.trades}
        | set(book.stops)
        | {"nobody"}
    )


async def assert_same_views(actual: ReadModels, expected: InMemoryReadModels) -> None:
    """Equal views, down to each decimal's digits (repr shows them), for every user."""
    await expected.catch_up()

    async def same(what: str, got: Any, want: Any) -> None:
        assert got == want, what
        assert repr(got) == repr(want), what

    for user in sorted(users_of(expected.book)):
        await same(f"positions {user}", await actual.positions(user), await expected.positions(user))
        await same(f"open positions {user}", await actual.positions(user, open_only=True),
                   await expected.positions(user, open_only=True))
        for statuses in (None, {"filled"}, {"failed", "expired", "cancelled"}, set()):
            await same(f"targets {user} {statuses}", await actual.targets(user, statuses),
                       await expected.targets(user, statuses))
        await same(f"daily pnl {user}", await actual.daily_pnl(user, date.min, date.max),
                   await expected.daily_pnl(user, date.min, date.max))
        await same(f"one day {user}", await actual.daily_pnl(user, DAY2.date(), DAY2.date()),
                   await expected.daily_pnl(user, DAY2.date(), DAY2.date()))
        history = await actual.trade_history(user, limit=10_000)
        await same(f"trades {user}", history, await expected.trade_history(user, limit=10_000))
        paged, before = [], None
        while page := await actual.trade_history(user, limit=2, before_position=before):
            paged += page
            before = page[-1].position
        assert paged == history
        await same(f"halted {user}", await actual.halted(user), await expected.halted(user))
    assert await actual.checkpoint() == await expected.checkpoint()


async def table_contents(engine: AsyncEngine) -> dict[str, list[tuple]]:
    async with engine.connect() as conn:
        return {
            t.name: [tuple(row) for row in (await conn.execute(select(t).order_by(*t.primary_key.columns))).all()]
            for t in PROJECTION_TABLES
        }


# --- equal to the trade book ---------------------------------------------------------------------

async def test_the_demo_projected_equals_the_trade_book_fold(db_url: str) -> None:
    out = io.StringIO()
    report = await run_demo(load_settings({"DATABASE_URL": db_url}), load_scenario(BUNDLED_SCENARIO), "p1", out)
    eng = make_engine(db_url)
    try:
        store = SqlEventStore(eng)
        events = len(await store.read_all())
        assert await run_projector(eng, batch=50) == events
        sql, expected = SqlReadModels(eng), reference(store)
        await assert_same_views(sql, expected)
        assert await sql.checkpoint() == await store.last_position()

        # What the demo printed, from the tables.
        alice = await sql.positions("alice.p1")
        assert {p.symbol for p in alice} >= {"PUMPUSDT", "DUMPUSDT"}
        realised = sum([p.realised_pnl for u in ("alice.p1", "bob.p1") for p in await sql.positions(u)], D(0))
        assert realised == report.realised_pnl
        daily = [d for u in ("alice.p1", "bob.p1") for d in await sql.daily_pnl(u, date.min, date.max)]
        assert sum((d.realised_pnl for d in daily), D(0)) == report.realised_pnl
        assert str((await sql.daily_pnl("bob.p1", date.min, date.max))[0].realised_pnl) == "2.038942857900"
        [failed] = await sql.targets("alice.p1", {"failed"})
        assert "risk limits" in (failed.reason or "")
        trades = await sql.trade_history("alice.p1")
        assert [t.position for t in trades] == sorted((t.position for t in trades), reverse=True)
        assert {t.side for t in trades} == {BUY, SELL}
        assert sum((t.realised_pnl for t in trades), D(0)) == sum((p.realised_pnl for p in alice), D(0))
    finally:
        await eng.dispose()


async def test_odd_decimals_stops_and_orphans_project_as_the_book_folds_them(
    engine: AsyncEngine, store: SqlEventStore,
) -> None:
    await record_extras(store)
    await run_projector(engine, batch=3)
    sql = SqlReadModels(engine)
    await assert_same_views(sql, reference(store))

    [pos] = await sql.positions("carol")
    assert (str(pos.entry_price), str(pos.cost), pos.status, pos.exits) == (
        "0.00009512", "2.0399623293", "closed", ["TakeProfitHit", "StopLossHit"]
    )
    released = quantize_money(D("2.0399623293") * 10000 / D("21435.12"))
    day1 = D("0.00011415") * 10000 - D("0.00057075") - released
    day2 = D("0.00007999") * D("11435.12") - D("0.000457347") - (D("2.0399623293") - released)
    assert [(d.day, str(d.realised_pnl)) for d in await sql.daily_pnl("carol", date.min, date.max)] == [
        (DAY1.date(), str(day1)), (DAY2.date(), str(day2))
    ]
    assert (str(day1), str(day2)) == ("0.18923767", "-0.1740328475")
    assert await sql.halted("carol") == "emergency stop: daily loss limit"
    assert await sql.halted("alice.h1") is None
    [orphan] = await sql.targets("")
    assert (orphan.target_id, orphan.status, orphan.launch_at) == ("t-orphan-carol", "failed", UNKNOWN_LAUNCH_AT)


async def test_money_round_trips_exactly(engine: AsyncEngine) -> None:
    amounts = ["0.00009512", "2.0389428579", "2.038942857900", "-0.000000015", "1E-18", "0",
               "12345678901234567890.123456789012345678"]
    async with engine.begin() as conn:
        await conn.execute(insert(proj_daily_pnl), [
            {"user_id": "u", "day": date(2026, 1, 1) + timedelta(days=i), "realised_pnl": D(a)}
            for i, a in enumerate(amounts)
        ])
    got = await SqlReadModels(engine).daily_pnl("u", date.min, date.max)
    # The same digits and exponent, not just an equal value.
    assert [d.realised_pnl.as_tuple() for d in got] == [D(a).as_tuple() for a in amounts]
    async with engine.connect() as conn:  # stored as the decimal's own text, no float on the way
        raw = (await conn.execute(text("SELECT realised_pnl FROM proj_daily_pnl ORDER BY day"))).scalars().all()
    assert raw == [str(D(a)) for a in amounts]
    assert raw[:3] == ["0.00009512", "2.0389428579", "2.038942857900"]
    with pytest.raises(StatementError, match="finite Decimal"):
        async with engine.begin() as conn:
            await conn.execute(insert(proj_daily_pnl).values(user_id="u", day=date(2027, 1, 1), realised_pnl=0.1))


# --- following the store ------------------------------------------------------------------------

async def test_catch_up_is_incremental(engine: AsyncEngine, store: SqlEventStore) -> None:
    projector = SqlProjector(engine, batch=7)
    first = await store.last_position()
    assert await projector.catch_up() == len(await store.read_all())
    assert await projector.checkpoint() == first
    assert await projector.catch_up() == 0
    before = await table_contents(engine)

    added = await record_extras(store)
    assert await projector.apply_batch() == 7  # one batch, one transaction
    assert await projector.catch_up() == added - 7
    assert await projector.catch_up() == 0
    assert await projector.checkpoint() == await store.last_position()
    after = await table_contents(engine)
    # The demo's rows are untouched; only the new events added rows.
    assert set(before["proj_trades"]) < set(after["proj_trades"])
    assert len(after["proj_trades"]) == len(before["proj_trades"]) + 3
    await assert_same_views(SqlReadModels(engine), reference(store))


class PowerCut(Exception):
    pass


async def _count_inside(io: Any, sql: str) -> int:
    """A count on the batch's own connection, inside its transaction (either kind of batch I/O)."""
    if isinstance(io, projection_module._AsyncpgIO):
        return int(await io._db.fetchval(sql))
    return int(await io._conn.scalar(text(sql)))


@pytest.fixture
def batch_io(db_url: str) -> type:
    """The batch I/O class this database's projector uses."""
    return projection_module._AsyncpgIO if db_url.startswith("postgresql") else projection_module._AlchemyIO


async def test_a_crash_before_commit_leaves_everything_and_the_rerun_applies_the_batch_once(
    engine: AsyncEngine, store: SqlEventStore, batch_io: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    projector = SqlProjector(engine, batch=1000)
    await projector.catch_up()
    added = await record_extras(store)
    checkpoint, before = await projector.checkpoint(), await table_contents(engine)

    seen_inside: dict[str, Any] = {}
    real_save = batch_io.save_checkpoint

    async def save_then_crash(self: Any, name: str, position: int) -> None:
        await real_save(self, name, position)
        # Everything is written, in the transaction: rows and the moved checkpoint...
        seen_inside["checkpoint"] = await _count_inside(self, "SELECT position FROM proj_checkpoints")
        seen_inside["trades"] = await _count_inside(self, "SELECT count(*) FROM proj_trades")
        raise PowerCut  # ... and the process dies before the commit.

    monkeypatch.setattr(batch_io, "save_checkpoint", save_then_crash)
    with pytest.raises(PowerCut):
        await projector.catch_up()
    assert seen_inside == {"checkpoint": await store.last_position(), "trades": len(before["proj_trades"]) + 3}
    assert await projector.checkpoint() == checkpoint
    assert await table_contents(engine) == before

    monkeypatch.undo()
    assert await SqlProjector(engine).catch_up() == added
    assert await projector.catch_up() == 0
    await assert_same_views(SqlReadModels(engine), reference(store))


async def test_a_crash_halfway_through_the_writes_leaves_everything(
    engine: AsyncEngine, store: SqlEventStore, batch_io: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await table_contents(engine)
    real_write = batch_io.write_rows
    written: list[str] = []

    async def write_then_crash(self: Any, table: Any, *args: Any) -> None:
        await real_write(self, table, *args)
        written.append(table.name)
        if len(written) == 2:  # targets written, positions written, the rest not yet
            raise PowerCut

    monkeypatch.setattr(batch_io, "write_rows", write_then_crash)
    with pytest.raises(PowerCut):
        await run_projector(engine)
    assert written == ["proj_targets", "proj_positions"]
    assert await table_contents(engine) == before
    monkeypatch.undo()
    assert await run_projector(engine) == len(await store.read_all())
    await assert_same_views(SqlReadModels(engine), reference(store))


async def test_the_fold_changes_only_its_own_copies_of_the_stored_rows(
    engine: AsyncEngine, store: SqlEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fold works on copies of the rows a batch loaded: those stay as loaded (what differs from
    them is what the batch writes), so folding the same batch again over them, as a retry would,
    writes the same. Small batches, so that later batches exit positions and move targets that
    earlier ones stored."""
    await record_extras(store)
    real_fold = projection_module._fold
    exited_stored_positions = 0

    def fold_twice(records: Any, checkpoint: int, stored: Any) -> Any:
        nonlocal exited_stored_positions
        loaded = copy.deepcopy(stored)
        writes = real_fold(records, checkpoint, stored)
        assert stored == loaded
        assert repr(stored) == repr(loaded)  # the decimals' digits too
        again = real_fold(records, checkpoint, stored)
        assert (again.new, again.changed, again.stops, again.trades) == (
            writes.new, writes.changed, writes.stops, writes.trades)
        exited_stored_positions += sum(
            row["exits"] != " ".join(stored.positions[row["position_id"]].exits)
            for row in writes.changed.get(proj_positions, [])
        )
        return writes

    monkeypatch.setattr(projection_module, "_fold", fold_twice)
    assert await run_projector(engine, batch=2) == len(await store.read_all())
    assert exited_stored_positions > 0  # the list the fold appends to was in stored rows
    await assert_same_views(SqlReadModels(engine), reference(store))


async def test_two_projectors_at_once_apply_each_event_once(
    db_url: str, engine: AsyncEngine, store: SqlEventStore,
) -> None:
    await record_extras(store)
    engines = [make_engine(db_url), make_engine(db_url)]
    try:
        projectors = [SqlProjector(e, batch=5) for e in engines]
        # A fresh checkpoint row that both want to create...
        applied = await asyncio.gather(*(p.catch_up() for p in projectors))
        assert sum(applied) == len(await store.read_all())
        # ... then the existing one.
        added = await record_extras(store, user="dave")
        applied = await asyncio.gather(*(p.catch_up() for p in projectors))
        assert sum(applied) == added
    finally:
        for e in engines:
            await e.dispose()
    await run_projector(engine)
    await assert_same_views(SqlReadModels(engine), reference(store))


async def test_follow_applies_what_is_recorded_until_stopped(engine: AsyncEngine, store: SqlEventStore) -> None:
    projector, stop = SqlProjector(engine, batch=10), asyncio.Event()
    follower = asyncio.create_task(projector.follow(poll_interval=timedelta(milliseconds=20), stop=stop))

    async def caught_up() -> None:
        while await projector.checkpoint() != await store.last_position():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(caught_up(), timeout=10)
    added = await record_extras(store)
    await asyncio.wait_for(caught_up(), timeout=10)
    stop.set()
    assert await asyncio.wait_for(follower, timeout=5) == len(await store.read_all())
    assert added > 0
    await assert_same_views(SqlReadModels(engine), reference(store))


async def test_projections_keep_their_own_checkpoints(engine: AsyncEngine, store: SqlEventStore) -> None:
    assert await SqlReadModels(engine).checkpoint() == 0
    assert await run_projector(engine, batch=4, until_caught_up=False) == 4
    assert await SqlReadModels(engine).checkpoint() == (await store.read_all(limit=4))[-1].position
    assert await SqlReadModels(engine, name="another").checkpoint() == 0
    assert await SqlProjector(engine, name=PROJECTION).checkpoint() == await SqlReadModels(engine).checkpoint()


async def test_a_database_at_0001_upgrades_and_projects_its_whole_history(
    db_url: str, demo_history: list[Recorded],
) -> None:
    from alembic import command
    from alembic.config import Config

    import adapters.eventstore.migrate as migrate

    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__file__).resolve().parent / "migrations"))
    eng = make_engine(db_url)
    try:
        async with eng.begin() as conn:  # the schema as the previous release left it, with history
            def to_0001(sync_conn: Any) -> None:
                config.attributes["connection"] = sync_conn
                command.upgrade(config, "0001")

            await conn.run_sync(to_0001)
        store = SqlEventStore(eng)
        await store.append(demo_history)
        assert await upgrade(eng) == ("0001", migrate.head_revision())
        assert await run_projector(eng) == len(demo_history)
        await assert_same_views(SqlReadModels(eng), reference(store))
    finally:
        await eng.dispose()


# --- the in-memory twin ----------------------------------------------------------------------

async def test_the_in_memory_twin_answers_from_the_trade_book() -> None:
    store = InMemoryEventStore()
    following, lagging = InMemoryReadModels(store), InMemoryReadModels(store, catch_up_on_read=False)
    added = await record_extras(store, user="erin")

    assert await following.checkpoint() == added
    assert await lagging.checkpoint() == 0 and await lagging.positions("erin") == []
    assert await lagging.catch_up() == added
    [pos] = await lagging.positions("erin")
    assert await following.positions("erin") == [pos]
    assert await lagging.positions("erin", open_only=True) == []
    pos.exits.append("tampered")  # a copy: the book is not changed through it
    assert (await lagging.positions("erin"))[0].exits == ["TakeProfitHit", "StopLossHit"]
    trades = await lagging.trade_history("erin")
    assert [t.side for t in trades] == [SELL, SELL, BUY]
    assert await lagging.trade_history("erin", limit=1, before_position=trades[0].position) == trades[1:2]
    assert await lagging.halted("erin") == "emergency stop: daily loss limit"


def test_both_answer_every_question_of_the_port() -> None:
    questions = {name for name in vars(ReadModels) if not name.startswith("_")}
    assert questions == {"positions", "targets", "daily_pnl", "trade_history", "halted", "checkpoint"}
    for twin in (SqlReadModels, InMemoryReadModels):
        assert questions <= set(dir(twin)), twin
