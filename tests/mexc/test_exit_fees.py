"""The exit path on MexcExchange against the fake exchange, in real time on 127.0.0.1.

MEXC takes a buy's fee out of the bought coin: the account then holds executedQty minus the
fee. GET order does not say so, myTrades does. The position must hold what the account holds,
the exit must never ask for more than that (10101 on every tick), and a stop-loss whose reply
is lost must not be sold twice while the order is not yet visible."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.clock import SystemClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryLockService, InMemoryTraderDirectory
from adapters.mexc.exchange import MexcExchange
from adapters.telemetry.instrument import InstrumentedExchange
from application import repository
from application.ports import MarketData, OrderSide, OrderStatus, PriceTick, TraderSettings
from application.telemetry import NO_TELEMETRY
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.monitor import MonitorSafety
from application.use_cases.positions import ManagePositions
from application.use_cases.safety import ActivateEmergencyStop
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from domain.events import Cause, DustWrittenOff, ExitOrderFailed, StopLossHit
from domain.exit_plans import PRESETS
from domain.position import Position, position_id_for, position_stream
from domain.target import SnipeTarget
from tests.fakes.mexc_http import ACCOUNT, MY_TRADES, ORDER, FakeMexcServer, Fault, FaultKind
from tests.mexc.support import NEW, client_for, coid, new_symbol

TARGET_ID = "t-fee"
BOUGHT = Decimal("33.33")  # 10 USDT at 0.3, rounded down to the step (0.01)
FEE = BOUGHT * Decimal("0.0005")  # 0.016665 NEW, MEXC's taker fee out of the coin


# --- the adapter -------------------------------------------------------------------------------

async def test_a_buy_reports_its_fee_in_the_coin_and_a_sell_in_the_quote() -> None:
    async with FakeMexcServer(symbols=[new_symbol()], charge_fees=True) as server, client_for(server) as client:
        exchange = MexcExchange(client, clock_samples=1)
        await exchange.prepare(NEW)
        await exchange.place_market_buy(NEW, Decimal("10"), coid(1))
        bought = await exchange.query_order(NEW, coid(1))
        assert bought is not None and bought.side is OrderSide.BUY
        assert (bought.executed_quantity, bought.fee, bought.fee_asset) == (BOUGHT, FEE, "NEW")
        assert server.balances["NEW"] == BOUGHT - FEE == await exchange.free_balance("NEW")

        await exchange.place_market_sell(NEW, Decimal("10"), coid(2))
        sold = await exchange.query_order(NEW, coid(2))
        assert sold is not None and (sold.fee, sold.fee_asset) == (Decimal("3.0") * Decimal("0.0005"), "USDT")
        # A done order's fills never change: myTrades is read once per order.
        hits = server.hits[MY_TRADES]
        await exchange.query_order(NEW, coid(1))
        assert server.hits[MY_TRADES] == hits == 2
        assert await exchange.free_balance("XYZ") == 0


async def test_a_free_fill_reports_a_fee_of_0_in_the_quote() -> None:
    # A known fee always names its asset: "" is kept for a fee not known (learnt after the fill).
    async with FakeMexcServer(symbols=[new_symbol()]) as server, client_for(server) as client:
        exchange = MexcExchange(client, clock_samples=1)
        await exchange.place_market_buy(NEW, Decimal("10"), coid(1))
        report = await exchange.query_order(NEW, coid(1))
        assert report is not None and (report.fee, report.fee_asset) == (Decimal(0), "USDT")
        assert server.hits[MY_TRADES] == 1


async def test_when_my_trades_fails_the_fill_is_reported_without_a_fee_and_asked_again_later() -> None:
    async with FakeMexcServer(symbols=[new_symbol()], charge_fees=True) as server, \
            client_for(server, read_attempts=1) as client:
        exchange = MexcExchange(client, clock_samples=1)
        await exchange.place_market_buy(NEW, Decimal("10"), coid(1))
        server.inject(Fault(FaultKind.ERROR_CODE, MY_TRADES, status=400, code=700007, message="no permission"))
        report = await exchange.query_order(NEW, coid(1))
        assert report is not None and report.status is OrderStatus.FILLED
        assert (report.executed_quantity, report.fee, report.fee_asset) == (BOUGHT, Decimal(0), "")
        again = await exchange.query_order(NEW, coid(1))
        assert again is not None and (again.fee, again.fee_asset) == (FEE, "NEW")


# --- the exit path, end to end ---------------------------------------------------------------

@dataclass
class Rig:
    server: FakeMexcServer
    exchange: MexcExchange
    store: InMemoryEventStore
    clock: SystemClock
    book: TradeBook

    async def buy(self, market: MarketData | None = None) -> Position:
        """u1 snipes 10 USDT of NEW, now; the pair's rules from `market` (default: the exchange)."""
        now = self.clock.now()
        target = SnipeTarget.create(TARGET_ID, "u1", "c", NEW, now, Decimal("10"), PRESETS["balanced"], Decimal("0.9"),
                                    False, Cause(now, "x"))
        target.mark_ready("r", Decimal("0.9"), 60, Cause(now, "x"))
        target.schedule(now, now + timedelta(seconds=5), Cause(now, "x"))
        await repository.save(self.store, target)
        snipe = ExecuteSnipe(self.store, self.exchange, market or self.exchange,
                             InMemoryTraderDirectory([TraderSettings("u1")]),
                             InMemoryLockService(self.clock), self.clock, self.book,
                             SnipeTiming(retry_interval=timedelta(milliseconds=10)))
        assert (await snipe(TARGET_ID)).result is SnipeResult.FILLED
        return await self.position()

    async def position(self) -> Position:
        return await repository.get(self.store, Position, position_stream(position_id_for(TARGET_ID)))

    def monitor(self) -> MonitorSafety:
        stop = ActivateEmergencyStop(self.store, self.exchange, self.clock, self.book)
        return MonitorSafety(self.store, self.exchange, InMemoryTraderDirectory([TraderSettings("u1")]),
                             stop, self.clock, self.book)

    async def events(self) -> list[object]:
        return [r.event for r in await self.store.load(position_stream(position_id_for(TARGET_ID)))]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with FakeMexcServer(symbols=[new_symbol()], charge_fees=True) as server, client_for(server) as client:
        yield Rig(server, MexcExchange(client, clock_samples=1), InMemoryEventStore(), SystemClock(), TradeBook())


