"""Snapshots of long streams, on every store (in memory, SQLite file, Postgres).

What must hold: an aggregate loaded from its newest snapshot plus the events after it equals
the full fold, down to each Decimal's digits and each datetime's offset; a snapshot is taken
each time a stream passes a multiple of `snapshot_every`; and a snapshot that is old, of
another shape, corrupt or inconsistent with its stream is ignored (full fold), never trusted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.memory import InMemoryEventStore
from adapters.eventstore.migrate import upgrade
from adapters.eventstore.schema import snapshots
from adapters.eventstore.snapshot_codec import SnapshotUnreadable, decode_state, encode_state
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from application import repository
from application.ports import SnapshotStore
from domain.aggregate import Aggregate, SnapshotMismatch
from domain.events import Cause, SnipeOrderFilled
from domain.exit_plans import PRESETS
from domain.position import ExitDecision, ExitReason, Position, PositionStatus
from domain.safety import SafetySwitch
from domain.target import SnipeTarget, TargetStatus, target_stream
from domain.values import Symbol

D = Decimal
T0 = datetime(2026, 11, 25, 9, 26, 53, 589793, tzinfo=UTC)
PLUS_FIVE_THIRTY = timezone(timedelta(hours=5, minutes=30))


# --- backends ---------------------------------------------------------------------------------

@dataclass
class Backend:
    name: str
    store: Any  # an EventStore that is a SnapshotStore
    engine: AsyncEngine | None = None

    def with_every(self, every: int) -> Any:
        self.store.snapshot_every = every
        return self.store

    async def plant(self, stream_id: str, version: int, shape: str, state: str) -> None:
        """Put a snapshot row as a damaged database or an older program would have left it."""
        if self.engine is None:
            self.store._snapshots[stream_id] = (version, shape, state)
            return
        async with self.engine.begin() as conn:
            await conn.execute(delete(snapshots).where(snapshots.c.stream_id == stream_id))
            await conn.execute(insert(snapshots).values(stream_id=stream_id, version=version, shape=shape,
                                                        state=state, taken_at=T0))

    async def kept(self, stream_id: str) -> tuple[int, str, str] | None:
        if self.engine is None:
            return self.store._snapshots.get(stream_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(snapshots.select().where(snapshots.c.stream_id == stream_id))).first()
        return None if row is None else (row.version, row.shape, row.state)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield Backend("memory", InMemoryEventStore())
        return
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_database")
    engine = make_engine(url)
    try:
        await upgrade(engine)  # the migrations, 0003 included, make the snapshots table
        yield Backend(request.param, SqlEventStore(engine), engine)
    finally:
        await engine.dispose()


# --- histories ---------------------------------------------------------------------------------

def cause(minutes: float) -> Cause:
    return Cause(T0 + timedelta(minutes=minutes), "snap")


async def long_position(store: Any, peaks: int = 23) -> Position:
    """An aggregate with a trailing stop: every new peak is an event, so the stream gets long.
    Saved append by append, as the position manager does."""
    pos = Position.open("t-snap", "user-1", Symbol("SNAP", "USDT"), D("0.00009512"), D("105214.46"),
                        D("10.0080"), D("0.005004"), "USDT", 2, PRESETS["aggressive"], cause(0))
    await repository.save(store, pos)
    for n in range(peaks):
        pos.observe(D("0.00009512") + D("0.00000137") * (n + 1), cause(n + 1))
        await repository.save(store, pos)
        if n == 7:
            pos.submit_exit(ExitDecision(ExitReason.TAKE_PROFIT, 0, D("31564.33"), D("0.00014268")), cause(n + 1.5))
            pos.record_exit_fill(D("0.00014270"), D("31564.33"), D("0.00450421"), cause(n + 1.6))
            await repository.save(store, pos)
    return pos


def state_of(agg: Aggregate) -> dict[str, object]:
    return {k: v for k, v in vars(agg).items() if k != "_pending"}


async def full_fold(store: Any, cls: type[Aggregate], stream_id: str) -> Aggregate:
    return cls.rehydrate(stream_id, await store.load(stream_id))


def assert_same(loaded: Aggregate, folded: Aggregate) -> None:
    assert state_of(loaded) == state_of(folded)
    assert repr(state_of(loaded)) == repr(state_of(folded))  # every digit and offset, too


async def refuse_full_loads(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_full_load(stream_id: str) -> list[Any]:
        raise AssertionError(f"{stream_id} was folded from its first event")

    monkeypatch.setattr(store, "load", no_full_load)


# --- snapshot + tail equals the full fold -------------------------------------------------------

async def test_a_long_position_loads_from_its_snapshot_and_equals_the_full_fold(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backend.with_every(10)
    pos = await long_position(store)
    assert pos.version == 26 and pos.status is PositionStatus.PARTIALLY_EXITED
    folded = await full_fold(store, Position, pos.stream_id)
    kept = await backend.kept(pos.stream_id)
    assert kept is not None and kept[0] == 20 and kept[1] == Position.snapshot_shape()

    await refuse_full_loads(store, monkeypatch)
    loaded = await repository.get(store, Position, pos.stream_id)

    assert_same(loaded, folded)
    assert_same(loaded, pos)
    assert loaded.version == 26 and loaded.pending == []
    assert str(loaded.peak_price) == "0.00012663" and loaded.levels_hit == {0}
    # ... and it carries on where the stream is.
    loaded.observe(D("0.00013000"), cause(99))
    [stored] = await repository.save(store, loaded)
    assert stored.version == 27


async def test_a_target_with_its_fill_round_trips_exactly_through_a_snapshot(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backend.with_every(2)
    launch = datetime(2026, 12, 1, 18, 30, 0, 250001, tzinfo=PLUS_FIVE_THIRTY)
    target = SnipeTarget.create("t-exact", "user-7", "coin-7", Symbol("EXA", "USDT"), launch, D("10.010"),
                                PRESETS["diamond"], D("0.850"), True, cause(0))
    target.mark_ready("sts2-st2-tt4", D("0.95"), 3 * 3600, cause(1))
    await repository.save(store, target)
    target.schedule(launch - timedelta(milliseconds=50), launch + timedelta(seconds=30), cause(2))
    target.submit_order(cause(3))
    target.record_fill("ex-9", D("1.2E-7"), D("83416666.66"), D("10.00999999920"), D("0E-8"), "EXA", 3,
                       D("0.412"), cause(4))
    await repository.save(store, target)  # version 5: a snapshot at 4 is passed, so one is taken at 5
    kept = await backend.kept(target.stream_id)
    assert kept is not None and kept[0] == 5

    await refuse_full_loads(store, monkeypatch)
    loaded = await repository.get(store, SnipeTarget, target_stream("t-exact"))

    assert_same(loaded, target)
    assert loaded.status is TargetStatus.FILLED
    assert isinstance(loaded.fill, SnipeOrderFilled) and repr(loaded.fill.price) == "Decimal('1.2E-7')"
    assert repr(loaded.fill.fee) == "Decimal('0E-8')" and repr(loaded.quote_amount) == "Decimal('10.010')"
    assert loaded.launch_at == launch and loaded.launch_at.utcoffset() == timedelta(hours=5, minutes=30)
    assert loaded.launch_at.microsecond == 250001
    assert loaded.exit_plan == PRESETS["diamond"]


async def test_snapshots_are_taken_each_time_a_multiple_is_passed(backend: Backend) -> None:
    store = backend.with_every(5)
    switch = SafetySwitch.for_scope("global")
    versions_kept: list[int | None] = []
    for n, batch in enumerate([3, 2, 1, 3, 1, 3, 2]):  # versions 3, 5, 6, 9, 10, 13, 15
        for _ in range(batch):
            if switch.active:
                switch.clear("ops", cause(n))
            else:
                switch.activate(f"reason {n}", "ops", cause(n))
        await repository.save(store, switch)
        kept = await backend.kept(switch.stream_id)
        versions_kept.append(None if kept is None else kept[0])
    assert versions_kept == [None, 5, 5, 5, 10, 10, 15]
    assert_same(await repository.get(store, SafetySwitch, switch.stream_id), switch)


async def test_snapshot_every_zero_takes_none(backend: Backend) -> None:
    store = backend.with_every(0)
    await long_position(store, peaks=12)
    assert await backend.kept("position-p-snap") is None


async def test_an_older_snapshot_never_replaces_a_newer_one(backend: Backend) -> None:
    store = backend.with_every(10)
    pos = await long_position(store)
    shape = Position.snapshot_shape()
    await store.save_snapshot(pos.stream_id, 3, shape, (await full_fold(store, Position, pos.stream_id)).snapshot_state())
    kept = await backend.kept(pos.stream_id)
    assert kept is not None and kept[0] == 20


# --- a snapshot is never trusted ----------------------------------------------------------------

def poisoned(good: str) -> str:
    """A readable snapshot state with a lie the events after version 20 do not overwrite: if a
    snapshot built on it were trusted, the loaded position would have another id."""
    lie = good.replace('"position_id":"p-snap"', '"position_id":"p-mallory"')
    assert lie != good
    return lie


def bad_snapshots(good: str, shape: str) -> dict[str, tuple[int, str, str]]:
    """(version, shape, state) of snapshots a full fold must replace: each also carries the lie."""
    lie = poisoned(good)
    older_shape = shape.replace("Position/1:", "Position/0:")
    assert older_shape != shape
    return {
        "another shape (an older program)": (20, older_shape, lie),
        "not JSON": (20, shape, lie[:-1]),
        "a field missing": (20, shape, lie.replace('"exits":', '"exits_before_rename":')),
        "a class that is not the domain's": (20, shape, lie.replace('"domain.values.Symbol"', '"os.system"')),
        "a dataclass of other fields": (20, shape, lie.replace('"base":', '"base_asset":')),
        "a float where money was": (20, shape, re.sub(r'"peak_price":\{"\$dec":"([0-9.]+)"\}', r'"peak_price":\1', lie)),
        "a wrong type": (20, shape, lie.replace('"quantity_scale":2', '"quantity_scale":"2"')),
        "an enum value that is gone": (20, shape, lie.replace('"value":"partially exited"', '"value":"parked"')),
        "a version the stream does not have": (40, shape, lie),
        "version zero": (0, shape, lie),
    }


async def test_a_bad_snapshot_is_ignored_and_the_stream_folded(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    store = backend.with_every(10)
    pos = await long_position(store)
    folded = await full_fold(store, Position, pos.stream_id)
    good = (await backend.kept(pos.stream_id) or (0, "", ""))[2]
    assert '"peak_price":{"$dec":' in good and '"status":{"$enum":"domain.position.PositionStatus"' in good

    for why, (version, shape, state) in bad_snapshots(good, Position.snapshot_shape()).items():
        assert state != poisoned(good) or version != 20 or shape != Position.snapshot_shape(), why
        await backend.plant(pos.stream_id, version, shape, state)
        with caplog.at_level(logging.WARNING):
            loaded = await repository.get(store, Position, pos.stream_id)
        assert loaded.position_id == "p-snap", why
        assert_same(loaded, folded)

    # The lie in a snapshot without a defect is believed: the refusals above are not vacuous.
    await backend.plant(pos.stream_id, 20, Position.snapshot_shape(), poisoned(good))
    assert (await repository.get(store, Position, pos.stream_id)).position_id == "p-mallory"


async def test_a_snapshot_that_cannot_be_written_does_not_fail_the_save(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = backend.with_every(2)

    async def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "save_snapshot", broken)
    switch = SafetySwitch.for_scope("user-1")
    switch.activate("daily loss", "monitor", cause(0))
    switch.clear("ops", cause(1))
    with caplog.at_level(logging.WARNING):
        stored = await repository.save(store, switch)
    assert [r.version for r in stored] == [1, 2] and switch.pending == []
    assert "no snapshot of safety-user-1 at version 2: disk full" in caplog.text
    assert_same(await repository.get(store, SafetySwitch, switch.stream_id), switch)


async def test_every_store_is_a_snapshot_store(backend: Backend) -> None:
    assert isinstance(backend.store, SnapshotStore)


# --- the codec and the domain's side --------------------------------------------------------------

def test_the_codec_round_trips_exact_values() -> None:
    state: dict[str, object] = {
        "money": [D("0.00009512"), D("1E-8"), D("-0"), D("10.010"), D("123456789012345678901234567890.5")],
        "when": datetime(2026, 11, 25, 23, 59, 59, 999999, tzinfo=PLUS_FIVE_THIRTY),
        "utc": T0,
        "day": date(2026, 2, 28),
        "hold": timedelta(days=1, seconds=5, microseconds=7),
        "levels": {2, 0},
        "frozen": frozenset({"a"}),
        "pair": (1, "x", None),
        "by_key": {1: D("2.50"), "k": [True, False]},
        "plan": PRESETS["diamond"],
        "status": TargetStatus.SCHEDULED,
        "symbol": Symbol("NEW", "USDT"),
        "nothing": None,
    }
    again = decode_state(encode_state(state))
    assert again == state
    assert {k: repr(v) for k, v in again.items()} == {k: repr(v) for k, v in state.items()}
    assert again["when"].utcoffset() == timedelta(hours=5, minutes=30)  # type: ignore[union-attr]


def test_the_codec_refuses_what_it_cannot_carry_exactly() -> None:
    with pytest.raises(TypeError, match="float"):
        encode_state({"price": 0.1})

    class Foreign:
        pass

    with pytest.raises(TypeError):
        encode_state({"x": Foreign()})
    for text in ('{"x": 1.5}', '{"x": {"$dec": "NaN"}}', '{"x": {"$unknown": 1}}', "[1]",
                 '{"x": {"$enum": "domain.target.TargetStatus", "value": "nope"}}'):
        with pytest.raises(SnapshotUnreadable):
            decode_state(text)


def test_restore_refuses_a_state_of_other_fields() -> None:
    switch = SafetySwitch.for_scope("global")
    switch.activate("x", "ops", cause(0))
    switch.mark_saved()
    state = switch.snapshot_state()
    assert SafetySwitch.restore(switch.stream_id, 1, state, []).active is True
    with pytest.raises(SnapshotMismatch):
        SafetySwitch.restore(switch.stream_id, 1, {**state, "extra": 1}, [])
    with pytest.raises(SnapshotMismatch):
        SafetySwitch.restore(switch.stream_id, 1, {**state, "active": "yes"}, [])
    pending = SafetySwitch.for_scope("u")
    pending.activate("x", "ops", cause(0))
    with pytest.raises(ValueError, match="pending"):
        pending.snapshot_state()
