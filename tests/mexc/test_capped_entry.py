"""A price cap on the entry (issue 14) on MEXC: an IMMEDIATE_OR_CANCEL limit buy at the cap, built
and signed once (the order lane then only stamps and signs), against the fake exchange; and the
snipe end to end (ExecuteSnipe on MexcExchange) above, below and partly through the cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.clock import SystemClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.memory import InMemoryLockService, InMemoryTraderDirectory
from adapters.mexc.exchange import MexcExchange
from adapters.mexc.rest import MexcRestClient
from application import repository
from application.errors import OrderRefused
from application.ports import OrderStatus, TraderSettings
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from domain.events import Cause, SnipeOrderSubmitted
from domain.exit_plans import PRESETS
from domain.target import SnipeTarget, TargetStatus, target_stream
from tests.fakes.mexc_http import ORDER, FakeMexcServer, FakeSymbol
from tests.mexc.support import NEW, client_for, coid, new_symbol

TARGET_ID = "t-mexc-capped"


async def prepared(client: MexcRestClient) -> MexcExchange:
    exchange = MexcExchange(client, clock_samples=1)
    await exchange.prepare(NEW)
    return exchange


class TestAdapter:
    async def test_the_order_is_an_ioc_limit_at_the_cap_for_the_amount_and_fills_at_the_price(
        self, server: FakeMexcServer, client: MexcRestClient
    ) -> None:
        exchange = await prepared(client)
        placed = await exchange.place_capped_buy(NEW, Decimal("10"), Decimal("0.35"), coid())
        [order] = server.accepted_orders()
        # 10 / 0.35 = 28.571... rounded down to the pair's 2 places; the fake's price is 0.3.
        assert (order.type, order.price, order.orig_qty) == ("IMMEDIATE_OR_CANCEL", Decimal("0.35"), Decimal("28.57"))
        assert placed.status is OrderStatus.NEW  # MEXC's POST reply has no fill: the snipe queries
        report = await exchange.query_order(NEW, coid())
        assert report is not None and report.status is OrderStatus.FILLED
        assert (report.executed_quantity, report.average_price) == (Decimal("28.57"), Decimal("0.3"))

    async def test_a_cap_below_the_price_is_cancelled_with_nothing_bought(
        self, server: FakeMexcServer, client: MexcRestClient
    ) -> None:
        exchange = await prepared(client)
        await exchange.place_capped_buy(NEW, Decimal("10"), Decimal("0.2"), coid())
        report = await exchange.query_order(NEW, coid())
        assert report is not None
        assert (report.status, report.executed_quantity) == (OrderStatus.CANCELED, Decimal(0))
        assert server.balances["USDT"] == Decimal("1000")  # nothing spent, nothing left locked
        assert server.locked.get("USDT", Decimal(0)) == 0

    async def test_a_thin_book_fills_part_and_cancels_the_rest(self) -> None:
        async with (
            FakeMexcServer(symbols=[new_symbol(ask_quantity=Decimal("10"))]) as server,
            client_for(server) as client,
        ):
            exchange = await prepared(client)
            await exchange.place_capped_buy(NEW, Decimal("10"), Decimal("0.35"), coid())
            report = await exchange.query_order(NEW, coid())
        assert report is not None and report.status is OrderStatus.PARTIALLY_CANCELED
        assert (report.executed_quantity, report.executed_quote) == (Decimal("10"), Decimal("3.0"))

    async def test_an_amount_below_the_minimum_at_the_cap_is_refused_before_sending(
        self, server: FakeMexcServer, client: MexcRestClient
    ) -> None:
        exchange = await prepared(client)
        with pytest.raises(OrderRefused) as refused:
            await exchange.place_capped_buy(NEW, Decimal("0.3"), Decimal("0.35"), coid())  # 0.85 x 0.35 < 1 USDT
        assert refused.value.code == "30002" and "refused before sending" in str(refused.value)
        assert server.hits[ORDER] == 0

    async def test_without_the_pairs_rules_the_quantity_keeps_three_significant_digits(
        self, server: FakeMexcServer, client: MexcRestClient
    ) -> None:
        exchange = MexcExchange(client)  # not prepared: exchangeInfo never read
        await exchange.place_capped_buy(NEW, Decimal("10"), Decimal("0.35"), coid())
        [order] = server.accepted_orders()
        assert (order.type, order.price, order.orig_qty) == ("IMMEDIATE_OR_CANCEL", Decimal("0.35"), Decimal("28.5"))

    async def test_the_order_is_built_and_signed_once_then_sent_on_the_order_lane(
        self, server: FakeMexcServer, client: MexcRestClient
    ) -> None:
        exchange = await prepared(client)
        first = exchange.prepare_capped_buy(NEW, Decimal("10"), Decimal("0.35"), coid())
        assert exchange.prepare_capped_buy(NEW, Decimal("10"), Decimal("0.35"), coid()) is first
        assert "type=IMMEDIATE_OR_CANCEL" in first.signed_prefix and "price=0.35" in first.signed_prefix
        assert exchange.prepare_capped_buy(NEW, Decimal("10"), Decimal("0.4"), coid()) is not first  # another cap
        assert client._lane is not None  # the order goes out on the lean lane, signed by the fake's check
        await exchange.place_capped_buy(NEW, Decimal("10"), Decimal("0.35"), coid())
        assert server.statuses(ORDER) == [200]


@dataclass
class Rig:
    server: FakeMexcServer
    store: InMemoryEventStore
    clock: SystemClock
    execute: ExecuteSnipe

    async def schedule(self, cap: str) -> None:
        now = self.clock.now()
        cause = Cause(now, "corr-capped")
        target = SnipeTarget.create(TARGET_ID, "user-1", "coin-new", NEW, now, Decimal("10"), PRESETS["balanced"],
                                    Decimal("0.95"), False, cause, Decimal(cap))
        target.mark_ready("ready", Decimal("0.95"), 60, cause)
        target.schedule(now, now + timedelta(seconds=5), cause)
        await repository.save(self.store, target)

    async def target(self) -> SnipeTarget:
        return await repository.get(self.store, SnipeTarget, target_stream(TARGET_ID))


@asynccontextmanager
async def rig_on(symbol: FakeSymbol) -> AsyncIterator[Rig]:
    async with FakeMexcServer(symbols=[symbol]) as server, client_for(server, order_timeout=0.5, timeout=1.0) as client:
        clock = SystemClock()
        store = InMemoryEventStore()
        exchange = MexcExchange(client, clock_samples=3)
        execute = ExecuteSnipe(
            store, exchange, exchange, InMemoryTraderDirectory([TraderSettings("user-1")]),
            InMemoryLockService(clock), clock, TradeBook(), SnipeTiming(retry_interval=timedelta(milliseconds=10)),
        )
        yield Rig(server, store, clock, execute)


class TestSnipe:
    async def test_a_cap_above_the_opening_price_fills_on_the_first_attempt_after_the_open(self) -> None:
        async with rig_on(new_symbol()) as rig:
            await rig.schedule("0.35")
            rig.server.open_in("NEWUSDT", 0.2)
            outcome = await rig.execute(TARGET_ID)
            target = await rig.target()
        assert outcome.result is SnipeResult.FILLED, outcome.detail
        assert [a.outcome for a in rig.server.order_arrivals][-1] == "accepted"
        assert {a.outcome for a in rig.server.order_arrivals[:-1]} <= {"10007"}  # refused until the open
        [order] = rig.server.accepted_orders()
        assert order.type == "IMMEDIATE_OR_CANCEL" and order.price == Decimal("0.35")
        assert target.status is TargetStatus.FILLED and target.fill is not None
        assert (target.fill.quantity, target.fill.price) == (Decimal("28.57"), Decimal("0.3"))

    async def test_a_cap_below_the_opening_price_buys_nothing_and_the_target_says_why(self) -> None:
        async with rig_on(new_symbol()) as rig:
            await rig.schedule("0.0123")
            rig.server.open_in("NEWUSDT", 0.1)
            outcome = await rig.execute(TARGET_ID)
            target = await rig.target()
            events = [r.event for r in await rig.store.load(target_stream(TARGET_ID))]
        assert outcome.result is SnipeResult.FAILED
        assert len(rig.server.accepted_orders()) == 1  # one IOC, cancelled by the exchange, never sent again
        assert rig.server.hits[ORDER] == len(rig.server.order_arrivals)
        assert target.status is TargetStatus.FAILED
        assert target.failure is not None
        assert target.failure.startswith("no fill at or below the cap 0.0123: the price opened at 0.3 (order ")
        assert target.failure.endswith("ended CANCELED with nothing bought)")
        [sent] = [e for e in events if isinstance(e, SnipeOrderSubmitted)]
        assert sent.max_entry_price == Decimal("0.0123")

    async def test_a_partial_fill_opens_a_position_of_what_filled_without_a_second_send(self) -> None:
        async with rig_on(new_symbol(ask_quantity=Decimal("10"))) as rig:
            await rig.schedule("0.35")
            outcome = await rig.execute(TARGET_ID)
            target = await rig.target()
        assert outcome.result is SnipeResult.FILLED, outcome.detail
        assert outcome.fill is not None and outcome.fill.status is OrderStatus.PARTIALLY_CANCELED
        assert [a.outcome for a in rig.server.order_arrivals] == ["accepted"]
        assert target.fill is not None and target.fill.quantity == Decimal("10")
