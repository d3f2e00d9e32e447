"""The paper exchange: what it shows when, how it fills, and the faults it can rehearse."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.clock import ManualClock
from adapters.paper.exchange import Fault, PaperExchange
from application.errors import AmbiguousOutcome, NotFound, NotYetOpen, OrderRefused, RateLimited
from application.ports import OrderSide, OrderStatus
from domain.values import ClientOrderId, Symbol, SymbolState
from tests.adapters.paper_support import ANNOUNCED, LAUNCH, build_scenario, listing

NEW = Symbol("NEW", "USDT")
US = timedelta(microseconds=1)


def coid(n: int = 1) -> ClientOrderId:
    return ClientOrderId(f"test-order-{n}")


def exchange_at(moment, listings=None, **overrides) -> tuple[PaperExchange, ManualClock]:
    clock = ManualClock(moment)
    return PaperExchange(build_scenario(listings, **overrides), clock), clock


class TestListingFeed:
    async def test_calendar_hides_a_listing_until_it_is_announced(self) -> None:
        paper, clock = exchange_at(ANNOUNCED - US)
        assert await paper.calendar() == []
        clock.set(ANNOUNCED)
        [entry] = await paper.calendar()
        assert (entry.coin_id, entry.ticker, entry.full_name, entry.symbol, entry.launch_at) == (
            "new-1", "NEW", "New Coin", NEW, LAUNCH,
        )

    async def test_calendar_shows_each_listing_from_its_own_announcement(self) -> None:
        later = listing(coin_id="late-2", ticker="LATE", full_name="", announced_at="2026-11-25T09:00:00Z")
        paper, clock = exchange_at(ANNOUNCED, [listing(), later])
        assert [e.coin_id for e in await paper.calendar()] == ["new-1"]
        clock.set(ANNOUNCED + timedelta(hours=1))
        entries = {e.coin_id: e for e in await paper.calendar()}
        assert set(entries) == {"new-1", "late-2"}
        assert entries["late-2"].full_name == "LATE"  # no full name: the ticker stands in

    async def test_symbol_states_hidden_before_announcement(self) -> None:
        early_state = listing(states=[{"at": "2026-11-25T07:00:00Z", "sts": 1, "st": 1, "tt": 1}])
        paper, clock = exchange_at(ANNOUNCED - US, [early_state])
        assert await paper.symbol_states() == []
        clock.set(ANNOUNCED)
        assert [r.state.sts for r in await paper.symbol_states()] == [1]

    async def test_symbol_states_report_the_latest_state_in_force(self) -> None:
        paper, clock = exchange_at(ANNOUNCED)
        launch_ms = int(LAUNCH.timestamp() * 1000)

        async def state() -> SymbolState:
            [report] = await paper.symbol_states()
            assert (report.coin_id, report.ticker) == ("new-1", "NEW")
            return report.state

        assert await state() == SymbolState(1, 1, 1, launch_ms)
        clock.set(LAUNCH - timedelta(hours=1) - US)
        assert await state() == SymbolState(1, 1, 1, launch_ms)
        clock.set(LAUNCH - timedelta(hours=1))
        assert await state() == SymbolState(2, 1, 1, launch_ms)
        clock.set(LAUNCH - timedelta(minutes=30))
        assert await state() == SymbolState(2, 2, 4, launch_ms)
        clock.set(LAUNCH + timedelta(hours=1))
        assert await state() == SymbolState(2, 2, 4, launch_ms)

    async def test_no_state_yet_means_no_report(self) -> None:
        late_state = listing(states=[{"at": "2026-11-25T09:00:00Z", "sts": 2, "st": 1, "tt": 1}])
        paper, clock = exchange_at(ANNOUNCED, [late_state])
        assert await paper.symbol_states() == []
        clock.set(ANNOUNCED + timedelta(hours=1))
        assert len(await paper.symbol_states()) == 1


class TestMarketData:
    async def test_symbol_rules_come_from_the_scenario(self) -> None:
        paper, _ = exchange_at(ANNOUNCED, [listing(min_notional="5", quantity_scale=3)], taker_fee="0.001")
        rules = await paper.symbol_rules(NEW)
        assert (rules.symbol, rules.price_scale, rules.quantity_scale, rules.min_notional, rules.taker_fee) == (
            NEW, 4, 3, Decimal("5"), Decimal("0.001"),
        )

    async def test_unknown_symbol_rules_raise_not_found(self) -> None:
        paper, _ = exchange_at(ANNOUNCED)
        with pytest.raises(NotFound):
            await paper.symbol_rules(Symbol("NOPE", "USDT"))
        assert await paper.last_price(Symbol("NOPE", "USDT")) is None

    async def test_last_price_is_none_before_open_then_follows_the_scenario(self) -> None:
        paper, clock = exchange_at(LAUNCH - US, [listing(open_delay_ms=45)])
        assert await paper.last_price(NEW) is None
        clock.set(LAUNCH + timedelta(milliseconds=45) - US)
        assert await paper.last_price(NEW) is None
        clock.set(LAUNCH + timedelta(milliseconds=45))
        assert await paper.last_price(NEW) == Decimal("0.5")
        clock.set(LAUNCH + timedelta(milliseconds=45, seconds=60))
        assert await paper.last_price(NEW) == Decimal("0.6")

    def test_ticks_between_excludes_after_and_includes_until(self) -> None:
        paper, _ = exchange_at(ANNOUNCED)
        t0, t60, t120 = LAUNCH, LAUNCH + timedelta(seconds=60), LAUNCH + timedelta(seconds=120)
        assert [t.at for t in paper.ticks_between(t0, t120)] == [t60, t120]
        assert [t.at for t in paper.ticks_between(t0 - US, t60 - US)] == [t0]
        assert paper.ticks_between(t0, t60 - US) == []
        assert paper.ticks_between(t60, t60) == []
        [tick] = paper.ticks_between(t60 - US, t60)
        assert (tick.symbol, tick.price, tick.at) == (NEW, Decimal("0.6"), t60)

    def test_ticks_of_several_listings_come_in_time_order(self) -> None:
        other = listing(
            coin_id="alt-2", ticker="ALT", launch_at="2026-11-25T10:00:30.045Z",
            prices=[{"t": "0", "price": "2"}, {"t": "30", "price": "3"}],
        )
        paper, _ = exchange_at(ANNOUNCED, [listing(open_delay_ms=45), other])
        ticks = paper.ticks_between(ANNOUNCED, LAUNCH + timedelta(hours=1))
        # ALT's second point and NEW's second point fall on the same instant: by symbol then.
        assert ticks[2].at == ticks[3].at == LAUNCH + timedelta(seconds=60, milliseconds=45)
        assert [(t.symbol.base, str(t.price)) for t in ticks] == [
            ("NEW", "0.5"), ("ALT", "2"), ("ALT", "3"), ("NEW", "0.6"), ("NEW", "0.44"),
        ]
        assert ticks[0].at == LAUNCH + timedelta(milliseconds=45)
        assert [t.at for t in ticks] == sorted(t.at for t in ticks)


class TestOrders:
    async def test_not_yet_open_until_launch_plus_open_delay(self) -> None:
        paper, clock = exchange_at(LAUNCH, [listing(open_delay_ms=45)])
        with pytest.raises(NotYetOpen) as info:
            await paper.place_market_buy(NEW, Decimal("10"), coid())
        assert info.value.code == "10007"
        clock.set(LAUNCH + timedelta(milliseconds=45) - US)
        with pytest.raises(NotYetOpen):
            await paper.place_market_buy(NEW, Decimal("10"), coid())
        assert await paper.query_order(NEW, coid()) is None  # refused orders leave nothing behind
        clock.set(LAUNCH + timedelta(milliseconds=45))
        report = await paper.place_market_buy(NEW, Decimal("10"), coid())
        assert report.status is OrderStatus.FILLED

    async def test_sell_before_open_is_not_yet_open_either(self) -> None:
        paper, _ = exchange_at(LAUNCH - US)
        with pytest.raises(NotYetOpen):
            await paper.place_market_sell(NEW, Decimal("1"), coid())

    async def test_market_buy_by_quote_rounds_quantity_down_and_charges_the_taker_fee_exactly(self) -> None:
        priced = listing(quantity_scale=2, prices=[{"t": "0", "price": "0.3"}])
        paper, _ = exchange_at(LAUNCH, [priced], taker_fee="0.0005")
        report = await paper.place_market_buy(NEW, Decimal("10"), coid())
        # 10 / 0.3 = 33.333..., rounded down (never up) to 2 places.
        assert report.executed_quantity == Decimal("33.33")
        assert report.executed_quote == Decimal("9.999")
        assert report.average_price == Decimal("0.3")
        assert report.fee == Decimal("0.0049995")
        assert report.fee_asset == "USDT"
        assert (report.symbol, report.client_order_id, report.side, report.status) == (
            NEW, coid(), OrderSide.BUY, OrderStatus.FILLED,
        )
        assert report.created_at == LAUNCH
        assert all(isinstance(v, Decimal) for v in (report.executed_quantity, report.executed_quote, report.fee))

    async def test_rounding_never_rounds_up_even_just_below_a_step(self) -> None:
        # 9.999 / 1 = 9.999 must become 9.99, not 10.00.
        priced = listing(quantity_scale=2, prices=[{"t": "0", "price": "1"}])
        paper, _ = exchange_at(LAUNCH, [priced])
        report = await paper.place_market_buy(NEW, Decimal("9.999"), coid())
        assert report.executed_quantity == Decimal("9.99")
        assert report.executed_quote == Decimal("9.99")

    async def test_whole_units_with_quantity_scale_zero(self) -> None:
        priced = listing(quantity_scale=0, prices=[{"t": "0", "price": "0.00009512"}])
        paper, _ = exchange_at(LAUNCH, [priced], taker_fee="0.001")
        report = await paper.place_market_buy(NEW, Decimal("50"), coid())
        assert report.executed_quantity == Decimal("525651")
        assert report.executed_quote == Decimal("525651") * Decimal("0.00009512")
        assert report.fee == report.executed_quote * Decimal("0.001")

    async def test_market_buy_fills_at_the_price_in_force(self) -> None:
        paper, clock = exchange_at(LAUNCH + timedelta(seconds=90))
        report = await paper.place_market_buy(NEW, Decimal("12"), coid())
        assert report.average_price == Decimal("0.6")
        assert report.executed_quantity == Decimal("20")

    async def test_market_sell_fills_the_quantity_and_charges_the_fee(self) -> None:
        paper, _ = exchange_at(LAUNCH + timedelta(seconds=60))
        report = await paper.place_market_sell(NEW, Decimal("8"), coid())
        assert (report.side, report.executed_quantity, report.executed_quote, report.fee) == (
            OrderSide.SELL, Decimal("8"), Decimal("4.8"), Decimal("0.0024"),
        )

    async def test_below_min_notional_is_refused_with_30002(self) -> None:
        paper, _ = exchange_at(LAUNCH, [listing(min_notional="5")])
        with pytest.raises(OrderRefused) as info:
            await paper.place_market_buy(NEW, Decimal("4.99"), coid())
        assert info.value.code == "30002"
        assert await paper.query_order(NEW, coid()) is None
        # Exactly the minimum is enough.
        report = await paper.place_market_buy(NEW, Decimal("5"), coid(2))
        assert report.executed_quote == Decimal("5")

    async def test_a_quantity_that_rounds_to_nothing_is_refused(self) -> None:
        paper, _ = exchange_at(LAUNCH, [listing(min_notional="0", quantity_scale=0)])
        with pytest.raises(OrderRefused) as info:
            await paper.place_market_buy(NEW, Decimal("0.49"), coid())
        assert info.value.code == "30002"

    async def test_duplicate_client_order_id_is_refused(self) -> None:
        paper, _ = exchange_at(LAUNCH)
        first = await paper.place_market_buy(NEW, Decimal("10"), coid())
        with pytest.raises(OrderRefused):
            await paper.place_market_buy(NEW, Decimal("10"), coid())
        with pytest.raises(OrderRefused):
            await paper.place_market_sell(NEW, Decimal("1"), coid())
        assert await paper.query_order(NEW, coid()) == first
        again = await paper.place_market_buy(NEW, Decimal("10"), coid(2))
        assert again.exchange_order_id != first.exchange_order_id

    async def test_unknown_symbol_is_refused(self) -> None:
        paper, _ = exchange_at(LAUNCH)
        with pytest.raises(OrderRefused) as info:
            await paper.place_market_buy(Symbol("NOPE", "USDT"), Decimal("10"), coid())
        assert info.value.code == "30014"

    async def test_query_order_by_client_id(self) -> None:
        paper, _ = exchange_at(LAUNCH)
        placed = await paper.place_market_buy(NEW, Decimal("10"), coid())
        assert await paper.query_order(NEW, coid()) == placed
        assert await paper.query_order(NEW, coid(2)) is None
        assert await paper.query_order(Symbol("OTHER", "USDT"), coid()) is None
        assert paper.calls[-3:] == [f"query NEWUSDT {coid()}", f"query NEWUSDT {coid(2)}", f"query OTHERUSDT {coid()}"]

    async def test_paper_orders_are_never_left_open(self) -> None:
        paper, _ = exchange_at(LAUNCH)
        await paper.place_market_buy(NEW, Decimal("10"), coid())
        assert await paper.open_orders() == []
        assert await paper.cancel_order(NEW, coid()) is None

    async def test_calls_are_recorded_in_order(self) -> None:
        paper, _ = exchange_at(LAUNCH)
        await paper.prepare(NEW)
        await paper.place_market_buy(NEW, Decimal("10"), coid())
        await paper.place_market_sell(NEW, Decimal("2"), coid(2))
        assert paper.calls == [
            "prepare NEWUSDT", f"buy NEWUSDT 10 {coid()}", f"sell NEWUSDT 2 {coid(2)}",
        ]


class TestFaults:
    async def test_timeout_before_accept_leaves_no_order(self) -> None:
        paper, _ = exchange_at(LAUNCH)
        paper.faults.append(Fault.TIMEOUT_BEFORE_ACCEPT)
        with pytest.raises(AmbiguousOutcome):
            await paper.place_market_buy(NEW, Decimal("10"), coid())
        assert await paper.query_order(NEW, coid()) is None
        # The id is still free: a resend after the query goes through once.
        assert (await paper.place_market_buy(NEW, Decimal("10"), coid())).status is OrderStatus.FILLED

    async def test_timeout_after_accept_places_the_order_and_loses_the_reply(self) -> None:
        paper, _ = exchange_at(LAUNCH)
        paper.faults.append(Fault.TIMEOUT_AFTER_ACCEPT)
        with pytest.raises(AmbiguousOutcome):
            await paper.place_market_buy(NEW, Decimal("10"), coid())
        found = await paper.query_order(NEW, coid())
        assert found is not None
        assert (found.status, found.executed_quantity, found.fee) == (
            OrderStatus.FILLED, Decimal("20"), Decimal("0.0050")
        )
        with pytest.raises(OrderRefused):  # a blind resend could not make a second one
            await paper.place_market_buy(NEW, Decimal("10"), coid())

    async def test_rate_limited_says_how_long_to_wait_and_places_nothing(self) -> None:
        paper, _ = exchange_at(LAUNCH)
        paper.faults.append(Fault.RATE_LIMITED)
        with pytest.raises(RateLimited) as info:
            await paper.place_market_buy(NEW, Decimal("10"), coid())
        assert info.value.retry_after == timedelta(milliseconds=100)
        assert await paper.query_order(NEW, coid()) is None

    async def test_insufficient_balance_is_a_final_refusal_with_10101(self) -> None:
        paper, _ = exchange_at(LAUNCH)
        paper.faults.append(Fault.INSUFFICIENT_BALANCE)
        with pytest.raises(OrderRefused) as info:
            await paper.place_market_sell(NEW, Decimal("10"), coid())
        assert info.value.code == "10101"
        assert await paper.query_order(NEW, coid()) is None

    async def test_faults_apply_one_per_order_call_in_the_order_queued(self) -> None:
        paper, _ = exchange_at(LAUNCH)
        paper.faults.extend([Fault.RATE_LIMITED, Fault.INSUFFICIENT_BALANCE])
        await paper.query_order(NEW, coid())  # queries take no fault
        with pytest.raises(RateLimited):
            await paper.place_market_buy(NEW, Decimal("10"), coid())
        with pytest.raises(OrderRefused):
            await paper.place_market_buy(NEW, Decimal("10"), coid())
        assert not paper.faults
        assert (await paper.place_market_buy(NEW, Decimal("10"), coid())).status is OrderStatus.FILLED
