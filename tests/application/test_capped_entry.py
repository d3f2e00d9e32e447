"""A price cap on the entry (issue 14): the snipe sends an IMMEDIATE_OR_CANCEL limit buy at the cap
instead of a market buy, on the paper exchange. Above the opening price it fills; below it nothing
fills and the target says why; a partial fill opens a position of what filled, never a second send."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.clock import ManualClock
from adapters.eventstore.codec import decode_event, encode_event
from adapters.memory import InMemoryScheduler
from application import repository
from application.errors import ConfigurationError
from application.ports import OrderReport, OrderStatus, TraderSettings
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from application.use_cases.targets import CreateSnipeTarget, NewSnipe, SnipeAmendment, UpdateSnipeTarget
from domain.errors import InvalidValue
from domain.events import (
    Cause,
    SnipeOrderSubmitted,
    SnipeTargetAmended,
    SnipeTargetCreated,
    TraderSettingsChanged,
)
from domain.exit_plans import PRESETS
from domain.listing import target_id_for
from domain.position import Position, position_stream
from domain.target import SnipeTarget, TargetStatus, entry_price_cap, target_stream
from domain.trader import Trader, TradingPreferences
from domain.values import ClientOrderId, Symbol
from entrypoints.timeline import describe
from tests.adapters.paper_support import ANNOUNCED, LAUNCH, build_scenario, trader
from tests.application.support import COIN, DEADLINE, NEW, World, before_launch, coid_of, world_at


async def capped_target(world: World, cap: str | None, quote_amount: str = "10") -> str:
    """A scheduled target for the scenario's NEW listing (it opens at 0.5) with an entry cap."""
    target_id = "t-capped"
    cause = Cause(world.clock.now(), target_id)
    target = SnipeTarget.create(target_id, "alice", COIN, NEW, LAUNCH, Decimal(quote_amount), PRESETS["balanced"],
                                Decimal("0.95"), False, cause, None if cap is None else Decimal(cap))
    target.mark_ready("ready", Decimal("0.95"), 1800, cause)
    target.schedule(LAUNCH, DEADLINE, cause)
    await repository.save(world.store, target)
    return target_id


async def submitted(world: World, target_id: str) -> SnipeOrderSubmitted:
    [event] = [r.event for r in await world.store.load(target_stream(target_id))
               if isinstance(r.event, SnipeOrderSubmitted)]
    return event


class TestOnPaper:
    async def test_a_cap_above_the_opening_price_fills_at_the_price(self) -> None:
        world = world_at(before_launch())
        tid = await capped_target(world, "0.6")
        outcome = await world.execute_snipe()(tid)

        assert outcome.result is SnipeResult.FILLED, outcome.detail
        # One IOC limit at the cap for 10 / 0.6 = 16.66 (the pair's step), filled at the open's 0.5.
        assert world.order_calls() == [f"buy NEWUSDT 10 {coid_of(tid)} ioc<=0.6"]
        target = await world.target(tid)
        assert target.status is TargetStatus.FILLED and target.fill is not None
        assert (target.fill.quantity, target.fill.price, target.fill.quote_spent) == (
            Decimal("16.66"), Decimal("0.5"), Decimal("8.330"))
        assert (await submitted(world, tid)).max_entry_price == Decimal("0.6")
        [pos] = world.book.open_positions("alice")
        assert (pos.quantity, pos.entry_price) == (Decimal("16.66"), Decimal("0.5"))

    async def test_a_cap_below_the_opening_price_buys_nothing_and_says_why(self) -> None:
        world = world_at(before_launch())
        tid = await capped_target(world, "0.0123")
        outcome = await world.execute_snipe()(tid)

        assert outcome.result is SnipeResult.FAILED
        assert world.order_calls() == [f"buy NEWUSDT 10 {coid_of(tid)} ioc<=0.0123"]  # sent once, never again
        target = await world.target(tid)
        assert target.status is TargetStatus.FAILED
        assert target.failure == (f"no fill at or below the cap 0.0123: the price opened at 0.5 "
                                  f"(order {coid_of(tid)} ended CANCELED with nothing bought)")
        assert outcome.detail == target.failure
        await world.book.catch_up(world.store)
        assert world.book.open_positions("alice") == []
        assert world.book.targets[tid].reason == target.failure  # what the target view shows
        [order] = world.paper.orders
        assert (order.status, order.executed_quantity) == (OrderStatus.CANCELED, Decimal(0))

    async def test_a_cap_at_the_opening_price_fills(self) -> None:
        world = world_at(before_launch())
        tid = await capped_target(world, "0.5")
        assert (await world.execute_snipe()(tid)).result is SnipeResult.FILLED

    async def test_a_cap_whose_amount_buys_less_than_the_minimum_is_refused_unsent(self) -> None:
        world = world_at(before_launch())
        tid = await capped_target(world, "0.6", quote_amount="0.5")  # 0.83 x 0.6 = 0.498 < 1 USDT
        outcome = await world.execute_snipe()(tid)
        assert outcome.result is SnipeResult.FAILED
        assert "below the minimum order" in (await world.target(tid)).failure  # type: ignore[operator]
        assert world.paper.orders == []

    async def test_without_a_cap_the_buy_is_a_market_buy_as_before(self) -> None:
        world = world_at(before_launch())
        tid = await capped_target(world, None)
        assert (await world.execute_snipe()(tid)).result is SnipeResult.FILLED
        assert world.order_calls() == [f"buy NEWUSDT 10 {coid_of(tid)}"]
        assert (await submitted(world, tid)).max_entry_price is None


