"""Snapshots of long streams, on every store (in memory, SQLite file, Postgres).

What must hold: an aggregate loaded from its newest snapshot plus the events after it equals
the full fold, down to each Decimal's digits and each datetime's offset; a snapshot is taken
each time a stream passes a multiple of `snapshot_every`; and a snapshot that is old, of
another shape, corrupt or inconsistent with its stream is ignored (full fold), never trusted.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

import domain
from adapters.eventstore.memory import InMemoryEventStore
from adapters.eventstore.migrate import upgrade
from adapters.eventstore.schema import snapshots
from adapters.eventstore.snapshot_codec import STATES, SnapshotUnreadable, decode_state, encode_state, read_snapshot
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from application import repository
from application.ports import SnapshotStore
from domain.aggregate import Aggregate, SnapshotMismatch
from domain.events import Cause, SnipeOrderFilled
from domain.exit_plans import PRESETS
from domain.listing import Listing
from domain.notifications import NotificationChannel, NotificationPreferences
from domain.position import ExitDecision, ExitReason, Position, PositionStatus
from domain.safety import SAFETY_MONITOR, SafetySwitch
from domain.target import SnipeTarget, TargetStatus, target_stream
from domain.telegram import TelegramLinks
from domain.trader import Trader, TradingPreferences
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
    folded = await full_fold(store, Position, pos.stream_id)
    await store.save_snapshot(pos.stream_id, 3, shape, folded.snapshot_state())
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
        "another version of the struct": (20, shape, lie.replace('"snapshot":"Position.1"', '"snapshot":"Position.0"')),
        "another aggregate's struct": (20, shape, lie.replace('"snapshot":"Position.1"', '"snapshot":"Listing.1"')),
        "the tagged JSON before the structs": (20, shape, re.sub(
            r'"peak_price":"([0-9.]+)"', r'"peak_price":{"$dec":"\1"}', lie.replace('"snapshot":"Position.1",', ""))),
        "no tag at all": (20, shape, lie.replace('"snapshot":"Position.1",', "")),
        "a dataclass of other fields": (20, shape, lie.replace('"base":', '"base_asset":')),
        "a decimal that is not a number": (20, shape, re.sub(r'"peak_price":"[0-9.]+"', '"peak_price":"NaN"', lie)),
        "an infinite decimal in an exit plan": (20, shape, re.sub(
            r'"stop_loss_percent":"[0-9.]+"', '"stop_loss_percent":"-Infinity"', lie)),
        "a wrong type": (20, shape, lie.replace('"quantity_scale":2', '"quantity_scale":"2"')),
        "an enum value that is gone": (20, shape, lie.replace('"status":"partially exited"', '"status":"parked"')),
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
    assert good.startswith('{"snapshot":"Position.1",') and re.search(r'"peak_price":"0\.000[0-9]+"', good)
    assert '"status":"partially exited"' in good

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

def domain_aggregates() -> list[type[Aggregate]]:
    """Every aggregate class in the domain package, found by importing its modules."""
    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"domain.{module.name}")
    found, todo = [], list(Aggregate.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("domain."):
            found.append(cls)
    return sorted(found, key=lambda cls: cls.__name__)


@pytest.mark.parametrize("aggregate", domain_aggregates(), ids=lambda cls: cls.__name__)
def test_each_aggregate_has_a_snapshot_struct_of_its_state_fields(aggregate: type[Aggregate]) -> None:
    """A state field added to an aggregate's `_blank` and not to its struct (or the reverse)
    fails here: give the struct the field, with its type, and bump the struct's tag if older
    snapshots would be misread."""
    struct = STATES.get(aggregate.__name__)
    assert struct is not None, f"adapters/eventstore/snapshot_codec.py has no snapshot struct for {aggregate.__name__}"
    fields = set(aggregate._blank_of("s").snapshot_state())
    assert set(struct.__struct_fields__) == fields, (
        f"{struct.__name__} lacks {sorted(fields - set(struct.__struct_fields__))}, "
        f"has {sorted(set(struct.__struct_fields__) - fields)} too many"
    )
    assert aggregate.snapshot_shape().startswith(f"{aggregate.__name__}/")


def exact_states() -> list[Aggregate]:
    """One aggregate of each kind, with the values a snapshot must carry exactly: decimals with
    their exponents, datetimes with offsets and microseconds, sets, tuples, dicts with int keys,
    enums, events and the domain's frozen dataclasses nested in each other."""
    launch = datetime(2026, 12, 1, 18, 30, 0, 250001, tzinfo=PLUS_FIVE_THIRTY)
    target = SnipeTarget.create("t-exact", "user-7", "coin-7", Symbol("EXA", "USDT"), launch, D("10.010"),
                                PRESETS["diamond"], D("0.850"), True, cause(0), max_entry_price=D("1.20E-7"))
    target.mark_ready("sts2-st2-tt4", D("0.95"), 3 * 3600, cause(1))
    target.schedule(launch - timedelta(milliseconds=50), launch + timedelta(seconds=30), cause(2))
    target.submit_order(cause(3))
    target.record_fill("ex-9", D("1.2E-7"), D("83416666.66"), D("10.00999999920"), D("0E-8"), "EXA", 3,
                       D("0.412"), cause(4))
    pos = Position.open("t-snap", "user-1", Symbol("SNAP", "USDT"), D("0.00009512"), D("105214.46"),
                        D("10.0080"), D("0.005004"), "USDT", 2, PRESETS["aggressive"], cause(0))
    pos.observe(D("0.00014300"), cause(1))
    pos.submit_exit(ExitDecision(ExitReason.TAKE_PROFIT, 0, D("31564.33"), D("0.00014268")), cause(2))
    pos.record_exit_failure("refused", cause(3))
    pos.submit_exit(ExitDecision(ExitReason.TAKE_PROFIT, 0, D("31564.33"), D("0.00014268")), cause(4))
    pos.record_exit_fill(D("0.00014270"), D("31564.33"), D("0.00450421"), cause(5))
    switch = SafetySwitch.for_scope("user-1")
    switch.activate("daily loss", SAFETY_MONITOR, Cause(launch, "c"), automatic=True)
    listing = Listing.announce("coin-1", "NEW", "New coin", Symbol("NEW", "USDT"), launch, cause(0))
    trader = Trader.for_user("user-1")
    trader.save_exit_strategy(replace(PRESETS["diamond"], name="mine", max_hold_seconds=3600), cause(0))
    trader.change_settings(TradingPreferences(auto_snipe=True, quote_amount=D("25.50"), exit_strategy="mine",
                                              only_tickers=("NEW", "EXA"), max_entry_price=D("0.5")), cause(1))
    trader.change_notifications(NotificationPreferences(
        (("exit", "silent"),), (NotificationChannel("telegram", True, "12345"),), "08:30"), cause(2))
    links = TelegramLinks.new()
    links.issue("user-1", "a" * 64, Cause(launch, "c"))
    links.issue("user-2", "b" * 64, cause(1))
    links.link(-1001234, "b" * 64, cause(2))
    aggregates: list[Aggregate] = [target, pos, switch, listing, trader, links]
    for agg in aggregates:
        agg.mark_saved()
    assert pos.levels_hit == {0} and pos.failed_exits and links.chats == {-1001234: "user-2"}
    return aggregates