async def test_the_position_holds_what_the_account_holds_and_the_stop_loss_sells_it(rig: Rig) -> None:
    position = await rig.buy()
    assert position.remaining == BOUGHT - FEE == rig.server.balances["NEW"]  # 33.313335

    rig.server.symbols["NEWUSDT"].price = Decimal("0.2")  # -33 %: stop-loss
    monitor = rig.monitor()
    await monitor()
    [outcome] = await ManagePositions(rig.store, rig.exchange, rig.clock, rig.book).on_tick(
        PriceTick(NEW, Decimal("0.2"), rig.clock.now()))

    assert (outcome.reason, outcome.filled, outcome.quantity) == ("stop_loss", True, "33.31")  # rounded down
    events = await rig.events()
    assert not any(isinstance(e, ExitOrderFailed) for e in events)
    [dust] = [e for e in events if isinstance(e, DustWrittenOff)]
    assert dust.quantity == Decimal("0.003335") and "dust" in dust.reason
    assert rig.book.open_positions("u1") == []
    assert rig.server.balances["NEW"] == Decimal("0.003335")  # what was written off is what is left
    assert (await monitor()).trips == []


@pytest.mark.parametrize("instrumented", [False, True], ids=["bare", "instrumented"])
async def test_with_the_fee_unknown_the_exit_sells_what_the_account_holds_and_trips_nothing(
    rig: Rig, instrumented: bool
) -> None:
    # myTrades unreadable while the snipe confirms its fill: the position holds executedQty,
    # the account 0.016665 less.
    rig.server.inject(Fault(FaultKind.ERROR_CODE, MY_TRADES, times=1000, status=400, code=700007, message="no"))
    position = await rig.buy()
    assert position.remaining == BOUGHT and rig.server.balances["NEW"] == BOUGHT - FEE
    rig.server.clear_faults()

    rig.server.symbols["NEWUSDT"].price = Decimal("0.2")
    monitor = rig.monitor()
    await monitor()
    # As the worker wires it: the adapter inside the telemetry wrapper, which passes free_balance on.
    exchange = InstrumentedExchange(rig.exchange, NO_TELEMETRY, mode="live") if instrumented else rig.exchange
    manage = ManagePositions(rig.store, exchange, rig.clock, rig.book)
    for _ in range(6):
        await manage.on_tick(PriceTick(NEW, Decimal("0.2"), rig.clock.now()))

    assert rig.book.open_positions("u1") == []
    sells = [o for o in rig.server.orders.values() if o.side == "SELL"]
    assert [o.executed_qty for o in sells] == [Decimal("33.31")]
    events = await rig.events()
    # The buy's fee unknown, the first all-out exit read the balance first: no 10101 asked for.
    assert not any(isinstance(e, ExitOrderFailed) for e in events)
    assert rig.server.hits[ACCOUNT] >= 1
    [hit] = [e for e in events if isinstance(e, StopLossHit)]
    [dust] = [e for e in events if isinstance(e, DustWrittenOff)]
    assert hit.quantity + dust.quantity == BOUGHT
    assert (await monitor()).trips == []


async def test_a_lost_reply_while_the_sell_is_not_yet_visible_sells_once() -> None:
    async with FakeMexcServer(symbols=[new_symbol()], order_visibility_delay=0.3) as server, \
            client_for(server, order_timeout=0.2, read_attempts=1) as client:
        rig = Rig(server, MexcExchange(client, clock_samples=1), InMemoryEventStore(), SystemClock(), TradeBook())
        position = await rig.buy()
        assert position.remaining == BOUGHT
        server.symbols["NEWUSDT"].price = Decimal("0.2")
        server.inject(Fault(FaultKind.TIMEOUT_AFTER_ACCEPT, ORDER, delay=0.05))  # placed, reply lost
        manage = ManagePositions(rig.store, rig.exchange, rig.clock, rig.book)

        [first] = await manage.on_tick(PriceTick(NEW, Decimal("0.2"), rig.clock.now()))
        assert first.filled is False  # answered "not found": not visible yet
        assert await manage.on_tick(PriceTick(NEW, Decimal("0.2"), rig.clock.now())) == []  # still pending
        await asyncio.sleep(0.35)
        await manage.on_tick(PriceTick(NEW, Decimal("0.2"), rig.clock.now()))

        sells = [o for o in server.orders.values() if o.side == "SELL"]
        assert len(sells) == 1 and server.hits[ORDER] == 2  # the buy and one sell
        assert not any(isinstance(e, ExitOrderFailed) for e in await rig.events())
        assert rig.book.open_positions("u1") == []