class _ThinBook:
    """The paper exchange, but a capped buy fills 5 of what it asks (a thin book at the open), the
    rest cancelled: PARTIALLY_CANCELED."""

    def __init__(self, world: World) -> None:
        self.paper = world.paper
        self.capped: list[str] = []

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.paper, name)

    async def place_capped_buy(self, symbol: Symbol, quote_amount: Decimal, max_price: Decimal,
                               coid: ClientOrderId) -> OrderReport:
        self.capped.append(coid.value)
        full = await self.paper.place_capped_buy(symbol, quote_amount, max_price, coid)
        part = Decimal("5")
        return dataclasses.replace(full, status=OrderStatus.PARTIALLY_CANCELED, executed_quantity=part,
                                   executed_quote=part * full.average_price, fee=Decimal(0), fee_asset="")

    async def query_order(self, symbol: Symbol, coid: ClientOrderId) -> OrderReport | None:
        raise AssertionError("the IOC's reply is final: nothing to ask")


async def test_a_partial_ioc_fill_opens_a_position_of_what_filled_and_sends_nothing_more() -> None:
    world = world_at(before_launch())
    tid = await capped_target(world, "0.6")
    thin = _ThinBook(world)
    execute = ExecuteSnipe(world.store, thin, world.paper, world.traders, world.locks, world.clock,  # type: ignore[arg-type]
                           world.book, world.timing)
    outcome = await execute(tid)

    assert outcome.result is SnipeResult.FILLED, outcome.detail
    assert thin.capped == [coid_of(tid).value]  # one send: the remainder is not sent again
    target = await world.target(tid)
    assert target.fill is not None and target.fill.quantity == Decimal("5")
    [record] = [r for r in await world.store.read_all() if r.stream_id.startswith("position-")]
    position = await repository.get(world.store, Position, record.stream_id)
    assert position.quantity == Decimal("5") and position.entry_price == Decimal("0.5")
    assert record.stream_id == position_stream(position.position_id)


class TestTargets:
    async def test_a_new_target_takes_the_settings_cap_unless_it_names_its_own(self) -> None:
        world = world_at(before_launch(3600))
        world.traders.put(TraderSettings("alice", max_entry_price=Decimal("0.05")))
        create = CreateSnipeTarget(world.store, world.traders, InMemoryScheduler(), world.clock, world.timing,
                                   world.book)
        default = await create(NewSnipe("alice", NEW, LAUNCH, Decimal("10")))
        own = await create(NewSnipe("alice", Symbol("OWN", "USDT"), LAUNCH, Decimal("10"),
                                    max_entry_price=Decimal("0.2")))
        assert (await world.target(default)).max_entry_price == Decimal("0.05")
        assert (await world.target(own)).max_entry_price == Decimal("0.2")

    async def test_the_calendar_gives_auto_snipe_targets_the_settings_cap(self) -> None:
        world = world_at(ANNOUNCED, traders=[TraderSettings("alice", max_entry_price=Decimal("0.7")),
                                             TraderSettings("bob")])
        await world.sync_calendar()()
        assert (await world.target(target_id_for("alice", COIN))).max_entry_price == Decimal("0.7")
        assert (await world.target(target_id_for("bob", COIN))).max_entry_price is None

    async def test_an_amendment_keeps_changes_or_drops_the_cap(self) -> None:
        world = world_at(before_launch(3600))
        create = CreateSnipeTarget(world.store, world.traders, InMemoryScheduler(), world.clock, world.timing,
                                   world.book)
        tid = await create(NewSnipe("alice", NEW, LAUNCH, Decimal("10"), max_entry_price=Decimal("0.2")))
        update = UpdateSnipeTarget(world.store, world.traders, world.clock, world.book)

        await update(SnipeAmendment("alice", tid, quote_amount=Decimal("12")))
        assert (await world.target(tid)).max_entry_price == Decimal("0.2")  # not named: unchanged
        await update(SnipeAmendment("alice", tid, max_entry_price=Decimal("0.3")))
        assert (await world.target(tid)).max_entry_price == Decimal("0.3")
        await update(SnipeAmendment("alice", tid, clear_max_entry_price=True))
        assert (await world.target(tid)).max_entry_price is None
        await world.book.catch_up(world.store)
        assert world.book.targets[tid].max_entry_price is None

    @pytest.mark.parametrize("bad", ["0", "-1", "0.0000000000000000001", "1" * 21, "NaN"])
    def test_a_cap_that_is_not_a_positive_bounded_decimal_is_refused(self, bad: str) -> None:
        with pytest.raises(InvalidValue):
            entry_price_cap(bad)
        cause = Cause(LAUNCH, "t")
        with pytest.raises(InvalidValue):
            SnipeTarget.create("t", "alice", COIN, NEW, LAUNCH, Decimal(10), PRESETS["balanced"], Decimal(1), False,
                               cause, Decimal(bad))
        with pytest.raises(InvalidValue):
            Trader.for_user("alice").change_settings(TradingPreferences(max_entry_price=Decimal(bad)), cause)

    def test_the_settings_default_is_recorded_and_folded(self) -> None:
        trader = Trader.for_user("alice")
        stored = trader.change_settings(TradingPreferences(max_entry_price=Decimal("0.0123")), Cause(LAUNCH, "c"))
        assert stored.max_entry_price == Decimal("0.0123")