@pytest.mark.parametrize("agg", exact_states(), ids=lambda agg: type(agg).__name__)
def test_the_codec_round_trips_each_aggregate_exactly(agg: Aggregate) -> None:
    shape, state = type(agg).snapshot_shape(), agg.snapshot_state()
    text = encode_state(shape, state)
    again = decode_state(shape, text)
    assert again == state
    assert {k: repr(v) for k, v in again.items()} == {k: repr(v) for k, v in state.items()}
    assert {k: type(v) for k, v in again.items()} == {k: type(v) for k, v in state.items()}
    restored = type(agg).restore(agg.stream_id, agg.version, again, [])
    assert_same(restored, agg)
    assert read_snapshot(agg.version, shape, text, shape) == (agg.version, state)


def test_the_codec_refuses_what_it_cannot_carry_exactly() -> None:
    switch = SafetySwitch.for_scope("global")
    shape, state = SafetySwitch.snapshot_shape(), switch.snapshot_state()
    pos_shape, pos_state = Position.snapshot_shape(), Position._blank_of("p").snapshot_state()
    with pytest.raises(TypeError, match="float"):
        encode_state(pos_shape, {**pos_state, "peak_price": 0.1})
    with pytest.raises(TypeError, match="finite"):
        encode_state(pos_shape, {**pos_state, "fees": D("NaN")})

    class Foreign:
        pass

    with pytest.raises(TypeError):
        encode_state(shape, {**state, "reason": Foreign()})
    with pytest.raises(TypeError):
        encode_state(shape, {**state, "extra": 1})
    with pytest.raises(TypeError):
        encode_state(shape, {k: v for k, v in state.items() if k != "scope"})
    with pytest.raises(TypeError, match="no snapshot struct"):
        encode_state("Unknown/1:x", state)

    good = encode_state(shape, state)
    assert decode_state(shape, good) == state
    for text in (good[:-1], "[1]", good.replace('"active":false', '"active":"no"'),
                 good.replace('"scope":"global"', '"scope":"global","extra":1'),
                 good.replace('"SafetySwitch.1"', '"Listing.1"'), good.replace('"SafetySwitch.1"', '"SafetySwitch.9"')):
        assert text != good
        with pytest.raises(SnapshotUnreadable):
            decode_state(shape, text)
    # A snapshot of another aggregate is not this one's, even if it reads.
    with pytest.raises(SnapshotUnreadable, match="not the snapshot of Listing"):
        decode_state(Listing.snapshot_shape(), good)
    assert read_snapshot(1, shape, good, Listing.snapshot_shape()) is None


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