class TestHistory:
    @pytest.mark.parametrize("event_type, payload, field", [
        ("SnipeTargetCreated",
         b'{"target_id":"t","coin_id":"c","symbol":"NEWUSDT","launch_at":"2026-11-25T10:00:00Z","quote_amount":"10",'
         b'"quote_asset":"USDT","exit_plan":{"name":"balanced","take_profits":[],"stop_loss_percent":"10",'
         b'"trailing_stop_percent":null,"max_hold_seconds":null},"confidence":"1","live":false}', "max_entry_price"),
        ("SnipeOrderSubmitted", b'{"target_id":"t","client_order_id":"snp1","symbol":"NEWUSDT","quote_amount":"10"}',
         "max_entry_price"),
    ])
    def test_events_recorded_before_the_cap_still_decode_without_one(
        self, event_type: str, payload: bytes, field: str
    ) -> None:
        event = decode_event(event_type, payload)
        assert getattr(event, field) is None

    def test_old_settings_and_amendments_decode_without_a_cap(self) -> None:
        settings = TraderSettingsChanged(True, Decimal(10), "USDT", "balanced", Decimal("0.8"), (), (),
                                         Trader.for_user("a").preferences.risk)
        name, payload = encode_event(settings)
        old = payload.replace(b',"max_entry_price":null', b"")
        assert old != payload and decode_event(name, old) == settings
        amended = SnipeTargetAmended("t", Decimal(10), PRESETS["balanced"], "alice")
        name, payload = encode_event(amended)
        assert decode_event(name, payload.replace(b',"max_entry_price":null', b"")) == amended

    def test_the_timeline_shows_the_cap(self) -> None:
        from domain.events import Recorded

        created = SnipeTargetCreated("t", "c", "NEWUSDT", LAUNCH, Decimal(10), "USDT", PRESETS["balanced"],
                                     Decimal(1), False, Decimal("0.0123"))
        sent = SnipeOrderSubmitted("t", "snp1", "NEWUSDT", Decimal(10), Decimal("0.0123"))
        lines = [describe(Recorded("target-t", n, LAUNCH, "alice", "t", ev))[1] for n, ev in enumerate((created, sent))]
        assert lines == [
            "target t created: 10 USDT, exit plan balanced, entry capped at 0.0123",
            "IOC limit buy for 10 at most 0.0123 each submitted (client id snp1)",
        ]


class TestScenario:
    """A replay scenario's trader may carry a cap: the calendar's targets for them take it, and the
    whole auto-snipe path (calendar, ready state, launch) runs it on the paper exchange."""

    async def test_an_auto_snipe_capped_below_the_open_fails_saying_why_and_one_above_fills(self) -> None:
        scenario = build_scenario(traders=[trader(user_id="alice", max_entry_price="0.1"),
                                           trader(user_id="bob", max_entry_price="0.75")])
        world = World(scenario, ManualClock(ANNOUNCED))
        await world.sync_calendar()()
        world.clock.set(LAUNCH - timedelta(minutes=20))  # the ready state is in force: both are scheduled
        await world.detect_ready()()
        world.clock.set(before_launch())
        outcomes = {user: await world.execute_snipe()(target_id_for(user, COIN)) for user in ("alice", "bob")}

        assert outcomes["bob"].result is SnipeResult.FILLED, outcomes["bob"].detail
        assert outcomes["alice"].result is SnipeResult.FAILED
        assert outcomes["alice"].detail.startswith("no fill at or below the cap 0.1: the price opened at 0.5")

    @pytest.mark.parametrize(("cap", "problem"), [
        ("0", "traders[0].max_entry_price: must be between"),
        ("2E+9", "traders[0].max_entry_price: must be between"),
        ("0.0000000000001", "traders[0].max_entry_price: must be between"),
    ])
    def test_a_bad_cap_in_a_scenario_is_one_line_naming_it(self, cap: str, problem: str) -> None:
        with pytest.raises(ConfigurationError) as info:
            build_scenario(traders=[trader(max_entry_price=cap)])
        assert problem in str(info.value) and "\n" not in str(info.value)
